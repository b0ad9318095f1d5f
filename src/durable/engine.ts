/**
 * The durable engine of one node (protocol/DURABLE.md): destinations,
 * consumer groups, send with group commit and de-duplication, pull with
 * waiting, ack/nak/in-progress/term, redelivery on ack timeout, priorities,
 * TTL, delayed delivery, dead letters, limits, and encryption at rest.
 *
 * Memory holds the schedule (which message each group gets next, what is
 * in flight and until when); LevelDB holds the messages and every state
 * change, written through the group-commit writer. The engine rebuilds its
 * memory from the store at open.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { IntegrityError, type KeyRing } from '../crypto/seal.js';
import { DurableError, DurableErrorCode as C, StartupError } from '../errors.js';
import type { Logger } from '../log.js';
import { MAX_DURATION_MS } from '../config/units.js';
import { MAX_PULL_BATCH } from '../config/defaults.js';
import { openMessage, sealedSize, sealMessage, type MessageMeta } from '../store/envelope.js';
import {
  dedupKey,
  destinationKey,
  groupKey,
  messageKey,
  nodeKey,
  quarantineKey,
  stateKey,
  writeU64,
} from '../store/keys.js';
import { encodeState, Store } from '../store/store.js';
import { Scheduler } from './scheduler.js';
import { loadState } from './load.js';
import { oldestMessage, type OldestMessage } from './oldest.js';
import type {
  Delivery,
  DestinationInfo,
  EngineOptions,
  EngineStats,
  Inventory,
  InventoryState,
  PullRequest,
  ReplicatedChange,
  ReplicatedMessage,
  ReplicationSink,
  SendRequest,
  SendResult,
} from './types.js';
import { checkDestinationName, DEAD_LETTER_HEADER, withHeader } from './names.js';
import type { DurableService, SettleKind } from './service.js';
import {
  Destination,
  Group,
  type DestinationSettings,
  type InFlight,
  type StoredMsg,
  type Taken,
  type TimerEvent,
} from './model.js';

export { checkDestinationName, DEAD_LETTER_HEADER } from './names.js';
export type {
  EngineOptions,
  SendRequest,
  SendResult,
  PullRequest,
  Delivery,
  DestinationInfo,
  EngineStats,
} from './types.js';

/** Where the engine reports timings for metrics (src/metrics); undefined: none are kept. */
export interface EngineObserver {
  /** A delivery was settled `ms` after the pull took it (D4.2, D4.3, D4.5). */
  settled(kind: 'ack' | 'nak' | 'term', ms: number): void;
}

const KEY_CHECK_TEXT = Buffer.from('swarmmq/keycheck/v1');
/** Stale ready-queue entries tolerated beyond twice the live messages before a rebuild. */
const STALE_READY_SLACK = 1024;
const GROUP_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_ID_BYTES = 128;
/** A message key: prefix, destination id (4), inverted priority (1), seq (8) (STORAGE.md 2.3). */
const MESSAGE_KEY_BYTES = 14;
/** How often the de-duplication window is pruned. */
const DEDUP_PRUNE_INTERVAL_MS = 1000;
/** Removed message ids remembered for merges (M7.4): about 100 bytes each. */
const MAX_TOMBSTONES = 200_000;
/** How often the on-disk size is measured for the disk limit. */
const DISK_MEASURE_INTERVAL_MS = 1000;

export class DurableEngine implements DurableService {
  readonly dests = new Map<string, Destination>();
  readonly byId = new Map<number, Destination>();
  /** Ack deadlines, NAK delays, delayed releases and expiries: one timer for all (Scheduler). */
  private readonly timers = new Scheduler<TimerEvent>((e, now) => this.handle(e, now));
  private nextDestId = 1;
  private nextGroupId = 1;
  private readonly idPool = { buf: Buffer.alloc(0), pos: 0 };
  private closed = false;
  private lastWriteError: unknown;
  private diskMeasured = 0;
  private writtenAtMeasure = 0;
  private readonly housekeeping: NodeJS.Timeout[] = [];
  /** Set by the mesh: where an owned destination's changes are copied to (protocol/MESH.md section 5). */
  replication: ReplicationSink | undefined;
  /** Set by the node: the metrics' hook (protocol/METRICS.md MT3.3). */
  observer: EngineObserver | undefined;
  /** Role of destinations this node creates for a send or CREATE (the mesh routes those to owners). */
  readonly stats: EngineStats = {
    stored: 0,
    duplicates: 0,
    delivered: 0,
    redelivered: 0,
    acked: 0,
    expired: 0,
    deadLettered: 0,
    quarantined: 0,
  };

  private constructor(
    private readonly store: Store,
    private readonly ring: KeyRing,
    private readonly opts: EngineOptions,
    private readonly log: Logger,
  ) {
    this.maxPullBytes = opts.maxPullBytes;
  }

  /** Bytes one PULL may take; follows the connection pending limit when a reload changes it (OPS2.2). */
  maxPullBytes: number;

  static async open(opts: EngineOptions, ring: KeyRing, log: Logger): Promise<DurableEngine> {
    const started = Date.now();
    const store = await Store.open(path.join(opts.dataDir, 'store'));
    const engine = new DurableEngine(store, ring, opts, log);
    store.writer.beforeWrite = (put) => {
      for (const d of engine.dests.values()) {
        if (!d.seqDirty) continue;
        d.seqDirty = false;
        put(destinationKey(d.name), engine.destinationRecord(d));
      }
    };
    try {
      await engine.load();
      await engine.checkKey();
    } catch (err) {
      await store.close();
      throw err;
    }
    for (const d of opts.destinations) {
      // Config names are text; names from the wire are byte strings (latin1): use the wire form.
      const name = Buffer.from(d.name, 'utf8').toString('latin1');
      const existing = engine.dests.get(name);
      if (existing === undefined) engine.createDestination(name, d.settings);
      else existing.settings = { ...existing.settings, ...d.settings };
    }
    await store.writer.commit();
    engine.measureDisk();
    engine.housekeeping.push(setInterval(() => engine.pruneDedup(), DEDUP_PRUNE_INTERVAL_MS).unref());
    engine.housekeeping.push(setInterval(() => engine.measureDisk(), DISK_MEASURE_INTERVAL_MS).unref());
    let messages = 0;
    for (const d of engine.dests.values()) messages += d.msgs.size;
    log.info({ destinations: engine.dests.size, messages, ms: Date.now() - started }, 'durable store loaded');
    return engine;
  }

