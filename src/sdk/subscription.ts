/**
 * Core subscriptions (CLIENT.md C4) that outlive a connection: each is made
 * again on the next home connection after a loss, with what is left of its
 * `max`. Messages reach a callback, or an async iterator through a bounded
 * buffer: past `maxPendingMsgs` a message is dropped and counted (core
 * messaging is at most once, C5; M6.3), as a stock NATS client does with a
 * slow consumer.
 */
import type { Client } from './wire/connection.js';
import type { Msg as WireMsg, Subscription as WireSubscription } from './wire/types.js';
import { checkSubject, checkToken } from './wire/text.js';
import { InvalidArgumentError, toSwarmError } from './errors.js';
import { Msg, readHeaders, type HeadersInit, type Payload } from './messages.js';

/** Options of `subscribe()`. */
export interface SubscribeOptions {
  /** Queue group: each message goes to one member of the group (C5.2). */
  queue?: string;
  /** Stop after this many messages (C4.6). */
  max?: number;
  /** Called for each message instead of the async iterator. */
  callback?: (m: Msg) => void;
  /** Messages the iterator may hold unread; more are dropped (event `slowConsumer`). @default 65536 */
  maxPendingMsgs?: number;
  /** Unsubscribes when aborted. */
  signal?: AbortSignal;
}

const DEFAULT_MAX_PENDING_MSGS = 65_536;
/** Bytes (payload and headers) the iterator may hold unread: with max_payload messages, 65,536 of them would be 64 GiB. */
const DEFAULT_MAX_PENDING_BYTES = 64 * 1024 * 1024;

type Publish = (subject: string, data: Payload, opts: { headers?: HeadersInit }) => void;

/**
 * A core subscription, made by `client.subscribe()`: iterate it with `for await`, or give a
 * `callback`. It survives reconnects (SDK5.2).
 */
export class Subscription implements AsyncIterable<Msg> {
  /** Messages received so far. */
  received = 0;
  /** Messages dropped because the iterator was not read fast enough. */
  dropped = 0;
  private wire: WireSubscription | undefined;
  private readonly pending: Msg[] = [];
  private pendingBytes = 0;
  private readers: (() => void)[] = [];
  private done = false;
  /** Unsubscribe after this many messages in all (C4.6), across connections. */
  private max: number | undefined;
  private readonly maxPendingMsgs: number;
  private readonly callback: ((m: Msg) => void) | undefined;
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort = (): void => this.unsubscribe();

  /** @internal use `client.subscribe()` */
  constructor(
    /** Its subject (wildcards allowed, C4.1). */
    readonly subject: string,
    /** Its queue group, if any. */
    readonly queue: string | undefined,
    opts: SubscribeOptions,
    private readonly publish: Publish,
    private readonly onSlow: (s: Subscription) => void,
    private readonly onDone: (s: Subscription) => void,
  ) {
    try {
      checkSubject('subject', subject, true);
      if (queue !== undefined) checkToken('queue group', queue);
    } catch (err) {
      throw toSwarmError(err);
    }
    const max = opts.max;
    if (max !== undefined && !(Number.isInteger(max) && max > 0)) {
      throw new InvalidArgumentError(`max must be a positive integer, got ${max}`);
    }
    this.max = max;
    const limit = opts.maxPendingMsgs ?? DEFAULT_MAX_PENDING_MSGS;
    if (!Number.isInteger(limit) || limit < 1) {
      throw new InvalidArgumentError(`maxPendingMsgs must be a positive integer, got ${limit}`);
    }
    this.maxPendingMsgs = limit;
    this.callback = opts.callback;
    this.signal = opts.signal;
    if (this.signal?.aborted === true) this.done = true;
    else this.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** True once unsubscribed, or after `max` messages. */
  get closed(): boolean {
    return this.done;
  }

  /** @internal (Re)subscribes on a new connection with what is left of `max` (SDK5.2). */
  attach(c: Client): void {
    if (this.done) return;
    const left = this.max === undefined ? undefined : this.max - this.received;
    // Messages of an earlier connection's subscription (one that is being left, SDK5.3) are not this one's.
    const wire: WireSubscription = c.subscribe(
      this.subject,
      (m) => {
        if (this.wire === wire) this.onMsg(m);
      },
      { queue: this.queue, max: left },
    );
    this.wire = wire;
  }

  /** C4.5/C4.6: stop now, or after `max` messages in all. */
  unsubscribe(max?: number): void {
    if (this.done) return;
    if (max !== undefined && max > this.received) {
      this.max = max;
      this.wire?.unsubscribe(max);
      return;
    }
    this.wire?.unsubscribe();
    this.finish();
  }

  /** The messages, in order; ends when unsubscribed or after `max`. Several loops may read it at once. */
  [Symbol.asyncIterator](): AsyncIterator<Msg> {
    return {
      next: async () => {
        for (;;) {
          const m = this.pending.shift();
          if (m !== undefined) {
            this.pendingBytes -= m.data.byteLength;
            return { done: false, value: m };
          }
          if (this.done) return { done: true, value: undefined };
          await new Promise<void>((resolve) => this.readers.push(resolve));
        }
      },
      return: () => {
        this.unsubscribe();
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }

  private onMsg(w: WireMsg): void {
    if (this.done) return;
    this.received++;
    // The wire's buffers are views into its read buffer: copy what the application keeps.
    const m = new Msg(w.subject, w.reply, readHeaders(w.headers), Buffer.from(w.payload), this.publish);
    if (this.callback !== undefined) this.callback(m);
    else if (
      this.pending.length >= this.maxPendingMsgs ||
      this.pendingBytes + m.data.byteLength > DEFAULT_MAX_PENDING_BYTES
    ) {
      this.dropped++;
      this.onSlow(this);
    } else {
      this.pending.push(m);
      this.pendingBytes += m.data.byteLength;
      this.wakeReaders();
    }
    if (this.max !== undefined && this.received >= this.max) this.finish();
  }

  private wakeReaders(): void {
    const readers = this.readers;
    this.readers = [];
    for (const r of readers) r();
  }

  private finish(): void {
    this.done = true;
    this.signal?.removeEventListener('abort', this.onAbort);
    this.wakeReaders();
    this.onDone(this);
  }
}
