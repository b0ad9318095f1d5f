/**
 * How the client subcommands show messages: a readable block per message
 * for people, or one JSON object per line (--json) for programs. Payloads
 * that are UTF-8 are shown as text; others as base64.
 */
import { isUtf8 } from 'node:buffer';
import { decodeHeaders, encodeHeaders } from '../sdk/wire/text.js';
import type { Delivery, Msg } from '../sdk/wire/types.js';
import { UsageError } from './connect-flags.js';

/** `--header name=value` flags as header fields (C3.1), refused with exit 2 when malformed. */
export function headerFlags(list: readonly string[]): [string, string][] {
  const fields = list.map((h): [string, string] => {
    const eq = h.indexOf('=');
    if (eq <= 0) throw new UsageError(`--header takes name=value, got ${JSON.stringify(h)}`);
    return [h.slice(0, eq), h.slice(eq + 1)];
  });
  try {
    encodeHeaders(fields); // the same checks the wire needs
  } catch (err) {
    throw new UsageError(`--header: ${(err as Error).message}`);
  }
  return fields;
}

/**
 * A core message for people:
 * `[#1] orders.new reply=_INBOX.x 11 bytes`, its headers indented, then the payload.
 */
export function formatMsg(n: number, m: Msg): string {
  const reply = m.reply === undefined ? '' : ` reply=${m.reply}`;
  return `[#${n}] ${m.subject}${reply} ${bytes(m.payload.length)}\n${headerLines(m.headers)}${body(m.payload)}`;
}

/** A core message as one JSON line. */
export function msgJson(m: Msg): string {
  return JSON.stringify({
    subject: m.subject,
    ...(m.reply === undefined ? {} : { reply: m.reply }),
    ...headersJson(m.headers),
    ...payloadJson(m.payload),
  });
}

/** A pulled message for people (D4.1): id, priority, deliveries, when stored, then headers and payload. */
export function formatDelivery(n: number, d: Delivery): string {
  const stored = new Date(d.timestampMs).toISOString();
  return (
    `[#${n}] ${d.destination} id=${d.id} priority=${d.priority} deliveries=${d.deliveries} ` +
    `stored=${stored} ${bytes(d.payload.length)}\n${headerLines(d.headers)}${body(d.payload)}`
  );
}

/** A pulled message as one JSON line. */
export function deliveryJson(d: Delivery): string {
  return JSON.stringify({
    destination: d.destination,
    id: d.id,
    handle: d.handle,
    priority: d.priority,
    deliveries: d.deliveries,
    timestamp_ms: d.timestampMs,
    ...headersJson(d.headers),
    ...payloadJson(d.payload),
  });
}

function bytes(n: number): string {
  return n === 1 ? '1 byte' : `${n} bytes`;
}

function headerLines(block: Buffer | undefined): string {
  if (block === undefined) return '';
  const { status, fields } = decodeHeaders(block);
  const first = status === undefined ? '' : `  status ${status}\n`;
  return first + fields.map(([k, v]) => `  ${k}: ${v}\n`).join('');
}

function body(payload: Buffer): string {
  const text = isUtf8(payload) ? payload.toString('utf8') : `(binary) ${payload.toString('base64')}`;
  return text.endsWith('\n') ? text : `${text}\n`;
}

/** Headers as `{"headers": {"Name": ["value", ...]}}` (names may repeat), plus the status if any. */
function headersJson(block: Buffer | undefined): Record<string, unknown> {
  if (block === undefined) return {};
  const { status, fields } = decodeHeaders(block);
  // No prototype: a header named __proto__ is a header like any other.
  const headers = Object.create(null) as Record<string, string[]>;
  for (const [k, v] of fields) (headers[k] ??= []).push(v);
  return { ...(status === undefined ? {} : { status }), headers };
}

function payloadJson(payload: Buffer): Record<string, string> {
  return isUtf8(payload)
    ? { payload: payload.toString('utf8') }
    : { payload_base64: payload.toString('base64') };
}