  // ---- loading ----------------------------------------------------------

  /** Rebuilds memory from the store (load.ts). */
  private async load(): Promise<void> {
    const out = await loadState(this.store, this);
    this.nextDestId = out.nextDestId;
    this.nextGroupId = out.nextGroupId;
    this.stats.quarantined = out.quarantined;
  }

  /**
   * S3.5: the store remembers a MAC of a constant under the master key it
   * was written with; a node started with another key refuses to start
   * instead of setting every stored message aside as tampered.
   */
  private async checkKey(): Promise<void> {
    const key = nodeKey('keycheck');
    const expected = this.ring.mac(KEY_CHECK_TEXT);
    const stored = await this.store.db.get(key);
    if (stored === undefined) {
      this.store.writer.put(key, expected);
      await this.store.writer.commit();
    } else if (!stored.equals(expected)) {
      throw new StartupError(
        'MASTER_KEY_MISMATCH',
        'the master key is not the one this store was written with (security.master_key / SWARMMQ_MASTER_KEY / <data_dir>/master.key)',
      );
    }
  }

  // ---- destinations -----------------------------------------------------

  isDestination(name: string): boolean {
    return this.dests.has(name);
  }

  settingsFor(name: string): DestinationSettings {
    const isDlq = name.endsWith('.DLQ');
    return {
      ...this.opts.defaults,
      maxDeliveries: isDlq ? 0 : this.opts.defaults.maxDeliveries,
      deadLetter: isDlq ? undefined : `${name}.DLQ`,
    };
  }

  /**
   * Creates a destination (D1.2); returns the existing one if it is there.
   * `forDeadLetters`: made to hold a dead-lettered message, which must not be
   * lost (D1.3, D3.8), so limits.max_destinations (a limit on sends, D8.4)
   * does not apply.
   */
  createDestination(
    name: string,
    settings: Partial<DestinationSettings> = {},
    forDeadLetters = false,
    role: 'owner' | 'replica' = 'owner',
  ): Destination {
    const existing = this.dests.get(name);
    if (existing !== undefined) return existing;
    // A dead-letter name is a valid name plus ".DLQ": only its length can be over (D1.3).
    if (!forDeadLetters) checkDestinationName(name);
    if (!forDeadLetters && this.dests.size >= this.opts.maxDestinations) {
      throw new DurableError(
        C.TooManyDestinations,
        `maximum destinations reached (${this.opts.maxDestinations})`,
      );
    }
    const id = this.nextDestId++;
    const dest = new Destination(id, name, { ...this.settingsFor(name), ...settings }, 0);
    dest.role = role;
    this.dests.set(name, dest);
    this.byId.set(id, dest);
    this.persistDestination(dest);
    this.store.writer.put(nodeKey('dest'), Buffer.from(String(this.nextDestId)));
    this.log.info({ destination: name, id }, 'destination created');
    this.onCreated?.(name);
    this.emit(dest, { op: 'dest', settings: dest.settings });
    return dest;
  }

  /** Told of every new destination (the mesh's catalog, M3.4). */
  onCreated: ((name: string) => void) | undefined;

  /** Copies a change of an owned destination to its replicas (M5.3); in order, not awaited. */
  private emit(dest: Destination, change: ReplicatedChange): void {
    if (dest.role === 'owner' && this.replication !== undefined) this.replication.change(dest.name, change);
  }

  private putState(
    dest: Destination,
    g: Group,
    seq: number,
    deliveries: number,
    done: boolean,
    deadlineMs: number,
  ): void {
    this.store.writer.put(stateKey(dest.id, g.id, seq), encodeState({ deliveries, done, deadlineMs }));
    this.emit(dest, { op: 'state', group: g.name, seq, deliveries, done, deadlineMs });
  }

  private persistDestination(dest: Destination): void {
    this.store.writer.put(destinationKey(dest.name), this.destinationRecord(dest));
  }

  private destinationRecord(dest: Destination): Buffer {
    return Buffer.from(JSON.stringify({ id: dest.id, settings: dest.settings, lastSeq: dest.lastSeq }));
  }

  /** The admin verb's create: like createDestination, and waits for it to be on disk. */
  async ensureDestination(name: string, settings: Partial<DestinationSettings> = {}): Promise<boolean> {
    const existed = this.dests.has(name);
    const dest = this.createDestination(name, settings);
    if (existed && Object.keys(settings).length > 0) {
      dest.settings = { ...dest.settings, ...settings };
      this.persistDestination(dest);
      this.emit(dest, { op: 'dest', settings: dest.settings });
    }
    await this.store.writer.commit();
    return !existed;
  }

  private group(dest: Destination, name: string, ackTimeoutMs?: number): Group {
    let g = dest.groups.get(name);
    if (g === undefined) {
      if (dest.groups.size >= this.opts.maxGroupsPerDestination) {
        // D2.6: each group holds every stored message until it acks it, so their number is bounded.
        throw new DurableError(
          C.TooManyGroups,
          `maximum consumer groups reached for ${dest.name} (${this.opts.maxGroupsPerDestination}); DROP one first`,
        );
      }
      if (!GROUP_NAME.test(name)) {
        throw new DurableError(
          C.InvalidGroup,
          `invalid group name "${name.slice(0, 64)}" (letters, digits, _ and -, at most 64)`,
        );
      }
      g = new Group(
        this.nextGroupId++,
        name,
        ackTimeoutMs ?? dest.settings.ackTimeoutMs,
        dest.settings.maxDeliveries,
      );
      dest.groups.set(name, g);
      this.persistGroup(dest, g);
      this.emit(dest, {
        op: 'group',
        group: name,
        ackTimeoutMs: g.ackTimeoutMs,
        maxDeliveries: g.maxDeliveries,
      });
      this.store.writer.put(nodeKey('group'), Buffer.from(String(this.nextGroupId)));
      // A new group sees every message still stored (D2.3), in delivery order.
      for (const m of dest.msgs.values()) if (m.notBeforeMs === 0) g.ready.push(m.priority, m.seq);
    } else if (ackTimeoutMs !== undefined && ackTimeoutMs !== g.ackTimeoutMs) {
      g.ackTimeoutMs = ackTimeoutMs;
      this.persistGroup(dest, g);
      this.emit(dest, { op: 'group', group: name, ackTimeoutMs, maxDeliveries: g.maxDeliveries });
    }
    return g;
  }

