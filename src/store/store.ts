/**
 * The node's LevelDB: opened with Buffer keys and values, loaded into a
 * snapshot at start (every record kind of protocol/STORAGE.md section 2),
 * and written only through the group-commit writer.
 */
import { statSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Level } from 'level';
import { readMeta, type MessageMeta } from './envelope.js';
import { Prefix, parseMessageKey, parseStateKey, prefixRange, readU64, nodeKey } from './keys.js';
import { BatchWriter } from './writer.js';

export type Db = Level<Buffer, Buffer>;

export interface LoadedMessage {
  destId: number;
  seq: number;
  priority: number;
  key: Buffer;
  size: number;
  meta: MessageMeta;
}

export interface LoadedState {
  destId: number;
  groupId: number;
  seq: number;
  state: GroupMessageState;
}

/** One group's record of one message: S key value (protocol/STORAGE.md 2.5). */
export interface GroupMessageState {
  deliveries: number;
  /** Acked, termed or dead-lettered by this group. */
  done: boolean;
  /** Ack deadline of the current delivery (0 when not in flight). */
  deadlineMs: number;
}

export interface Snapshot {
  destinations: { name: string; json: string }[];
  groups: { destId: number; name: string; json: string }[];
  messages: LoadedMessage[];
  states: LoadedState[];
  dedup: { destId: number; id: string; seq: number; storedAtMs: number }[];
  nextIds: Record<string, number>;
  quarantined: number;
}

export function encodeState(s: GroupMessageState): Buffer {
  const b = Buffer.allocUnsafe(9);
  b.writeUInt16BE(Math.min(s.deliveries, 0xffff), 0);
  b[2] = s.done ? 1 : 0;
  b.writeUIntBE(s.deadlineMs, 3, 6);
  return b;
}

export function decodeState(b: Buffer): GroupMessageState {
  return { deliveries: b.readUInt16BE(0), done: b[2] === 1, deadlineMs: b.readUIntBE(3, 6) };
}

export class Store {
  readonly writer: BatchWriter;

  private constructor(
    readonly db: Db,
    readonly dir: string,
  ) {
    this.writer = new BatchWriter(db);
  }

  static async open(dir: string): Promise<Store> {
    const db = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open();
    return new Store(db, dir);
  }

  /** Reads every record the engine rebuilds its memory from. */
  async load(): Promise<Snapshot> {
    const snap: Snapshot = {
      destinations: [],
      groups: [],
      messages: [],
      states: [],
      dedup: [],
      nextIds: {},
      quarantined: 0,
    };
    for await (const [k, v] of this.db.iterator(prefixRange(Prefix.Destination))) {
      snap.destinations.push({ name: k.toString('utf8', 1), json: v.toString() });
    }
    for await (const [k, v] of this.db.iterator(prefixRange(Prefix.Group))) {
      snap.groups.push({ destId: k.readUInt32BE(1), name: k.toString('utf8', 5), json: v.toString() });
    }
    for await (const [k, v] of this.db.iterator(prefixRange(Prefix.Message))) {
      const { destId, priority, seq } = parseMessageKey(k);
      let meta: MessageMeta;
      try {
        meta = readMeta(v);
      } catch {
        // Unreadable header: kept for delivery-time verification, which sets it aside.
        meta = { id: '', priority, timestampMs: 0, expiresAtMs: 0, notBeforeMs: 0, producer: undefined };
      }
      snap.messages.push({ destId, seq, priority, key: k, size: k.length + v.length, meta });
    }
    for await (const [k, v] of this.db.iterator(prefixRange(Prefix.State))) {
      const { destId, groupId, seq } = parseStateKey(k);
      snap.states.push({ destId, groupId, seq, state: decodeState(v) });
    }
    for await (const [k, v] of this.db.iterator(prefixRange(Prefix.Dedup))) {
      snap.dedup.push({
        destId: k.readUInt32BE(1),
        id: k.toString('utf8', 5),
        seq: readU64(v, 0),
        storedAtMs: v.readUIntBE(8, 6),
      });
    }
    for await (const [k, v] of this.db.iterator(prefixRange(Prefix.Node))) {
      snap.nextIds[k.toString('utf8', 1)] = Number(v.toString());
    }
    for await (const _k of this.db.keys(prefixRange(Prefix.Quarantine))) snap.quarantined++;
    return snap;
  }

  nodeCounter(name: string): Buffer {
    return nodeKey(name);
  }

  /** Bytes the database files take on disk now. */
  diskBytes(): number {
    let total = 0;
    for (const f of readdirSync(this.dir)) {
      try {
        total += statSync(path.join(this.dir, f)).size;
      } catch {
        // a file LevelDB removed while we looked
      }
    }
    return total;
  }

  async close(): Promise<void> {
    await this.writer.drain();
    await this.db.close();
  }
}
