/**
 * The oldest message a destination holds, for /destz (protocol/MONITORING.md
 * MON7.3). It is read from the store, not found by walking memory, so its
 * cost is bounded per destination whatever the depth: message keys sort by
 * destination, priority, then seq (protocol/STORAGE.md section 2), so the
 * first live record of each priority is that priority's oldest, and the
 * oldest of those is the destination's. The stored time is in the clear head
 * of the record: nothing is decrypted.
 */
import { readMeta } from '../store/envelope.js';
import { MAX_PRIORITY, messageKey, parseMessageKey } from '../store/keys.js';
import type { Db } from '../store/store.js';
import type { Destination } from './model.js';

/**
 * Records read per priority at most. The first ones may be messages already
 * removed in memory whose delete is still queued for the next batch; past
 * this many in a row that priority is skipped (the age is then understated).
 */
const MAX_RECORDS_PER_PRIORITY = 16;

export interface OldestMessage {
  readonly seq: number;
  /** When it was first stored (by its first owner, for a replicated or merged copy). */
  readonly storedAtMs: number;
}

/** The oldest live message of `dest`, or undefined when it holds none on disk yet. */
export async function oldestMessage(db: Db, dest: Destination): Promise<OldestMessage | undefined> {
  if (dest.msgs.size === 0) return undefined;
  let oldest: OldestMessage | undefined;
  // One read at a time: they share libuv's few threads with the store's group commits.
  for (let p = 1; p <= MAX_PRIORITY; p++) {
    const m = await firstLive(db, dest, p);
    if (m === undefined) continue;
    if (oldest === undefined || m.storedAtMs < oldest.storedAtMs) oldest = m;
  }
  return oldest;
}

async function firstLive(db: Db, dest: Destination, priority: number): Promise<OldestMessage | undefined> {
  // The key of priority p - 1 is the first one past priority p (the byte holds MAX_PRIORITY - p).
  const range = {
    gte: messageKey(dest.id, priority, 0),
    lt: messageKey(dest.id, priority - 1, 0),
    limit: MAX_RECORDS_PER_PRIORITY,
  };
  for await (const [k, v] of db.iterator(range)) {
    const { seq } = parseMessageKey(k);
    if (!dest.msgs.has(seq)) continue;
    try {
      return { seq, storedAtMs: readMeta(v).timestampMs };
    } catch {
      continue; // a damaged head: set aside when delivered (D8.3), not the monitor's concern
    }
  }
  return undefined;
}
