/**
 * A consumer (protocol/SDK.md section 4): a loop of PULLs (DURABLE.md D4.1)
 * on a connection of its own to the destination's owner, handing
 * deliveries to the application through an async iterator.
 *
 * Flow control: it pulls only while fewer than `maxInFlight` deliveries are
 * unsettled (buffered or handed out), and never more than that, so a slow
 * handler stops the pulling instead of growing a buffer. Failover: a lost
 * connection, a dead owner or a moved ring re-routes the next PULL. Settles
 * go on the client's settle links (router.ts), not on the pulling
 * connection: a settle's refusal can then never be taken for the PULL's
 * answer, and a handle stays valid at a new owner (MESH.md M5.5).
 * Unsettled deliveries come back at their deadline (D4.6): at-least-once.
 */
import type { Client } from './wire/connection.js';
import { checkDestination, checkToken } from './wire/text.js';
import { InvalidArgumentError, SwarmError, isRetryable, toSwarmError } from './errors.js';
import { DEFAULT_ACK_TIMEOUT_MS } from '../config/defaults.js';
import { ConsumedMessage } from './messages.js';
import { callSignal } from './signals.js';

/** Options of `consume()`. */
export interface ConsumeOptions {
  /** Consumer group (D2.1; members of a group share the messages). @default 'default' */
  group?: string;
  /** Most messages per PULL (1-10000, D4.7). @default 100 */
  batch?: number;
  /**
   * Most deliveries unsettled at once (buffered or handed out): the consumer stops pulling at
   * this many, so memory stays bounded whatever the handler does. A delivery left unsettled
   * gives its place back once the node would have taken it back (its ack timeout after the
   * auto-extension ends).
   * @default 256
   */
  maxInFlight?: number;
  /**
   * Sets the group's ack timeout (D4.1 `ack_timeout`, at least 10 ms). Unset, the node's (the
   * destination's `ack_timeout`, else 5 s) stays, and auto-extension sends WIP every 250 ms, which
   * covers ack timeouts of 500 ms and more.
   */
  ackTimeoutMs?: number;
  /** How long one PULL waits for a first message (D4.1). @default 5000 */
  waitMs?: number;
  /**
   * While a handed-out message is unsettled, send WIP (D4.4) every third of the ack timeout, for
   * at most this long (then it is left to time out and come back). 0 turns it off.
   * @default 600000
   */
  autoExtendMs?: number;
  /** Stops the consumer when aborted (as `stop()`). */
  signal?: AbortSignal;
}

type SettleKind = 'ACK' | 'NAK' | 'WIP' | 'TERM';

/** What a consumer needs of the client (client.ts, router.ts). */
export interface ConsumerHost {
  /** SDK4.1: a new connection of the consumer's own, and the owner it was opened for. */
  open(destination: string, signal: AbortSignal): Promise<{ conn: Client; ownerId: string | undefined }>;
  /** SDK4.3: sends a settle on the client's settle link to the owner. */
  settle(destination: string, kind: SettleKind, handle: string, delayMs?: number): void;
  /** The destination's owner by the client's view (undefined: unknown, any node will do). */
  ownerId(destination: string): string | undefined;
  /** Waits before a retry: backoff with jitter, cut short by a view change. */
  pause(attempt: number, signal: AbortSignal): Promise<void>;
  retrying(what: string, attempt: number, err: unknown): void;
  /** The consumer ended (the client forgets it). */
  ended(c: Consumer): void;
}

const DEFAULT_GROUP = 'default';
const DEFAULT_BATCH = 100;
const DEFAULT_MAX_IN_FLIGHT = 256;
const DEFAULT_WAIT_MS = 5000;
/** The node's default ack timeout (DURABLE.md D4.6), assumed for giving a slot back when the consumer sets none. */
const NODE_ACK_TIMEOUT_MS = DEFAULT_ACK_TIMEOUT_MS;
/**
 * WIP cadence when the ack timeout is unknown (a destination's own may be short, D1.2): enough for
 * ack timeouts of 500 ms and more; a consumer with shorter ones sets `ackTimeoutMs`.
 */
const UNKNOWN_ACK_TIMEOUT_WIP_MS = 250;
const DEFAULT_AUTO_EXTEND_MS = 10 * 60_000;
/**
 * A PULL not answered this long past its wait is given up and its connection dropped. Longer than
 * a forwarding node waits for a new owner (M4.5, 15 s); a frozen node is found sooner by the
 * keepalive (SDK2.3).
 */