  /**
   * D7.3: deletes a group with its state; messages every remaining group is
   * done with go too (none go when no group remains, D2.2).
   */
  dropGroup(destination: string, name: string): void {
    const dest = this.dests.get(destination);
    if (dest === undefined)
      throw new DurableError(C.UnknownDestination, `unknown destination ${destination}`);
    const g = dest.groups.get(name);
    if (g === undefined)
      throw new DurableError(C.InvalidGroup, `unknown group ${name.slice(0, 64)} of ${destination}`);
    dest.groups.delete(name);
    this.emit(dest, { op: 'drop', group: name });
    g.inflight.clear(); // its timer events find nothing and end
    const w = this.store.writer;
    w.del(groupKey(dest.id, name));
    for (const seq of dest.msgs.keys()) w.del(stateKey(dest.id, g.id, seq));
    for (const waiter of [...g.waiters]) waiter.resolve([]);
    if (dest.groups.size > 0) {
      for (const seq of [...dest.msgs.keys()]) if (dest.doneByAll(seq)) this.remove(dest, seq);
    }
    this.log.info({ destination, group: name }, 'consumer group dropped');
  }

  private persistGroup(dest: Destination, g: Group): void {
    const json = JSON.stringify({ id: g.id, ackTimeoutMs: g.ackTimeoutMs, maxDeliveries: g.maxDeliveries });
    this.store.writer.put(groupKey(dest.id, g.name), Buffer.from(json));
  }

  list(): DestinationInfo[] {
    return [...this.dests.values()]
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .map((d) => ({
        name: d.name,
        depth: d.msgs.size,
        bytes: d.bytes,
        lastSeq: d.lastSeq,
        deadLetter: d.settings.deadLetter,
        groups: [...d.groups.values()].map((g) => ({
          name: g.name,
          pending: d.msgs.size - g.done.size - g.inflight.size,
          inFlight: g.inflight.size,
          acked: g.done.size,
        })),
      }));
  }

  // ---- send -------------------------------------------------------------

  /** Stores a message; resolves once it is synced to disk (D3.1). */
  async send(req: SendRequest): Promise<SendResult> {
    if (this.closed) throw new DurableError(C.Closed, 'node is shutting down');
    const priority = req.priority ?? 5;
    if (!Number.isInteger(priority) || priority < 1 || priority > 10) {
      throw new DurableError(C.InvalidOption, `priority must be 1-10, got ${priority}`);
    }
    if (
      req.id !== undefined &&
      (req.id.length === 0 || Buffer.byteLength(req.id) > MAX_ID_BYTES || /\s/.test(req.id))
    ) {
      throw new DurableError(C.InvalidOption, `id must be 1-${MAX_ID_BYTES} bytes without whitespace`);
    }
    let dest = this.dests.get(req.destination);
    if (dest === undefined) {
      checkDestinationName(req.destination);
      dest = this.createDestination(req.destination);
    }
    const now = Date.now();
    if (req.id !== undefined) {
      const seen = dest.dedup.get(req.id);
      if (seen !== undefined && now - seen.storedAtMs < this.opts.dedupWindowMs) {
        this.stats.duplicates++;
        return { destination: dest.name, seq: seen.seq, id: req.id, duplicate: true };
      }
      const pending = dest.pendingIds.get(req.id);
      if (pending !== undefined) {
        const first = await pending;
        this.stats.duplicates++;
        return { destination: dest.name, seq: first.seq, id: req.id, duplicate: true };
      }
    }
    const s = dest.settings;
    for (const [what, v] of [
      ['ttl', req.ttlMs],
      ['delay', req.delayMs],
    ] as const) {
      if (v !== undefined && (!Number.isSafeInteger(v) || v < 0 || v > MAX_DURATION_MS)) {
        throw new DurableError(C.InvalidOption, `${what} must be 0-${MAX_DURATION_MS} ms`);
      }
    }
    const id = req.id ?? this.newId();
    const ttlMs = req.ttlMs ?? s.defaultTtlMs;
    const meta: MessageMeta = {
      id,
      priority,
      timestampMs: now,
      expiresAtMs: ttlMs > 0 ? now + ttlMs : 0,
      notBeforeMs: req.delayMs !== undefined && req.delayMs > 0 ? now + req.delayMs : 0,
      producer: req.producer,
    };
    // The bytes the record will take (key + value, as DESTS counts them). Sends
    // still being written count too, or one batch could pass every limit (D8.4).
    const size = MESSAGE_KEY_BYTES + sealedSize(meta, req.headers, req.payload.length);
    if (s.maxMsgs > 0 && dest.msgs.size + dest.pendingMsgs >= s.maxMsgs) {
      throw new DurableError(C.DestinationFull, `destination ${dest.name} is full (max_msgs ${s.maxMsgs})`);
    }
    if (s.maxBytes > 0 && dest.bytes + dest.pendingBytes + size > s.maxBytes) {
      throw new DurableError(C.DestinationFull, `destination ${dest.name} is full (max_bytes ${s.maxBytes})`);
    }
    if (this.diskBytes() + size > this.opts.maxDiskBytes) {
      throw new DurableError(
        C.DiskFull,
        `node disk limit reached (max_disk_usage ${this.opts.maxDiskBytes} bytes)`,
      );
    }
    const seq = ++dest.lastSeq;
    dest.pendingMsgs++;
    dest.pendingBytes += size;
    // Only ids the producer chose can come back in a retry: assigned ones need no dedup record.
    const work = this.write(dest, seq, meta, req.headers, req.payload, req.id !== undefined);
    if (req.id !== undefined) {
      const pending = work.then(() => ({ seq }));
      // Awaited only by a duplicate sent meanwhile: a failed write must not be an unhandled rejection.
      pending.catch(() => undefined);
      dest.pendingIds.set(req.id, pending);
    }
    try {
      await work;
    } finally {
      dest.pendingMsgs--;
      dest.pendingBytes -= size;
      if (req.id !== undefined) dest.pendingIds.delete(req.id);
    }
    return { destination: dest.name, seq, id, duplicate: false };
  }

