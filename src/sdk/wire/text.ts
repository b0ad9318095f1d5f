/**
 * The text the CLI client puts on the wire, checked before anything is
 * written: names (a space would change the operation, CLIENT.md C1.2) and
 * NATS/1.0 header blocks (C3.1), and reading such blocks back.
 */
import { isValidPublishSubject, isValidSubscribeSubject } from '../../subjects/subject.js';
import { ClientError, ClientErrorCode } from './errors.js';

/** D3.2: ids are 1-128 bytes; D1.1: destination names at most 255 bytes. */
const MAX_ID_BYTES = 128;
const MAX_DESTINATION_BYTES = 255;

/** C3.1: a NATS/1.0 header block from name/value pairs. */
export function encodeHeaders(fields: readonly (readonly [string, string])[]): Buffer {
  let s = 'NATS/1.0\r\n';
  for (const [name, value] of fields) {
    if (!/^[!-9;-~]+$/.test(name)) {
      throw new ClientError(ClientErrorCode.Invalid, `invalid header name ${JSON.stringify(name)}`);
    }
    if (/[\r\n]/.test(value)) {
      throw new ClientError(ClientErrorCode.Invalid, `header ${name}: a value cannot hold a line break`);
    }
    s += `${name}: ${value}\r\n`;
  }
  return Buffer.from(`${s}\r\n`);
}

/** A header block read back: the status on its first line (C5.4) and its fields, in order. */
export function decodeHeaders(block: Buffer): { status: number | undefined; fields: [string, string][] } {
  const lines = block.toString('utf8').split('\r\n');
  const m = /^NATS\/1\.0[ \t]+(\d{3})/.exec(lines[0] ?? '');
  const fields: [string, string][] = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
  }
  return { status: m === null ? undefined : Number(m[1]), fields };
}

/** C1.2 makes whitespace a separator: a name holding any would change the operation. */
export function checkToken(what: string, s: string): void {
  // eslint-disable-next-line no-control-regex
  if (s.length === 0 || /[\s\x00-\x1f\x7f]/.test(s)) {
    throw new ClientError(
      ClientErrorCode.Invalid,
      `invalid ${what} ${JSON.stringify(s)} (empty or has spaces)`,
    );
  }
}

/** C4.1/C3.3: a subject (wildcards only where a subscription allows them). */
export function checkSubject(what: string, s: string, wildcards: boolean): void {
  checkToken(what, s);
  if (!(wildcards ? isValidSubscribeSubject(s) : isValidPublishSubject(s))) {
    const rule = wildcards ? 'tokens joined by ".", none empty' : 'tokens joined by ".", no wildcards';
    throw new ClientError(ClientErrorCode.Invalid, `invalid ${what} ${JSON.stringify(s)} (${rule})`);
  }
}

/** D1.1. */
export function checkDestination(name: string): void {
  checkSubject('destination', name, false);
  if (Buffer.byteLength(name) > MAX_DESTINATION_BYTES) {
    throw new ClientError(
      ClientErrorCode.Invalid,
      `a destination name is at most ${MAX_DESTINATION_BYTES} bytes`,
    );
  }
}

/** D3.2: an id is 1-128 bytes without whitespace. */
export function checkId(id: string): void {
  checkToken('id', id);
  if (Buffer.byteLength(id) > MAX_ID_BYTES) {
    throw new ClientError(ClientErrorCode.Invalid, `an id is at most ${MAX_ID_BYTES} bytes`);
  }
}
