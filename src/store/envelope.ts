/**
 * The stored form of a message (protocol/STORAGE.md section 3): clear
 * metadata the engine needs to schedule it without decrypting, the sealed
 * payload (and headers), and a MAC over the key and everything before it.
 *
 *   version u8 | flags u8 | priority u8 | timestamp u48
 *   [expiresAt u48] [notBefore u48] | idLen u8 id | [producerLen u8 producer]
 *   nonce(12) | sealed(payload or u32 hdrLen+headers+payload, GCM tag 16) | mac(16)
 */
import { IntegrityError, MAC_BYTES, NONCE_BYTES, TAG_BYTES, type KeyRing } from '../crypto/seal.js';

const VERSION = 1;
const F_HEADERS = 1;
const F_PRODUCER = 2;
const F_EXPIRES = 4;
const F_NOT_BEFORE = 8;
const F_BINARY_ID = 16;

/** What the engine knows about a message without its payload. */
export interface MessageMeta {
  id: string;
  priority: number;
  timestampMs: number;
  /** 0: never expires. */
  expiresAtMs: number;
  /** 0: deliverable at once. */
  notBeforeMs: number;
  producer: string | undefined;
}

export interface OpenedMessage {
  meta: MessageMeta;
  headers: Buffer | undefined;
  payload: Buffer;
}

const HEX_ID = /^[0-9a-f]{32}$/;

/**
 * The length of the value sealMessage returns for this message, without
 * sealing it: the engine checks its limits (DURABLE.md D8.4) against the
 * bytes a send will store before it stores them.
 */
export function sealedSize(meta: MessageMeta, headers: Buffer | undefined, payloadLength: number): number {
  const idLen = HEX_ID.test(meta.id) ? 16 : Buffer.byteLength(meta.id, 'utf8');
  const producerLen =
    meta.producer === undefined ? 0 : 1 + Math.min(Buffer.byteLength(meta.producer, 'utf8'), 255);
  const plainLen = (headers !== undefined && headers.length > 0 ? 4 + headers.length : 0) + payloadLength;
  return (
    9 +
    (meta.expiresAtMs > 0 ? 6 : 0) +
    (meta.notBeforeMs > 0 ? 6 : 0) +
    1 +
    idLen +
    producerLen +
    NONCE_BYTES +
    plainLen +
    TAG_BYTES +
    MAC_BYTES
  );
}

/** Seals a message into its stored bytes. `key` is its LevelDB key (bound into the MAC). */
export function sealMessage(
  ring: KeyRing,
  key: Buffer,
  meta: MessageMeta,
  headers: Buffer | undefined,
  payload: Buffer,
): Buffer {
  // Assigned ids are 32 hex digits: stored as their 16 bytes.
  const binaryId = HEX_ID.test(meta.id);
  const idBytes = binaryId ? Buffer.from(meta.id, 'hex') : Buffer.from(meta.id, 'utf8');
  const producer =
    meta.producer === undefined ? undefined : Buffer.from(meta.producer, 'utf8').subarray(0, 255);
  let flags = 0;
  if (headers !== undefined && headers.length > 0) flags |= F_HEADERS;
  if (producer !== undefined) flags |= F_PRODUCER;
  if (meta.expiresAtMs > 0) flags |= F_EXPIRES;
  if (meta.notBeforeMs > 0) flags |= F_NOT_BEFORE;
  if (binaryId) flags |= F_BINARY_ID;
  let plain = payload;
  if (flags & F_HEADERS) {
    plain = Buffer.allocUnsafe(4 + headers!.length + payload.length);
    plain.writeUInt32BE(headers!.length, 0);
    headers!.copy(plain, 4);
    payload.copy(plain, 4 + headers!.length);
  }
  const nonce = ring.nonce();
  const sealed = ring.encrypt(nonce, plain);
  const headLen =
    9 +
    (flags & F_EXPIRES ? 6 : 0) +
    (flags & F_NOT_BEFORE ? 6 : 0) +
    1 +
    idBytes.length +
    (producer === undefined ? 0 : 1 + producer.length);
  const out = Buffer.allocUnsafe(headLen + NONCE_BYTES + sealed.length + MAC_BYTES);
  let o = 0;
  out[o++] = VERSION;
  out[o++] = flags;
  out[o++] = meta.priority;
  out.writeUIntBE(meta.timestampMs, o, 6);
  o += 6;
  if (flags & F_EXPIRES) {
    out.writeUIntBE(meta.expiresAtMs, o, 6);
    o += 6;
  }
  if (flags & F_NOT_BEFORE) {
    out.writeUIntBE(meta.notBeforeMs, o, 6);
    o += 6;
  }
  out[o++] = idBytes.length;
  idBytes.copy(out, o);
  o += idBytes.length;
  if (producer !== undefined) {
    out[o++] = producer.length;
    producer.copy(out, o);
    o += producer.length;
  }
  nonce.copy(out, o);
  o += NONCE_BYTES;
  sealed.copy(out, o);
  o += sealed.length;
  ring.mac(key, out.subarray(0, o)).copy(out, o);
  return out;
}