  /** Queues a message's records, waits for the sync, then makes it deliverable. */
  private async write(
    dest: Destination,
    seq: number,
    meta: MessageMeta,
    headers: Buffer | undefined,
    payload: Buffer,
    dedup: boolean,
  ): Promise<void> {
    const msg = this.queueMessage(dest, seq, meta, headers, payload, dedup);
    // An owned destination's message is confirmed once it is synced here and
    // at its replicas (protocol/MESH.md M5.2): both run at once.
    const replicated =
      dest.role === 'owner' && this.replication !== undefined
        ? this.replication.message(dest.name, { seq, ...meta, headers, payload, dedup })
        : undefined;
    // Settled either way before the local result is looked at: a rejection must never go unhandled.
    const copies = replicated?.then(
      () => undefined,
      (err: unknown) => err,
    );
    try {
      await this.store.writer.commit();
    } catch (err) {
      await copies;
      // Every send of a failed batch lands here; the batch is logged once, by the first of them.
      if (this.lastWriteError !== err) {
        this.lastWriteError = err;
        this.log.error({ destination: dest.name, err: (err as Error).message }, 'store write failed');
      }
      throw new DurableError(C.StorageFailure, `message not stored: ${(err as Error).message}`);
    }
    const failed = await copies;
    // Stored here, so it is delivered even when too few replicas confirmed
    // (the sender hears so and may retry with the same id, M5.2).
    this.admit(dest, msg, dedup, meta.timestampMs);
    if (failed !== undefined) throw failed;
  }

  /** Queues a message's records (not yet synced) and returns its in-memory entry. */
  private queueMessage(
    dest: Destination,
    seq: number,
    meta: MessageMeta,
    headers: Buffer | undefined,
    payload: Buffer,
    dedup: boolean,
  ): StoredMsg {
    const key = messageKey(dest.id, meta.priority, seq);
    const value = sealMessage(this.ring, key, meta, headers, payload);
    const w = this.store.writer;
    w.put(key, value);
    if (dedup) {
      const v = Buffer.allocUnsafe(14);
      writeU64(v, 0, seq);
      v.writeUIntBE(meta.timestampMs, 8, 6);
      w.put(dedupKey(dest.id, meta.id), v);
    }
    // The destination record (with lastSeq) is rewritten once per batch, so
    // sequence numbers never go back after a restart (D3.3).
    dest.seqDirty = true;
    return {
      seq,
      id: meta.id,
      priority: meta.priority,
      size: key.length + value.length,
      expiresAtMs: meta.expiresAtMs,
      notBeforeMs: meta.notBeforeMs,
    };
  }

  /** A synced message joins the schedule: counted, de-dup indexed, timed, and released to the groups. */
  private admit(dest: Destination, msg: StoredMsg, dedup: boolean, storedAtMs: number): void {
    const seq = msg.seq;
    const meta = { id: msg.id, timestampMs: storedAtMs };
    dest.msgs.set(seq, msg);
    dest.bytes += msg.size;
    dest.stored++;
    this.stats.stored++;
    if (dedup) {
      dest.dedup.set(meta.id, { seq, storedAtMs: meta.timestampMs });
      dest.dedupOrder.push({ id: meta.id, storedAtMs: meta.timestampMs });
    }
    if (msg.expiresAtMs > 0) this.schedule({ dueMs: msg.expiresAtMs, kind: 'expire', dest, seq });
    if (msg.notBeforeMs > 0) this.schedule({ dueMs: msg.notBeforeMs, kind: 'release', dest, seq });
    else this.release(dest, msg);
  }

  /** Makes a message deliverable to every group and wakes waiting pulls. */
  private release(dest: Destination, msg: StoredMsg): void {
    msg.notBeforeMs = 0;
    for (const g of dest.groups.values()) {
      g.ready.push(msg.priority, msg.seq);
      if (g.ready.size > 2 * dest.msgs.size + STALE_READY_SLACK) this.compactReady(dest, g);
      this.serveWaiters(dest, g);
    }
  }

  /**
   * Rebuilds a group's ready queue from the stored messages. Removed and
   * expired messages leave stale entries in the queues of groups that do not
   * pull; rebuilding once they outnumber the live ones keeps memory bounded
   * by the backlog, at an amortised cost per message.
   */
  private compactReady(dest: Destination, g: Group): void {
    g.ready.clear();
    for (const m of dest.msgs.values()) {
      if (m.notBeforeMs === 0 && m.leaving !== true && !g.done.has(m.seq) && !g.inflight.has(m.seq)) {
        g.ready.push(m.priority, m.seq);
      }
    }
  }

  // ---- pull ---------------------------------------------------------------

  /** Up to `max` messages; waits up to `waitMs` when there are none (D4.1). */
  async pull(req: PullRequest): Promise<Delivery[]> {
    if (this.closed) throw new DurableError(C.Closed, 'node is shutting down');
    const dest = this.dests.get(req.destination);
    if (dest === undefined)
      throw new DurableError(C.UnknownDestination, `unknown destination ${req.destination}`);
    const g = this.group(dest, req.group, req.ackTimeoutMs);
    const max = Math.max(1, Math.min(req.max, MAX_PULL_BATCH));
    let taken = this.take(dest, g, max);
    if (taken.length === 0 && req.waitMs > 0) {
      taken = await new Promise<Taken[]>((resolve) => {
        const waiter = { max, settled: false, resolve: (s: Taken[]) => finish(s) };
        const finish = (s: Taken[]): void => {
          if (waiter.settled) return;
          waiter.settled = true;
          clearTimeout(timer);
          req.signal?.removeEventListener('abort', onAbort);
          const i = g.waiters.indexOf(waiter);
          if (i >= 0) g.waiters.splice(i, 1);
          resolve(s);
        };
        const onAbort = (): void => finish([]);
        const timer = setTimeout(() => finish([]), req.waitMs);
        req.signal?.addEventListener('abort', onAbort);
        g.waiters.push(waiter);
      });
    }
    return this.fetch(dest, g, taken);
  }

  /** Marks up to `max` ready messages in flight for `g` and returns them with their delivery numbers. */
  private take(dest: Destination, g: Group, max: number): Taken[] {
    const out: Taken[] = [];
    const now = Date.now();
    let bytes = 0;
    while (out.length < max && (out.length === 0 || bytes < this.maxPullBytes)) {
      const next = g.ready.pop();
      if (next === undefined) break;
      const seq = next.seq;
      const msg = dest.msgs.get(seq);
      if (
        msg === undefined ||
        msg.leaving === true ||
        g.done.has(seq) ||
        g.inflight.has(seq) ||
        msg.notBeforeMs > 0
      ) {
        continue; // stale
      }
      if (msg.expiresAtMs > 0 && msg.expiresAtMs <= now) {
        this.expire(dest, seq); // D5.2: never delivered once expired
        continue;
      }
      const delivery = (g.deliveries.get(seq) ?? 0) + 1;
      g.deliveries.set(seq, delivery);
      const deadlineMs = now + g.ackTimeoutMs;
      g.inflight.set(seq, { delivery, deadlineMs, eventDueMs: deadlineMs, takenAtMs: now });
      this.putState(dest, g, seq, delivery, false, deadlineMs);
      this.schedule({ dueMs: deadlineMs, kind: 'deadline', dest, group: g, seq, delivery });
      this.stats.delivered++;
      if (delivery > 1) this.stats.redelivered++;
      out.push({ seq, delivery });
      bytes += msg.size;
    }
    return out;
  }