const PULL_GRACE_MS = 25_000;

/**
 * A consumer of one destination for one group, made by `client.consume()`.
 * Iterate it with `for await`; leaving the loop (break, return, throw) stops it.
 * Several loops may read one consumer at once (workers sharing its flow control).
 */
export class Consumer implements AsyncIterable<ConsumedMessage> {
  /** The destination it pulls from. */
  readonly destination: string;
  /** Its consumer group. */
  readonly group: string;
  private readonly batch: number;
  private readonly maxInFlight: number;
  private readonly waitMs: number;
  private readonly ackTimeoutMs: number | undefined;
  private readonly autoExtendMs: number;
  private readonly buffer: ConsumedMessage[] = [];
  /** Handed out and unsettled, with when they were handed out. */
  private readonly handed = new Map<ConsumedMessage, number>();
  private conn: Client | undefined;
  /** The owner `conn` was opened for: reopened only when the owner changes (SDK4.1). */
  private connFor: string | undefined;
  private stopped = false;
  private failure: SwarmError | undefined;
  private readonly stopper = new AbortController();
  private wakeLoop: (() => void) | undefined;
  private readers: (() => void)[] = [];
  private readonly ticker: NodeJS.Timeout;
  /** How often a held delivery gets WIP (SDK4.4). */
  private readonly wipEveryMs: number;
  private readonly done: Promise<void>;
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort = (): void => void this.stop();

  /** @internal use `client.consume()` */
  constructor(
    private readonly host: ConsumerHost,
    destination: string,
    opts: ConsumeOptions,
  ) {
    try {
      checkDestination(destination);
      checkToken('group', opts.group ?? DEFAULT_GROUP);
    } catch (err) {
      throw toSwarmError(err);
    }
    this.destination = destination;
    this.group = opts.group ?? DEFAULT_GROUP;
    this.batch = intIn('batch', opts.batch, DEFAULT_BATCH, 1, 10_000);
    this.maxInFlight = intIn('maxInFlight', opts.maxInFlight, DEFAULT_MAX_IN_FLIGHT, 1, 1_000_000);
    this.waitMs = intIn('waitMs', opts.waitMs, DEFAULT_WAIT_MS, 0, 300_000);
    this.ackTimeoutMs =
      opts.ackTimeoutMs === undefined
        ? undefined
        : intIn('ackTimeoutMs', opts.ackTimeoutMs, 0, 10, 2 ** 31 - 1);
    this.autoExtendMs = intIn('autoExtendMs', opts.autoExtendMs, DEFAULT_AUTO_EXTEND_MS, 0, 2 ** 31 - 1);
    this.signal = opts.signal;
    if (this.signal?.aborted === true) this.stopped = true;
    else this.signal?.addEventListener('abort', this.onAbort, { once: true });
    this.wipEveryMs =
      this.ackTimeoutMs === undefined
        ? UNKNOWN_ACK_TIMEOUT_WIP_MS
        : Math.max(10, Math.floor(this.ackTimeoutMs / 3));
    this.ticker = setInterval(() => this.tick(), this.wipEveryMs);
    this.ticker.unref();
    this.done = this.run();
  }

  /** Deliveries not yet settled (buffered or handed out). */
  get unsettled(): number {
    return this.buffer.length + this.handed.size;
  }

  /** The deliveries, one at a time; ends after `stop()`, throws the error that stopped the consumer. */
  [Symbol.asyncIterator](): AsyncIterator<ConsumedMessage> {
    return {
      next: () => this.next(),
      return: async () => {
        await this.stop();
        return { done: true, value: undefined };
      },
    };
  }

  /**
   * Stops pulling and closes the consumer's connection. Deliveries not yet handed out are given
   * back at once (NAK); handed-out ones can still be settled while the client is open.
   */
  async stop(): Promise<void> {
    this.end(undefined);
    await this.done;
  }

  /** @internal The client closed for `err` (no node left): iterations end with it. */
  fail(err: SwarmError | undefined): Promise<void> {
    this.end(err);
    return this.done;
  }

  /** @internal Settler of ConsumedMessage: on the client's settle links (SDK4.3). */
  settle(m: ConsumedMessage, kind: SettleKind, delayMs?: number): void {
    if (kind !== 'WIP' && this.handed.delete(m)) this.wakeLoop?.();
    this.host.settle(this.destination, kind, m.handle, delayMs);
  }

  private end(err: SwarmError | undefined): void {
    this.failure ??= err;
    if (this.stopped) return this.wakeReaders();
    this.stopped = true;
    this.stopper.abort();
    this.wakeLoop?.();
    this.wakeReaders();
  }

