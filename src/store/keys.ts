/**
 * The LevelDB key scheme (protocol/STORAGE.md section 2): one prefix byte
 * per record kind, then big-endian numbers so that byte order is numeric
 * order. A message key sorts by destination, then priority (highest first),
 * then sequence: a range scan is delivery order.
 */

export const Prefix = {
  /** Destination meta: D name -> JSON. */
  Destination: 0x44,
  /** Consumer group meta: G dest(4) name -> JSON. */
  Group: 0x47,
  /** Message: M dest(4) prio-inverted(1) seq(8) -> envelope. */
  Message: 0x4d,
  /** Group state of one message: S dest(4) group(4) seq(8) -> state. */
  State: 0x53,
  /** De-duplication: I dest(4) id -> seq(8) storedAt(6). */
  Dedup: 0x49,
  /** Quarantined (failed integrity) message: Q + its M key -> envelope. */
  Quarantine: 0x51,
  /** Node meta: N name -> value. */
  Node: 0x4e,
} as const;

export const MAX_PRIORITY = 10;

export function destinationKey(name: string): Buffer {
  return textKey(Prefix.Destination, undefined, name);
}

export function groupKey(destId: number, name: string): Buffer {
  return textKey(Prefix.Group, destId, name);
}

/** A prefix, an optional destination id (u32) and a UTF-8 text: the shape of the D, G and I keys. */
function textKey(prefix: number, destId: number | undefined, text: string): Buffer {
  const at = destId === undefined ? 1 : 5;
  const k = Buffer.allocUnsafe(at + Buffer.byteLength(text));
  k[0] = prefix;
  if (destId !== undefined) k.writeUInt32BE(destId, 1);
  k.write(text, at, 'utf8');
  return k;
}

export function messageKey(destId: number, priority: number, seq: number): Buffer {
  const k = Buffer.allocUnsafe(14);
  k[0] = Prefix.Message;
  k.writeUInt32BE(destId, 1);
  k[5] = MAX_PRIORITY - priority;
  writeU64(k, 6, seq);
  return k;
}

export function parseMessageKey(k: Buffer): { destId: number; priority: number; seq: number } {
  return { destId: k.readUInt32BE(1), priority: MAX_PRIORITY - k[5]!, seq: readU64(k, 6) };
}

/** The range of one destination's messages (for iterators). */
export function messageRange(destId: number): { gte: Buffer; lt: Buffer } {
  const gte = Buffer.from([Prefix.Message, 0, 0, 0, 0]);
  gte.writeUInt32BE(destId, 1);
  const lt = Buffer.from([Prefix.Message, 0, 0, 0, 0]);
  lt.writeUInt32BE(destId + 1, 1);
  return { gte, lt };
}

export function stateKey(destId: number, groupId: number, seq: number): Buffer {
  const k = Buffer.allocUnsafe(17);
  k[0] = Prefix.State;
  k.writeUInt32BE(destId, 1);
  k.writeUInt32BE(groupId, 5);
  writeU64(k, 9, seq);
  return k;
}

export function parseStateKey(k: Buffer): { destId: number; groupId: number; seq: number } {
  return { destId: k.readUInt32BE(1), groupId: k.readUInt32BE(5), seq: readU64(k, 9) };
}

export function dedupKey(destId: number, id: string): Buffer {
  return textKey(Prefix.Dedup, destId, id);
}

export function quarantineKey(mKey: Buffer): Buffer {
  return Buffer.concat([Buffer.from([Prefix.Quarantine]), mKey]);
}

export function nodeKey(name: string): Buffer {
  return Buffer.concat([Buffer.from([Prefix.Node]), Buffer.from(name)]);
}

/** The [gte, lt) range of every key with this prefix byte. */
export function prefixRange(prefix: number): { gte: Buffer; lt: Buffer } {
  return { gte: Buffer.from([prefix]), lt: Buffer.from([prefix + 1]) };
}

export function writeU64(b: Buffer, off: number, v: number): void {
  b.writeUInt32BE(Math.floor(v / 0x1_0000_0000), off);
  b.writeUInt32BE(v >>> 0, off + 4);
}

export function readU64(b: Buffer, off: number): number {
  return b.readUInt32BE(off) * 0x1_0000_0000 + b.readUInt32BE(off + 4);
}