  /** Reads, verifies and decrypts the taken messages; sets aside any that fail (D8.3). */
  private async fetch(dest: Destination, g: Group, taken: Taken[]): Promise<Delivery[]> {
    if (taken.length === 0) return [];
    const keys = taken.map(({ seq }) => messageKey(dest.id, dest.msgs.get(seq)?.priority ?? 5, seq));
    const values = await this.store.db.getMany(keys);
    const out: Delivery[] = [];
    for (let i = 0; i < taken.length; i++) {
      const { seq, delivery } = taken[i]!;
      const value = values[i];
      const flight = g.inflight.get(seq);
      // Removed, settled, or no longer this delivery while it was read (its ack
      // deadline passed and it was redelivered or dead-lettered): not ours to hand out.
      if (value === undefined || flight === undefined || flight.delivery !== delivery) continue;
      try {
        const m = openMessage(this.ring, keys[i]!, value);
        out.push({
          destination: dest.name,
          handle: `${seq}/${flight.delivery}/${g.name}/${dest.name}`,
          seq,
          id: m.meta.id,
          priority: m.meta.priority,
          deliveries: flight.delivery,
          timestampMs: m.meta.timestampMs,
          producer: m.meta.producer,
          headers: m.headers,
          payload: m.payload,
        });
      } catch (err) {
        if (!(err instanceof IntegrityError)) throw err;
        this.quarantine(dest, seq, keys[i]!, value, err.message);
      }
    }
    return out;
  }

  private serveWaiters(dest: Destination, g: Group): void {
    while (g.waiters.length > 0 && g.ready.size > 0) {
      const w = g.waiters[0]!;
      const taken = this.take(dest, g, w.max);
      if (taken.length === 0) break;
      g.waiters.shift();
      w.resolve(taken);
    }
  }

  // ---- settle -------------------------------------------------------------

  /** The settle verbs by name (DurableService). */
  settle(kind: SettleKind, handle: string, delayMs = 0): void {
    if (kind === 'ack') this.ack(handle);
    else if (kind === 'nak') this.nak(handle, delayMs);
    else if (kind === 'wip') this.working(handle);
    else this.term(handle);
  }

  /** D4.2: done with the message for this group. */
  ack(handle: string): void {
    const { dest, g, seq, flight } = this.inFlight(handle);
    this.observeSettle('ack', flight);
    g.inflight.delete(seq);
    this.stats.acked++;
    this.finish(dest, g, seq);
  }

  /** D4.3: deliver again, now or after `delayMs`. */
  nak(handle: string, delayMs = 0): void {
    const { dest, g, seq, flight } = this.inFlight(handle);
    this.observeSettle('nak', flight);
    if (delayMs > 0) {
      // Stays in flight (so no one else takes it) until the delay ends; on
      // disk too, so a restart holds it as long (it comes back at this deadline).
      flight.deadlineMs = Date.now() + delayMs;
      this.putState(dest, g, seq, flight.delivery, false, flight.deadlineMs);
      this.moveDeadline(dest, g, seq, flight);
    } else {
      g.inflight.delete(seq);
      this.requeue(dest, g, seq);
    }
  }

  /** D4.4: still working; restart the ack timer. */
  working(handle: string): void {
    const { dest, g, seq, flight } = this.inFlight(handle);
    flight.deadlineMs = Date.now() + g.ackTimeoutMs;
    this.putState(dest, g, seq, flight.delivery, false, flight.deadlineMs);
    this.moveDeadline(dest, g, seq, flight);
  }

  /** Schedules an event for a moved deadline only when it is earlier than the live one (see InFlight). */
  private moveDeadline(dest: Destination, g: Group, seq: number, flight: InFlight): void {
    if (flight.deadlineMs >= flight.eventDueMs) return;
    flight.eventDueMs = flight.deadlineMs;
    this.schedule({
      dueMs: flight.deadlineMs,
      kind: 'deadline',
      dest,
      group: g,
      seq,
      delivery: flight.delivery,
    });
  }

  /** D4.5: give up; the message goes to the dead-letter destination. */
  term(handle: string): void {
    const { dest, g, seq, flight } = this.inFlight(handle);
    this.observeSettle('term', flight);
    g.inflight.delete(seq);
    this.deadLetter(dest, g, seq, 'term');
  }

  private observeSettle(kind: 'ack' | 'nak' | 'term', flight: InFlight): void {
    if (this.observer !== undefined && flight.takenAtMs !== undefined) {
      this.observer.settled(kind, Date.now() - flight.takenAtMs);
    }
  }

  private inFlight(handle: string): {
    dest: Destination;
    g: Group;
    seq: number;
    flight: InFlight;
  } {
    const m = /^(\d+)\/(\d+)\/([A-Za-z0-9_-]+)\/(.+)$/.exec(handle);
    const dest = m === null ? undefined : this.dests.get(m[4]!);
    const g = dest?.groups.get(m![3]!);
    const seq = m === null ? 0 : Number(m[1]);
    const flight = g?.inflight.get(seq);
    if (dest === undefined || g === undefined || flight === undefined || flight.delivery !== Number(m![2])) {
      throw new DurableError(C.UnknownHandle, `unknown or expired handle ${handle.slice(0, 200)}`);
    }
    return { dest, g, seq, flight };
  }

  /** Back to the ready queue, or to the dead letters once max deliveries are used up (D4.6). */
  private requeue(dest: Destination, g: Group, seq: number): void {
    const msg = dest.msgs.get(seq);
    if (msg === undefined) return;
    const deliveries = g.deliveries.get(seq) ?? 0;
    if (g.maxDeliveries > 0 && deliveries >= g.maxDeliveries) {
      this.deadLetter(dest, g, seq, 'max_deliveries');
      return;
    }
    this.putState(dest, g, seq, deliveries, false, 0);
    g.ready.push(msg.priority, seq);
    this.serveWaiters(dest, g);
  }

