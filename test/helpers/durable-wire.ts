/**
 * Raw-protocol helpers for the durable verbs (protocol/DURABLE.md) over a
 * RawClient: frames to send, and +STORED, -ERR and DMSG...+PULLED answers
 * read and checked one at a time. Shared by the durable wire tests.
 */
import type { ExecutionContext } from 'ava';
import { QUIET, RawClient } from './wire.js';

export interface Stored {
  dest: string;
  seq: number;
  id: string;
  duplicate: boolean;
}

export interface Dmsg {
  dest: string;
  handle: string;
  id: string;
  priority: number;
  deliveries: number;
  timestampMs: number;
  headers: Buffer;
  payload: string;
  seq: number;
  /** Date.now() when the test read the frame. */
  receivedAt: number;
}

/** A client past CONNECT (QUIET, or `connect`) and its PONG. */
export async function open(t: ExecutionContext, port: number, connect = QUIET): Promise<RawClient> {
  const [c] = await RawClient.open(t, port, connect);
  return c;
}

/** A client with verbose on (settles answer +OK, D4.9). */
export async function openVerbose(t: ExecutionContext, port: number): Promise<RawClient> {
  const c = await open(t, port);
  c.send('CONNECT {"verbose":true}\r\n');
  await c.expect(/^\+OK\r\n/);
  return c;
}

export function sendFrame(dest: string, payload: string, opts = ''): string {
  return `SEND ${dest}${opts === '' ? '' : ` ${opts}`} ${Buffer.byteLength(payload, 'latin1')}\r\n${payload}\r\n`;
}

// Names and ids may hold any byte but space, CR and LF (0xa0 too, which \S would not match).
export const STORED_RE = /^\+STORED ([^ \r\n]+) (\d+) ([^ \r\n]+)( duplicate)?\r\n/;
export const ERR_RE = /^-ERR '([^']*)'\r\n/;

export async function expectStored(c: RawClient, timeoutMs = 5000): Promise<Stored> {
  const m = await c.expect(STORED_RE, timeoutMs);
  return { dest: m[1]!, seq: Number(m[2]), id: m[3]!, duplicate: m[4] !== undefined };
}

export async function expectErr(c: RawClient, timeoutMs = 5000): Promise<string> {
  return (await c.expect(ERR_RE, timeoutMs))[1]!;
}

/** SEND and wait for its +STORED. */
export async function send(c: RawClient, dest: string, payload: string, opts = ''): Promise<Stored> {
  c.send(sendFrame(dest, payload, opts));
  return expectStored(c);
}

/** Reads DMSG frames up to +PULLED; checks the count and the frame format (D4.1). */
export async function readPulled(c: RawClient, dest: string, timeoutMs = 5000): Promise<Dmsg[]> {
  const out: Dmsg[] = [];
  for (;;) {
    const m = await c.expect(
      /^(?:DMSG ([^ \r\n]+) ([^ \r\n]+) ([^ \r\n]+) (\d+) (\d+) (\d+) (\d+) (\d+)\r\n|\+PULLED ([^ \r\n]+) (\d+)\r\n|-ERR '([^']*)'\r\n)/,
      timeoutMs,
    );
    if (m[11] !== undefined) throw new Error(`PULL refused: ${m[11]}`);
    if (m[9] !== undefined) {
      if (m[9] !== dest) throw new Error(`+PULLED for ${m[9]}, expected ${dest}`);
      if (Number(m[10]) !== out.length) throw new Error(`+PULLED says ${m[10]}, got ${out.length} DMSG`);
      return out;
    }
    const hdr = Number(m[7]);
    const total = Number(m[8]);
    const body = await c.expect(new RegExp(`^([\\s\\S]{${total}})\\r\\n`), timeoutMs);
    const bytes = Buffer.from(body[1]!, 'latin1');
    out.push({
      dest: m[1]!,
      handle: m[2]!,
      id: m[3]!,
      priority: Number(m[4]),
      deliveries: Number(m[5]),
      timestampMs: Number(m[6]),
      headers: bytes.subarray(0, hdr),
      payload: bytes.subarray(hdr).toString('latin1'),
      seq: Number(m[2]!.split('/')[0]),
      receivedAt: Date.now(),
    });
  }
}

export async function pull(c: RawClient, dest: string, group: string, args = ''): Promise<Dmsg[]> {
  c.send(`PULL ${dest} ${group}${args === '' ? '' : ` ${args}`}\r\n`);
  return readPulled(c, dest);
}