/**
 * The two due times of a stored message, read from its clear header without
 * decoding the rest (for loading at start). Unreadable headers give zeros;
 * such a record fails its check when it is delivered and is set aside.
 */
export function readSchedule(value: Buffer): { expiresAtMs: number; notBeforeMs: number } {
  if (value.length < 9 || value[0] !== VERSION) return { expiresAtMs: 0, notBeforeMs: 0 };
  const flags = value[1]!;
  let o = 9;
  let expiresAtMs = 0;
  let notBeforeMs = 0;
  if (flags & F_EXPIRES) {
    if (value.length < o + 6) return { expiresAtMs: 0, notBeforeMs: 0 };
    expiresAtMs = value.readUIntBE(o, 6);
    o += 6;
  }
  if (flags & F_NOT_BEFORE && value.length >= o + 6) notBeforeMs = value.readUIntBE(o, 6);
  return { expiresAtMs, notBeforeMs };
}

/** Reads the clear metadata (no MAC check: use it for scheduling only, never to deliver). */
export function readMeta(value: Buffer): MessageMeta {
  return parseHead(value).meta;
}

/** Verifies and decrypts a stored message; throws IntegrityError on any mismatch. */
export function openMessage(ring: KeyRing, key: Buffer, value: Buffer): OpenedMessage {
  if (value.length < 10 + NONCE_BYTES + TAG_BYTES + MAC_BYTES) throw new IntegrityError('record too short');
  const macAt = value.length - MAC_BYTES;
  if (!ring.verify(value.subarray(macAt), key, value.subarray(0, macAt))) {
    throw new IntegrityError('record MAC does not match');
  }
  const { meta, flags, offset } = parseHead(value);
  const nonce = value.subarray(offset, offset + NONCE_BYTES);
  const plain = ring.decrypt(nonce, value.subarray(offset + NONCE_BYTES, macAt));
  if (flags & F_HEADERS) {
    const h = plain.readUInt32BE(0);
    return { meta, headers: plain.subarray(4, 4 + h), payload: plain.subarray(4 + h) };
  }
  return { meta, headers: undefined, payload: plain };
}

function parseHead(value: Buffer): { meta: MessageMeta; flags: number; offset: number } {
  if (value[0] !== VERSION) throw new IntegrityError(`unknown record version ${value[0]}`);
  const flags = value[1]!;
  let o = 3;
  const timestampMs = value.readUIntBE(o, 6);
  o += 6;
  let expiresAtMs = 0;
  let notBeforeMs = 0;
  if (flags & F_EXPIRES) {
    expiresAtMs = value.readUIntBE(o, 6);
    o += 6;
  }
  if (flags & F_NOT_BEFORE) {
    notBeforeMs = value.readUIntBE(o, 6);
    o += 6;
  }
  const idLen = value[o++]!;
  const idBytes = value.subarray(o, o + idLen);
  o += idLen;
  const id = flags & F_BINARY_ID ? idBytes.toString('hex') : idBytes.toString('utf8');
  let producer: string | undefined;
  if (flags & F_PRODUCER) {
    const n = value[o++]!;
    producer = value.toString('utf8', o, o + n);
    o += n;
  }
  return {
    meta: { id, priority: value[2]!, timestampMs, expiresAtMs, notBeforeMs, producer },
    flags,
    offset: o,
  };
}