  /** The group is done with `seq`: record it, and remove the message once every group is (D2.2). */
  private finish(dest: Destination, g: Group, seq: number): void {
    g.inflight.delete(seq);
    if (!dest.msgs.has(seq)) return;
    g.done.add(seq);
    if (dest.doneByAll(seq)) {
      this.remove(dest, seq);
    } else {
      this.putState(dest, g, seq, g.deliveries.get(seq) ?? 0, true, 0);
    }
  }

  /**
   * Deletes a message with its group state. `done`: the groups are done with
   * it (acked, expired, dead-lettered), so it is remembered for merges (M7.4);
   * a copy dropped to match the owner's is not.
   */
  private remove(dest: Destination, seq: number, done = true): void {
    const msg = dest.msgs.get(seq);
    if (msg === undefined) return;
    const w = this.store.writer;
    w.del(messageKey(dest.id, msg.priority, seq));
    this.emit(dest, done ? { op: 'remove', seq } : { op: 'remove', seq, relayout: true });
    if (done) this.tombstone(dest.name, msg.id);
    for (const g of dest.groups.values()) {
      w.del(stateKey(dest.id, g.id, seq));
      g.done.delete(seq);
      g.inflight.delete(seq);
      g.deliveries.delete(seq);
    }
    dest.msgs.delete(seq);
    dest.bytes -= msg.size;
  }

  private expire(dest: Destination, seq: number): void {
    const msg = dest.msgs.get(seq);
    if (msg === undefined || msg.leaving === true) return;
    dest.expired++;
    this.stats.expired++;
    if (dest.settings.deadLetterExpired && dest.settings.deadLetter !== undefined) {
      msg.leaving = true;
      this.deadLetter(dest, null, seq, 'expired');
    } else {
      this.remove(dest, seq);
    }
  }

  /**
   * Copies a message to the dead-letter destination, then marks it done for
   * `g` (or removes it, for expiry) in the same batch as the copy (D6.1).
   */
  private deadLetter(dest: Destination, g: Group | null, seq: number, reason: string): void {
    const msg = dest.msgs.get(seq);
    const target = dest.settings.deadLetter;
    if (msg === undefined) return;
    const done = (): void => {
      if (g === null) this.remove(dest, seq);
      else this.finish(dest, g, seq);
    };
    if (target === undefined) {
      done();
      return;
    }
    if (g !== null) g.inflight.set(seq, { delivery: -1, deadlineMs: Infinity, eventDueMs: Infinity }); // held until copied
    const key = messageKey(dest.id, msg.priority, seq);
    void (async () => {
      try {
        const value = await this.store.db.get(key);
        if (value === undefined) return done();
        const m = openMessage(this.ring, key, value);
        const dlq = this.createDestination(target, {}, true);
        const dseq = ++dlq.lastSeq;
        const origin = `${dest.name}/${g?.name ?? '*'}/${reason}`;
        const meta: MessageMeta = {
          ...m.meta,
          expiresAtMs: 0,
          notBeforeMs: 0,
          producer: origin.slice(0, 255),
        };
        const headers = withHeader(m.headers, DEAD_LETTER_HEADER, origin);
        const written = this.write(dlq, dseq, meta, headers, m.payload, false);
        done();
        await written;
        dest.deadLettered++;
        this.stats.deadLettered++;
        // Per message (counted in stats.deadLettered), so trace.
        this.log.trace(
          { destination: dest.name, group: g?.name, seq, reason, deadLetter: target },
          'message dead-lettered',
        );
      } catch (err) {
        if (err instanceof IntegrityError) {
          const value = await this.store.db.get(key).catch(() => undefined);
          if (value !== undefined && !this.closed) this.quarantine(dest, seq, key, value, err.message);
          return;
        }
        // Not lost: without "done" the message stays with the group and is delivered again.
        const msg = dest.msgs.get(seq);
        if (msg !== undefined) {
          msg.leaving = false;
          if (g !== null) {
            g.inflight.delete(seq);
            g.ready.push(msg.priority, seq);
          }
        }
        this.log.error({ destination: dest.name, seq, err: (err as Error).message }, 'dead-lettering failed');
      }
    })().catch((err: unknown) => this.log.error({ err: String(err) }, 'dead-lettering failed'));
  }

  /** D8.3: a record that fails its integrity check is moved aside, counted and logged, never delivered. */
  private quarantine(dest: Destination, seq: number, key: Buffer, value: Buffer, why: string): void {
    this.stats.quarantined++;
    this.log.error(
      { destination: dest.name, seq, why },
      'stored message failed its integrity check; set aside',
    );
    this.store.writer.put(quarantineKey(key), value);
    this.remove(dest, seq);
  }

  // ---- timers -------------------------------------------------------------

  schedule(e: TimerEvent): void {
    this.timers.schedule(e);
  }

  private handle(e: TimerEvent, now: number): void {
    const dest = e.dest;
    // A replica's deadlines and expiries are the owner's to act on; they are
    // scheduled again if this node takes over (setRole).
    if (dest.role !== 'owner' && e.kind !== 'release') return;
    switch (e.kind) {
      case 'deadline':
      case 'nak': {
        const f = e.group.inflight.get(e.seq);
        // Stale if settled or redelivered.
        if (f === undefined || f.delivery !== e.delivery) return;
        if (f.deadlineMs > now) {
          // The deadline moved later (WIP, NAK delay): the live event follows it.
          if (e.dueMs === f.eventDueMs) {
            f.eventDueMs = f.deadlineMs;
            this.schedule({ ...e, dueMs: f.deadlineMs });
          }
          return;
        }
        e.group.inflight.delete(e.seq);
        this.requeue(dest, e.group, e.seq);
        return;
      }
      case 'release': {
        const msg = dest.msgs.get(e.seq);
        if (msg !== undefined && msg.notBeforeMs > 0) this.release(dest, msg);
        return;
      }
      case 'expire':
        if (dest.msgs.has(e.seq)) this.expire(dest, e.seq);
        return;
    }
  }

  // ---- replicas (protocol/MESH.md section 5) --------------------------------

