/**
 * The field checks the mesh schema (schema.ts) is made of: each takes a
 * value from a peer's head and returns it typed, or throws MalformedMessage
 * naming the field and what it should have been (protocol/MESH.md M4.6).
 */
import { isValidPublishSubject } from '../subjects/subject.js';
import { splitBody, unpackBodies, type Body, type Packed } from './bodies.js';
import { MalformedMessage } from './channel.js';

export type Head = Record<string, unknown>;

/** Longest subject, reply subject, queue name or handle: far beyond a client's control line (C1.5), yet bounded. */
const MAX_TOKEN_CHARS = 65_536;
/** Longest free text (a producer, a member's name): stored or logged, never parsed. */
const MAX_TEXT_CHARS = 65_536;
/** D1.1: destination names are at most 255 bytes; a dead-letter name adds ".DLQ" (D1.3). */
const MAX_NAME_CHARS = 255 + 4;
/** D3.4: ids are 1-128 bytes without whitespace. */
const MAX_ID_BYTES = 128;
/** D2.1 */
const GROUP_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/**
 * What no token on a client's line can hold: the separators and line end of
 * C1.1, and UTF-16 units that are not one latin1 byte (written as latin1,
 * U+010A would become a LF).
 */
const NOT_IN_TOKEN = /[ \t\n\u0100-\uffff]/;
/** D1.1: names hold no ASCII whitespace at all. */
const NOT_IN_NAME = /[ \t\n\v\f\r\u0100-\uffff]/;

export function record(v: unknown, what: string): Head {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new MalformedMessage(`${what}: not an object`);
  return v as Head;
}

export function int(v: unknown, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new MalformedMessage(`${what}: not an integer in ${min}-${max}`);
  }
  return v;
}

export function bool(v: unknown, what: string): boolean {
  if (typeof v !== 'boolean') throw new MalformedMessage(`${what}: not a boolean`);
  return v;
}

export function text(v: unknown, what: string, maxChars = MAX_TEXT_CHARS): string {
  if (typeof v !== 'string' || v.length > maxChars) {
    throw new MalformedMessage(`${what}: not a string of at most ${maxChars} characters`);
  }
  return v;
}

/** A token of a client's protocol line (subject, reply, queue, handle): latin1, no separator. */
export function token(v: unknown, what: string, maxChars = MAX_TOKEN_CHARS): string {
  const s = text(v, what, maxChars);
  if (s.length === 0 || NOT_IN_TOKEN.test(s)) throw new MalformedMessage(`${what}: not a protocol token`);
  return s;
}

/** A destination name (D1.1) or its dead-letter destination's (D1.3): for what no engine check covers. */
export function name(v: unknown, what: string): string {
  const s = text(v, what, MAX_NAME_CHARS);
  if (!isValidPublishSubject(s) || NOT_IN_NAME.test(s)) {
    throw new MalformedMessage(`${what}: not a destination name`);
  }
  return s;
}

export function groupName(v: unknown, what: string): string {
  if (typeof v !== 'string' || !GROUP_NAME.test(v)) throw new MalformedMessage(`${what}: not a group name`);
  return v;
}

/** D3.4 */
export function messageId(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length === 0 || Buffer.byteLength(v) > MAX_ID_BYTES || /\s/.test(v)) {
    throw new MalformedMessage(`${what}: not a message id`);
  }
  return v;
}

export function optional<T>(v: unknown, what: string, check: (v: unknown, what: string) => T): T | undefined {
  return v === undefined ? undefined : check(v, what);
}

export function list<T>(v: unknown, what: string, max: number, each: (v: unknown, what: string) => T): T[] {
  if (!Array.isArray(v) || v.length > max)
    throw new MalformedMessage(`${what}: not a list of at most ${max}`);
  const item = `${what}[]`;
  return v.map((x) => each(x, item));
}

export function oneOf<T extends string>(v: unknown, what: string, values: readonly T[]): T {
  if (!values.includes(v as T)) throw new MalformedMessage(`${what}: not one of ${values.join(', ')}`);
  return v as T;
}

/** The split of a frame's data into headers and payload (`hl`, -1 for none; M4.1). */
export function body(hl: unknown, data: Buffer, what: string): Body {
  return splitBody(data, int(hl, `${what}.hl`, -1, data.length));
}

/** Several bodies packed in a frame's data (bodies.ts): each split in range, together exactly the data. */
export function bodies<T extends Body>(meta: Packed<T>[], data: Buffer, what: string): T[] {
  let total = 0;
  for (const m of meta) {
    total += Math.max(0, int(m.hl, `${what}.hl`, -1, data.length)) + int(m.pl, `${what}.pl`, 0, data.length);
  }
  if (total !== data.length)
    throw new MalformedMessage(`${what}: bodies of ${total} bytes in ${data.length}`);
  return unpackBodies(meta, data);
}