  private wakeReaders(): void {
    const readers = this.readers;
    this.readers = [];
    for (const r of readers) r();
  }

  private async next(): Promise<IteratorResult<ConsumedMessage>> {
    for (;;) {
      const m = this.buffer.shift();
      if (m !== undefined) {
        this.handed.set(m, Date.now());
        return { done: false, value: m };
      }
      if (this.failure !== undefined) throw this.failure;
      if (this.stopped) return { done: true, value: undefined };
      await new Promise<void>((resolve) => this.readers.push(resolve));
    }
  }

  private async run(): Promise<void> {
    let attempt = 0;
    try {
      while (!this.stopped) {
        const room = this.maxInFlight - this.unsettled;
        if (room <= 0) {
          await new Promise<void>((resolve) => (this.wakeLoop = resolve));
          this.wakeLoop = undefined;
          continue;
        }
        let conn: Client;
        try {
          conn = await this.connection(this.stopper.signal);
        } catch (err) {
          // SDK4.6: no node answered in time: a failure of the cluster's, not the application's.
          if (this.stopped) break;
          this.host.retrying(`connecting to pull from ${this.destination}`, attempt + 1, err);
          await this.host.pause(attempt++, this.stopper.signal).catch(() => undefined);
          continue;
        }
        const call = callSignal([this.stopper.signal], this.waitMs + PULL_GRACE_MS);
        const signal = call.signal;
        try {
          const got = await conn.pull(
            this.destination,
            this.group,
            { batch: Math.min(this.batch, room), waitMs: this.waitMs, ackTimeoutMs: this.ackTimeoutMs },
            signal,
          );
          attempt = 0;
          for (const d of got) this.buffer.push(new ConsumedMessage(d, this));
          if (got.length > 0) this.wakeReaders();
        } catch (err) {
          if (this.stopped) break;
          const timedOut = signal.aborted;
          if (!timedOut && !isRetryable(err)) {
            this.end(toSwarmError(err));
            break;
          }
          // A PULL that never ended, or a lost connection: drop it now (its late DMSGs go with it).
          if (timedOut) conn.destroy();
          if (this.conn === conn) this.conn = undefined;
          this.host.retrying(`pulling from ${this.destination}`, attempt + 1, err);
          await this.host.pause(attempt++, this.stopper.signal).catch(() => undefined);
        } finally {
          call.release();
        }
      }
    } finally {
      await this.shutdown();
    }
  }

  /** The consumer's connection, opened again when it is gone or the owner changed. */
  private async connection(signal: AbortSignal): Promise<Client> {
    const owner = this.host.ownerId(this.destination);
    const current = this.conn;
    if (current !== undefined && !current.isClosed && (owner === undefined || owner === this.connFor)) {
      return current;
    }
    this.conn = undefined;
    if (current !== undefined) void current.close();
    const { conn, ownerId } = await this.host.open(this.destination, signal);
    this.conn = conn;
    this.connFor = ownerId;
    return conn;
  }

  /** SDK4.4: WIP for handed-out deliveries within autoExtendMs; gives back the slots of those the node took back. */
  private tick(): void {
    const now = Date.now();
    const ackTimeoutMs = this.ackTimeoutMs ?? NODE_ACK_TIMEOUT_MS;
    let freed = false;
    for (const [m, since] of this.handed) {
      const held = now - since;
      // Only deliveries held a while: a handler that settles quickly costs no WIP.
      if (held < this.autoExtendMs) {
        if (held >= this.wipEveryMs) m.working();
      } else if (held > this.autoExtendMs + ackTimeoutMs) {
        // The node has delivered it again by now (D4.6): its place in the window is free.
        this.handed.delete(m);
        freed = true;
      }
    }
    if (freed) this.wakeLoop?.();
  }

  private async shutdown(): Promise<void> {
    clearInterval(this.ticker);
    this.signal?.removeEventListener('abort', this.onAbort);
    this.stopped = true;
    // Not handed out: give them back now rather than at their ack deadline.
    for (const m of this.buffer.splice(0)) m.nak();
    this.wakeReaders();
    const conn = this.conn;
    this.conn = undefined;
    if (conn !== undefined) await conn.close();
    this.host.ended(this);
  }
}

function intIn(name: string, v: number | undefined, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new InvalidArgumentError(`${name} must be an integer ${min}-${max}, got ${v}`);
  }
  return v;
}
