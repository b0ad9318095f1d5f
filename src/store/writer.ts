/**
 * Group commit (protocol/STORAGE.md section 4): every put and delete of an
 * event-loop turn goes into one chained LevelDB batch, written with
 * `sync: true`; `commit()` resolves once the batch holding everything queued
 * so far is on disk. While one batch is being written the next one fills,
 * so throughput does not hang on one fsync per message.
 */
import type { Level } from 'level';

type Db = Level<Buffer, Buffer>;

interface Pending {
  ops: { type: 'put' | 'del'; key: Buffer; value?: Buffer }[];
  bytes: number;
  done: Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** Most operations in one batch: bounds the latency of the batch that is being filled. */
const MAX_BATCH_OPS = 4096;

export class BatchWriter {
  /** Batches not yet written, oldest first; the last one takes new operations. */
  private readonly queue: Pending[] = [];
  private writing = false;
  /** Bytes of the batch being written now. */
  private writingBytes = 0;
  private scheduled = false;
  /** Bytes handed to LevelDB since the node started (keys and values). */
  bytesWritten = 0;
  batches = 0;
  /** Called as each batch is assembled; what it puts goes into that batch. */
  beforeWrite: ((put: (key: Buffer, value: Buffer) => void) => void) | undefined;

  constructor(private readonly db: Db) {}

  put(key: Buffer, value: Buffer): void {
    const p = this.open();
    p.ops.push({ type: 'put', key, value });
    p.bytes += key.length + value.length;
  }

  del(key: Buffer): void {
    this.open().ops.push({ type: 'del', key });
  }

  /** Bytes queued or being written, not yet counted in bytesWritten (for the disk limit, D8.4). */
  get pendingBytes(): number {
    let n = this.writingBytes;
    for (const p of this.queue) n += p.bytes;
    return n;
  }

  /** Resolves when everything queued so far is synced; rejects if that batch failed. */
  commit(): Promise<void> {
    const last = this.queue[this.queue.length - 1];
    return last?.done ?? Promise.resolve();
  }

  /** Waits for everything queued and in flight. */
  async drain(): Promise<void> {
    while (this.queue.length > 0 || this.writing) {
      const last = this.queue[this.queue.length - 1];
      if (last !== undefined) await last.done.catch(() => undefined);
      else await new Promise<void>((r) => setImmediate(r));
    }
  }

  private open(): Pending {
    let last = this.queue[this.queue.length - 1];
    if (last === undefined || last.ops.length >= MAX_BATCH_OPS) {
      last = newPending();
      this.queue.push(last);
    }
    if (!this.scheduled && !this.writing) {
      // Wait for the end of this turn so that everything it queues shares one sync.
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.next();
      });
    }
    return last;
  }

  /** Set once the store closes: later batches are refused instead of reaching a closed database. */
  closed = false;

  private next(): void {
    if (this.writing) return;
    const p = this.queue.shift();
    if (p === undefined) return;
    if (this.closed || this.db.status !== 'open') {
      p.reject(new Error('store is closed'));
      this.next();
      return;
    }
    this.writing = true;
    this.beforeWrite?.((key, value) => {
      p.ops.push({ type: 'put', key, value });
      p.bytes += key.length + value.length;
    });
    this.writingBytes = p.bytes;
    let written: Promise<void>;
    try {
      const batch = this.db.batch();
      for (const op of p.ops) {
        if (op.type === 'put') batch.put(op.key, op.value!);
        else batch.del(op.key);
      }
      written = batch.write({ sync: true });
    } catch (err) {
      written = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    written.then(
      () => {
        this.bytesWritten += p.bytes;
        this.batches++;
        this.writing = false;
        this.writingBytes = 0;
        p.resolve();
        this.next();
      },
      (err: unknown) => {
        this.writing = false;
        this.writingBytes = 0;
        p.reject(err instanceof Error ? err : new Error(String(err)));
        this.next();
      },
    );
  }
}

function newPending(): Pending {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A batch nobody awaits must not crash the process when it fails.
  done.catch(() => undefined);
  return { ops: [], bytes: 0, done, resolve, reject };
}
