/**
 * The node's LevelDB: opened with Buffer keys and values, read at start by
 * prefix (every record kind of protocol/STORAGE.md section 2), and written
 * only through the group-commit writer.
 */
import { statSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Level } from 'level';
import { prefixRange } from './keys.js';
import { BatchWriter } from './writer.js';

export type Db = Level<Buffer, Buffer>;

/** One group's record of one message: S key value (protocol/STORAGE.md 2.5). */
export interface GroupMessageState {
  deliveries: number;
  /** Acked, termed or dead-lettered by this group. */
  done: boolean;
  /** Ack deadline of the current delivery (0 when not in flight). */
  deadlineMs: number;
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

  /**
   * Calls `visit` for every record with this prefix byte, in key order,
   * streaming: the engine builds its memory as it reads, so loading never
   * holds a second copy of the store (S1.3).
   */
  async scan(prefix: number, visit: (key: Buffer, value: Buffer) => void): Promise<number> {
    let n = 0;
    for await (const [k, v] of this.db.iterator(prefixRange(prefix))) {
      visit(k, v);
      n++;
    }
    return n;
  }

  /** Counts the records with this prefix byte (keys only). */
  async count(prefix: number): Promise<number> {
    let n = 0;
    for await (const _k of this.db.keys(prefixRange(prefix))) n++;
    return n;
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
    this.writer.closed = true;
    await this.db.close();
  }
}