  /**
   * Makes this node the owner or a replica of a destination. Taking over
   * restarts its timers from the replicated state: in-flight deliveries come
   * back at their deadlines (their handles still settle), expiries fire
   * (M5.5).
   */
  setRole(name: string, role: 'owner' | 'replica'): void {
    const dest = this.dests.get(name);
    if (dest === undefined || dest.role === role) return;
    dest.role = role;
    if (role === 'replica') {
      for (const g of dest.groups.values()) for (const w of [...g.waiters]) w.resolve([]);
      return;
    }
    const now = Date.now();
    for (const g of dest.groups.values()) {
      for (const [seq, f] of g.inflight) {
        if (f.delivery < 0) {
          g.inflight.delete(seq); // held for a dead-letter copy the old owner did not finish
          continue;
        }
        f.eventDueMs = Math.max(f.deadlineMs, now);
        this.schedule({ dueMs: f.eventDueMs, kind: 'deadline', dest, group: g, seq, delivery: f.delivery });
      }
      this.compactReady(dest, g);
    }
    for (const m of dest.msgs.values()) {
      if (m.expiresAtMs > 0) this.schedule({ dueMs: m.expiresAtMs, kind: 'expire', dest, seq: m.seq });
    }
  }

  /** A replica stores a message its owner stored; resolves once synced (M5.2). Idempotent. */
  async applyMessage(name: string, m: ReplicatedMessage): Promise<void> {
    const dest = this.replicaDestination(name);
    this.checkReplica(dest);
    if (dest.msgs.has(m.seq)) return;
    if (m.seq > dest.lastSeq) dest.lastSeq = m.seq;
    const meta: MessageMeta = {
      id: m.id,
      priority: m.priority,
      timestampMs: m.timestampMs,
      expiresAtMs: m.expiresAtMs,
      notBeforeMs: m.notBeforeMs,
      producer: m.producer,
    };
    const msg = this.queueMessage(dest, m.seq, meta, m.headers, m.payload, m.dedup);
    // In memory at once, so the owner's later changes to it (sent right after) apply.
    this.admit(dest, msg, m.dedup, m.timestampMs);
    this.stats.stored--; // counted where it was sent
    await this.store.writer.commit();
  }

  /** A replica applies any other change of its owner, in order (M5.3). */
  applyChange(name: string, c: ReplicatedChange): void {
    const dest = this.replicaDestination(name);
    this.checkReplica(dest);
    switch (c.op) {
      case 'dest':
        dest.settings = { ...c.settings };
        this.persistDestination(dest);
        return;
      case 'group': {
        const g = this.group(dest, c.group, c.ackTimeoutMs);
        g.maxDeliveries = c.maxDeliveries;
        return;
      }
      case 'drop':
        if (dest.groups.has(c.group)) this.dropGroup(name, c.group);
        return;
      case 'remove':
        this.remove(dest, c.seq, c.relayout !== true);
        return;
      case 'state': {
        const msg = dest.msgs.get(c.seq);
        if (msg === undefined) return;
        const g = this.group(dest, c.group);
        if (c.deliveries > 0) g.deliveries.set(c.seq, c.deliveries);
        if (c.done) {
          g.inflight.delete(c.seq);
          g.done.add(c.seq);
        } else if (c.deadlineMs > 0) {
          g.inflight.set(c.seq, { delivery: c.deliveries, deadlineMs: c.deadlineMs, eventDueMs: Infinity });
        } else {
          g.inflight.delete(c.seq);
          g.ready.push(msg.priority, c.seq);
        }
        this.putState(dest, g, c.seq, c.deliveries, c.done, c.deadlineMs);
        return;
      }
    }
  }

  // ---- hand-off and merge (protocol/MESH.md section 7) ----------------------

  /** Removed ids, remembered so a merge does not bring back what was acked (M7.4). Bounded, oldest out. */
  private readonly tombstones = new Set<string>();

  private tombstone(destination: string, id: string): void {
    const key = `${destination}\u0000${id}`;
    this.tombstones.add(key);
    if (this.tombstones.size > MAX_TOMBSTONES) {
      const oldest = this.tombstones.values().next().value;
      if (oldest !== undefined) this.tombstones.delete(oldest);
    }
  }

  isTombstoned(destination: string, id: string): boolean {
    return this.tombstones.has(`${destination}\u0000${id}`);
  }

  /** The remembered removed ids of one destination (sent with an inventory so acks merge, M7.3). */
  tombstonesOf(destination: string): string[] {
    const prefix = `${destination}\u0000`;
    const out: string[] = [];
    for (const k of this.tombstones) if (k.startsWith(prefix)) out.push(k.slice(prefix.length));
    return out;
  }

  /** A message removed on another node (acked by every group there): removed here too (M7.3). */
  removeById(name: string, id: string): boolean {
    const dest = this.dests.get(name);
    if (dest === undefined) return false;
    for (const m of dest.msgs.values()) {
      if (m.id !== id) continue;
      this.remove(dest, m.seq);
      return true;
    }
    return false;
  }

  /** A page of what this node holds of a destination, in seq order (M7.1). */
  inventory(name: string, afterSeq: number, limit: number): Inventory | undefined {
    const dest = this.dests.get(name);
    if (dest === undefined) return undefined;
    const seqs = [...dest.msgs.keys()].filter((s) => s > afterSeq).sort((a, b) => a - b);
    const page = seqs.slice(0, limit);
    const groups = [...dest.groups.values()];
    return {
      settings: dest.settings,
      lastSeq: dest.lastSeq,
      groups: groups.map((g) => ({
        name: g.name,
        ackTimeoutMs: g.ackTimeoutMs,
        maxDeliveries: g.maxDeliveries,
      })),
      items: page.map((seq) => {
        const m = dest.msgs.get(seq)!;
        const st: InventoryState[] = [];
        for (const g of groups) {
          const deliveries = g.deliveries.get(seq) ?? 0;
          const done = g.done.has(seq);
          const deadlineMs = g.inflight.get(seq)?.deadlineMs ?? 0;
          if (deliveries > 0 || done)
            st.push([g.name, deliveries, done ? 1 : 0, Number.isFinite(deadlineMs) ? deadlineMs : 0]);
        }
        return { seq, id: m.id, p: m.priority, st };
      }),
      next: seqs.length > limit ? page[page.length - 1] : undefined,
      removed: afterSeq === 0 ? this.tombstonesOf(name) : [],
    };
  }

