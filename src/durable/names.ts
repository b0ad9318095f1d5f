/** Destination names (DURABLE.md D1.1) and the dead-letter header (D6.1): pure helpers of the engine. */
import { DurableError, DurableErrorCode as C } from '../errors.js';
import { isValidPublishSubject } from '../subjects/subject.js';

/** D6.1: the header a dead-letter copy carries, naming where it came from and why. */
export const DEAD_LETTER_HEADER = 'SwarmMQ-Dead-Letter';

/** Adds one header line to a NATS/1.0 header block (or makes one). */
export function withHeader(headers: Buffer | undefined, name: string, value: string): Buffer {
  const line = Buffer.from(`${name}: ${value.replace(/[\r\n]/g, ' ')}\r\n`, 'latin1');
  if (headers === undefined || headers.length === 0) {
    return Buffer.concat([Buffer.from('NATS/1.0\r\n'), line, Buffer.from('\r\n')]);
  }
  const firstLineEnd = headers.indexOf('\r\n');
  if (firstLineEnd < 0) return Buffer.concat([headers, Buffer.from('\r\n'), line, Buffer.from('\r\n')]);
  return Buffer.concat([headers.subarray(0, firstLineEnd + 2), line, headers.subarray(firstLineEnd + 2)]);
}

/** D1.1: a destination name is a valid subject without wildcards. */
export function checkDestinationName(name: string): void {
  // Names are byte strings (latin1, as the parser gives them): only ASCII
  // whitespace is whitespace here (\s would refuse 0xa0, a byte of UTF-8 letters such as 'à').
  if (!isValidPublishSubject(name) || /[ \t\n\v\f\r]/.test(name) || Buffer.byteLength(name, 'latin1') > 255) {
    throw new DurableError(
      C.InvalidDestination,
      `invalid destination name "${name.slice(0, 64)}" (a subject without wildcards)`,
    );
  }
}

/** D4.9: the destination a delivery handle (`<seq>/<delivery>/<group>/<destination>`) belongs to. */
export function handleDestination(handle: string): string | undefined {
  const m = /^\d+\/\d+\/[A-Za-z0-9_-]+\/(.+)$/.exec(handle);
  return m === null ? undefined : m[1];
}
