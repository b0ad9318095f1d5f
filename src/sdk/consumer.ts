/**
 * A consumer: a loop of PULLs (DURABLE.md D4.1) on a connection of its own
 * to the destination's owner, handing deliveries to the application one at
 * a time through an async iterator.
 *
 * Flow control: it pulls only while fewer than `maxInFlight` deliveries are
 * unsettled (buffered or handed out), and never more than that, so a slow
 * handler stops the pulling instead of growing a buffer. Failover: a lost
 * connection, a dead owner or a moved ring re-routes the next PULL; settles
 * of deliveries from before go to whichever node is reached next, since a
 * handle stays valid at the new owner (MESH.md M5.5). Unsettled deliveries
 * come back at their deadline (D4.6): at-least-once, as the protocol says.
 */
import type { Client } from './wire/connection.js';
import { checkDestination, checkToken } from './wire/text.js';
import { InvalidArgumentError, SwarmError, isRetryable, toSwarmError } from './errors.js';
import { ConsumedMessage } from './messages.js';
import type { Router } from './sender.js';

/** Options of `consume()`. */
export interface ConsumeOptions {
  /** Consumer group (D2.1; members of a group share the messages). @default 'default' */
  group?: string;
  /** Most messages per PULL (1-10000, D4.7). @default 100 */
  batch?: number;
  /**
   * Most deliveries unsettled at once (buffered or handed out): the consumer stops pulling at
   * this many, so memory stays bounded whatever the handler does.
   * @default 256
   */
  maxInFlight?: number;
  /** Sets the group's ack timeout (D4.1 `ack_timeout`, at least 10 ms). Default: the node's (5 s). */
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

/** What a consumer needs of the client: routing, dialling its own connection, and events. */
export interface ConsumerHost extends Pick<Router, 'pause' | 'retrying'> {
  /** A new connection of the consumer's own, to the owner (or a node that forwards). */
  open(destination: string, signal: AbortSignal): Promise<{ conn: Client; nodeId: string | undefined }>;
  /** Settles through the client's shared connections, for a consumer that has stopped. */
  settle(destination: string, kind: 'ACK' | 'NAK' | 'WIP' | 'TERM', handle: string, delayMs?: number): void;
  /** The node the destination's owner is now, by the client's view (undefined: any). */
  ownerId(destination: string): string | undefined;
}

const DEFAULT_GROUP = 'default';
const DEFAULT_BATCH = 100;
const DEFAULT_MAX_IN_FLIGHT = 256;
const DEFAULT_WAIT_MS = 5000;
/** The node's default ack timeout (DURABLE.md D4.6), assumed when the consumer sets none. */
const NODE_ACK_TIMEOUT_MS = 5000;
const DEFAULT_AUTO_EXTEND_MS = 10 * 60_000;
/** A PULL not answered this long past its wait is given up and its connection closed (a frozen node). */
const PULL_GRACE_MS = 10_000;

/**
 * A consumer of one destination for one group, made by `client.consume()`.
 * Iterate it with `for await`; leaving the loop (break, return, throw) stops it.
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
  /** Handed out and unsettled, with when they were handed out (for auto-extension). */
  private readonly handed = new Map<ConsumedMessage, number>();
  private conn: Client | undefined;
  private connNode: string | undefined;
  private queued: { kind: 'ACK' | 'NAK' | 'WIP' | 'TERM'; handle: string; delayMs?: number }[] = [];
  private stopped = false;
  private failure: SwarmError | undefined;
  private readonly stopper = new AbortController();
  private wakeLoop: (() => void) | undefined;
  private wakeReader: (() => void) | undefined;
  private extender: NodeJS.Timeout | undefined;
  private readonly done: Promise<void>;

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
    if (opts.signal !== undefined) {
      if (opts.signal.aborted) this.stopped = true;
      else opts.signal.addEventListener('abort', () => void this.stop(), { once: true });
    }
    if (this.autoExtendMs > 0) {
      const every = Math.max(10, Math.floor((this.ackTimeoutMs ?? NODE_ACK_TIMEOUT_MS) / 3));
      this.extender = setInterval(() => this.extend(), every);
      this.extender.unref();
    }
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
   * back at once (NAK); handed-out ones can still be settled: through the client's other
   * connections, while the client is open.
   */
  async stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      this.stopper.abort();
      this.wakeLoop?.();
      this.wakeReader?.();
    }
    await this.done;
  }

  /** @internal Settler: sends ACK/NAK/WIP/TERM on the consumer's connection, or queues it until there is one. */
  settle(m: ConsumedMessage, kind: 'ACK' | 'NAK' | 'WIP' | 'TERM', delayMs?: number): void {
    if (kind !== 'WIP') {
      this.handed.delete(m);
      this.wakeLoop?.();
    }
    const conn = this.conn;
    if (conn !== undefined && !conn.isClosed) return conn.settle(kind, m.handle, delayMs);
    // Stopped (a `break` out of the loop): any node takes a settle (the handle names the destination, M4.5).
    if (this.stopped) return this.host.settle(this.destination, kind, m.handle, delayMs);
    if (kind === 'WIP' || this.queued.length >= this.maxInFlight * 2) return;
    this.queued.push({ kind, handle: m.handle, delayMs });
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
      await new Promise<void>((resolve) => (this.wakeReader = resolve));
      this.wakeReader = undefined;
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
        const signal = AbortSignal.any([
          this.stopper.signal,
          AbortSignal.timeout(this.waitMs + PULL_GRACE_MS),
        ]);
        let conn: Client;
        try {
          conn = await this.connection(signal);
        } catch (err) {
          // No node answered in time: a failure of the cluster's, never the application's; try again.
          if (this.stopped) break;
          this.host.retrying(`connecting to pull from ${this.destination}`, attempt + 1, err);
          await this.host.pause(attempt++, this.stopper.signal).catch(() => undefined);
          continue;
        }
        try {
          const got = await conn.pull(
            this.destination,
            this.group,
            { batch: Math.min(this.batch, room), waitMs: this.waitMs, ackTimeoutMs: this.ackTimeoutMs },
            signal,
          );
          attempt = 0;
          for (const d of got) this.buffer.push(new ConsumedMessage(d, this));
          if (got.length > 0) this.wakeReader?.();
        } catch (err) {
          if (this.stopped) break;
          const timedOut = signal.aborted;
          if (!timedOut && !isRetryable(err)) {
            this.failure = toSwarmError(err);
            break;
          }
          // A PULL left unanswered: its deliveries, if any come, belong to a connection we drop.
          if (timedOut) this.conn?.destroy();
          this.host.retrying(`pulling from ${this.destination}`, attempt + 1, err);
          await this.host.pause(attempt++, this.stopper.signal).catch(() => undefined);
        }
      }
    } finally {
      await this.shutdown();
    }
  }

  /** The consumer's connection, opened again when it is gone or the owner moved. */
  private async connection(signal: AbortSignal): Promise<Client> {
    const owner = this.host.ownerId(this.destination);
    const current = this.conn;
    if (current !== undefined && !current.isClosed && (owner === undefined || owner === this.connNode)) {
      return current;
    }
    const { conn, nodeId } = await this.host.open(this.destination, signal);
    this.conn = conn;
    this.connNode = nodeId;
    // Settles made while there was no connection go out first (M5.5: handles stay valid).
    const queued = this.queued;
    this.queued = [];
    for (const q of queued) conn.settle(q.kind, q.handle, q.delayMs);
    if (current !== undefined) void current.close();
    return conn;
  }

  private extend(): void {
    const now = Date.now();
    for (const [m, since] of this.handed) if (now - since < this.autoExtendMs) m.working();
  }

  private async shutdown(): Promise<void> {
    if (this.extender !== undefined) clearInterval(this.extender);
    this.stopped = true;
    // Not handed out: give them back now rather than at their ack deadline.
    for (const m of this.buffer.splice(0)) m.nak();
    this.wakeReader?.();
    const conn = this.conn;
    this.conn = undefined;
    if (conn !== undefined) await conn.close();
  }
}

function intIn(name: string, v: number | undefined, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new InvalidArgumentError(`${name} must be an integer ${min}-${max}, got ${v}`);
  }
  return v;
}