  /** Reads and opens stored messages for a peer (M7.2). Missing or damaged ones are left out. */
  async exportMessages(name: string, seqs: number[]): Promise<ReplicatedMessage[]> {
    const dest = this.dests.get(name);
    if (dest === undefined) return [];
    const present = seqs.filter((s) => dest.msgs.has(s));
    const keys = present.map((s) => messageKey(dest.id, dest.msgs.get(s)!.priority, s));
    const values = await this.store.db.getMany(keys);
    const out: ReplicatedMessage[] = [];
    for (let i = 0; i < present.length; i++) {
      const v = values[i];
      if (v === undefined) continue;
      try {
        const m = openMessage(this.ring, keys[i]!, v);
        out.push({
          seq: present[i]!,
          ...m.meta,
          headers: m.headers,
          payload: m.payload,
          dedup: dest.dedup.has(m.meta.id),
        });
      } catch (err) {
        if (!(err instanceof IntegrityError)) throw err;
      }
    }
    return out;
  }

  /**
   * The owner takes a message only another node had (a send confirmed on the
   * other side of a split, or missed while it was down): stored under a new
   * seq unless its own is beyond this node's last, replicated like a send,
   * with the groups' progress it had there (M7.3).
   */
  async importMessage(name: string, m: ReplicatedMessage, states: InventoryState[]): Promise<void> {
    const dest = this.dests.get(name) ?? this.createDestination(name, {}, true);
    const seq = m.seq > dest.lastSeq ? m.seq : dest.lastSeq + 1;
    dest.lastSeq = seq;
    const { headers, payload, dedup, seq: _old, ...meta } = m;
    void _old;
    await this.write(dest, seq, meta, headers, payload, dedup);
    this.mergeStates(name, seq, states);
  }

  /** Merges a peer's progress on a message this node has: done anywhere is done (acks merge, M7.3). */
  mergeStates(name: string, seq: number, states: InventoryState[]): void {
    const dest = this.dests.get(name);
    if (dest === undefined || !dest.msgs.has(seq)) return;
    for (const [group, deliveries, done] of states) {
      const g = dest.groups.get(group) ?? this.group(dest, group);
      if (deliveries > (g.deliveries.get(seq) ?? 0)) g.deliveries.set(seq, deliveries);
      if (done === 1 && !g.done.has(seq)) this.finish(dest, g, seq);
    }
  }

  /** Applies the owner's group list and settings (M7.2). */
  applyGroups(name: string, inv: Pick<Inventory, 'settings' | 'groups' | 'lastSeq'>): void {
    const dest = this.replicaDestination(name);
    this.checkReplica(dest);
    dest.settings = { ...inv.settings };
    if (inv.lastSeq > dest.lastSeq) dest.lastSeq = inv.lastSeq;
    for (const g of inv.groups)
      this.applyChange(name, {
        op: 'group',
        group: g.name,
        ackTimeoutMs: g.ackTimeoutMs,
        maxDeliveries: g.maxDeliveries,
      });
    this.persistDestination(dest);
  }

  /** This node no longer holds a copy of a destination: every record of it goes (M7.2). */
  forgetDestination(name: string): void {
    const dest = this.dests.get(name);
    if (dest === undefined || dest.role === 'owner') return;
    for (const g of [...dest.groups.keys()]) this.dropGroup(name, g);
    for (const seq of [...dest.msgs.keys()]) this.remove(dest, seq, false);
    for (const id of dest.dedup.keys()) this.store.writer.del(dedupKey(dest.id, id));
    this.store.writer.del(destinationKey(name));
    this.dests.delete(name);
    this.byId.delete(dest.id);
    this.log.info({ destination: name }, 'copy of destination released');
  }

  /** Waits for queued writes (a hand-off step is done once it is on disk). */
  commit(): Promise<void> {
    return this.store.writer.commit();
  }

  /**
   * While views differ for a moment, two nodes may each think they own a
   * destination: an owner takes no other node's changes (the owner of the
   * agreed view merges both copies, MESH.md M5.4, M7.3).
   */
  private checkReplica(dest: Destination): void {
    if (dest.role === 'owner') {
      throw new DurableError(C.NotReplica, `this node owns ${dest.name}; changes from another node refused`);
    }
  }

  private replicaDestination(name: string): Destination {
    let dest = this.dests.get(name);
    if (dest === undefined) {
      dest = this.createDestination(name, {}, true, 'replica');
    }
    return dest;
  }

  // ---- housekeeping -------------------------------------------------------

  private pruneDedup(): void {
    const cutoff = Date.now() - this.opts.dedupWindowMs;
    for (const dest of this.dests.values()) {
      const order = dest.dedupOrder;
      let i = dest.dedupHead;
      for (; i < order.length && order[i]!.storedAtMs < cutoff; i++) {
        const { id, storedAtMs } = order[i]!;
        const cur = dest.dedup.get(id);
        if (cur !== undefined && cur.storedAtMs === storedAtMs) {
          dest.dedup.delete(id);
          this.store.writer.del(dedupKey(dest.id, id));
        }
      }
      if (i > 1024 && i > order.length / 2) {
        order.splice(0, i);
        dest.dedupHead = 0;
      } else {
        dest.dedupHead = i;
      }
    }
  }

  private measureDisk(): void {
    this.diskMeasured = this.store.diskBytes();
    this.writtenAtMeasure = this.store.writer.bytesWritten;
  }

  /**
   * On-disk bytes now: the last measurement plus what was written since, plus
   * what is queued or being written (else a burst of sends passes the limit
   * before any of it is counted, D8.4).
   */
  diskBytes(): number {
    const w = this.store.writer;
    return this.diskMeasured + (w.bytesWritten - this.writtenAtMeasure) + w.pendingBytes;
  }

  private newId(): string {
    const p = this.idPool;
    if (p.pos + 16 > p.buf.length) {
      p.buf = randomBytes(16 * 1024);
      p.pos = 0;
    }
    const id = p.buf.toString('hex', p.pos, p.pos + 16);
    p.pos += 16;
    return id;
  }

  /** Stops timers, finishes queued writes and closes the store. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.timers.close();
    for (const t of this.housekeeping) clearInterval(t);
    for (const dest of this.dests.values()) {
      this.persistDestination(dest);
      for (const g of dest.groups.values()) for (const w of [...g.waiters]) w.resolve([]);
    }
    await this.store.close();
  }

  /** The oldest message this node holds of `name`, read from the store at a bounded cost (/destz). */
  oldestMessage(name: string): Promise<OldestMessage | undefined> {
    const dest = this.dests.get(name);
    return dest === undefined || this.closed
      ? Promise.resolve(undefined)
      : oldestMessage(this.store.db, dest);
  }

  /** For tests: the store underneath. */
  get db(): Store['db'] {
    return this.store.db;
  }
}
