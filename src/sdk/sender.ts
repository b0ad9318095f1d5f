/**
 * Durable sends (DURABLE.md D3): each goes to its destination's owner with
 * an id fixed before the first attempt, so a send retried after a lost
 * connection, a dead owner or a moved ring is de-duplicated by the node
 * (D3.4) instead of stored twice. A window bounds the sends in flight; the
 * sends of one event-loop turn leave in one write per connection (the wire
 * client corks until the next tick), which is how they batch on the wire.
 */
import { randomBytes } from 'node:crypto';
import type { Client } from './wire/connection.js';
import { checkDestination, checkId } from './wire/text.js';
import { ClientError, ClientErrorCode } from './wire/errors.js';
import { InvalidArgumentError, abortReason, isRetryable, toSwarmError } from './errors.js';
import { headerBlock, toBuffer, type HeadersInit, type Payload } from './messages.js';
import { callSignal } from './signals.js';

/** The Nats-Msg-Id header's value, if the headers have one. */
function msgIdOf(h: HeadersInit | undefined): string | undefined {
  if (h === undefined) return undefined;
  const pairs = Array.isArray(h) ? (h as readonly (readonly [string, string])[]) : Object.entries(h);
  return pairs.find(([name]) => name.toLowerCase() === 'nats-msg-id')?.[1];
}

/** Options of one `send()`. */
export interface SendOptions {
  /** The message id (1-128 bytes, no whitespace; D3.2). Default: 32 random hex digits, chosen once per call. */
  id?: string;
  /** 1-10, 10 highest (D3.2). @default 5 */
  priority?: number;
  /** Expire this long after storing (D5.1). */
  ttlMs?: number;
  /** Deliver no sooner than this (D5.3). */
  delayMs?: number;
  /** Header fields, stored with the message and given to consumers (DURABLE.md D3.9). */
  headers?: HeadersInit;
  /** Overrides the client's `sendTimeoutMs` for this call. */
  timeoutMs?: number;
  /** Aborts the send (its retries too); a send already stored stays stored. */
  signal?: AbortSignal;
}

/** D3.1: the cluster confirmed storage (synced at the owner and its live replicas, MESH.md M5.2). */
export interface SendResult {
  /** Where it is stored. */
  readonly destination: string;
  /** Its sequence number in the destination (D3.3; a merge after a partition may renumber it, M8). */
  readonly seq: number;
  /** Its id: the one given, or the one the SDK chose. */
  readonly id: string;
  /** True when the id was already stored (D3.4): a retry of ours, or the application's own repeat. */
  readonly duplicate: boolean;
}

/** What a Sender needs of the router (router.ts). */
export interface SendRouter {
  /** SDK2.1: a send link to the destination's owner, or to a node that forwards to it (M4.5). */
  sendLink(destination: string, signal: AbortSignal): Promise<Client>;
  /** Waits before attempt `attempt` + 1: backoff with jitter, cut short by a view change. */
  pause(attempt: number, signal: AbortSignal): Promise<void>;
}

export class Sender {
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly router: SendRouter,
    private readonly maxInFlight: number,
    private readonly defaultTimeoutMs: number,
    /** Aborted, with the reason, when the client closes: every send ends with it (SDK3.3). */
    private readonly lifetime: AbortSignal,
    private readonly retrying: (what: string, attempt: number, err: unknown) => void,
  ) {}

  async send(destination: string, data: Payload, opts: SendOptions = {}): Promise<SendResult> {
    // A copy: a retry must send the bytes of the call, whatever the caller does with its buffer.
    const payload = Buffer.from(toBuffer(data));
    let headers: Buffer | undefined;
    try {
      checkDestination(destination);
      if (opts.id !== undefined) checkId(opts.id);
      headers = headerBlock(opts.headers);
    } catch (err) {
      throw toSwarmError(err);
    }
    if (
      opts.priority !== undefined &&
      !(Number.isInteger(opts.priority) && opts.priority >= 1 && opts.priority <= 10)
    ) {
      throw new InvalidArgumentError(`priority must be an integer 1-10, got ${opts.priority}`);
    }
    // SDK3.1: fixed before the first attempt; a Nats-Msg-Id header names it as it does for a node (D3.9).
    const id = opts.id ?? msgIdOf(opts.headers) ?? randomBytes(16).toString('hex');
    const call = callSignal([this.lifetime, opts.signal], opts.timeoutMs ?? this.defaultTimeoutMs);
    const signal = call.signal;
    const doing = `sending to ${destination} (id ${id})`;
    try {
      await this.acquire(signal, doing);
    } catch (err) {
      call.release();
      throw err;
    }
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const conn = await this.router.sendLink(destination, signal);
          const stored = await conn.send(
            destination,
            payload,
            { id, priority: opts.priority, ttlMs: opts.ttlMs, delayMs: opts.delayMs, headers },
            signal,
          );
          if (stored.id !== id || stored.destination !== destination) {
            // Not this send's answer: the link's answers are out of step. Drop it and send again;
            // the id makes the retry safe (D3.4).
            conn.destroy();
            throw new ClientError(
              ClientErrorCode.Protocol,
              `answer for ${stored.id} where ${id} was expected`,
            );
          }
          return { destination, seq: stored.seq, id, duplicate: stored.duplicate };
        } catch (err) {
          if (signal.aborted) throw abortReason(signal, doing);
          if (!isRetryable(err)) throw toSwarmError(err);
          this.retrying(doing, attempt + 1, err);
          await this.router.pause(attempt, signal).catch(() => {
            throw abortReason(signal, doing);
          });
        }
      }
    } finally {
      call.release();
      this.release();
    }
  }

  private acquire(signal: AbortSignal, doing: string): Promise<void> {
    if (this.inFlight < this.maxInFlight) {
      this.inFlight++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const go = (): void => {
        signal.removeEventListener('abort', onAbort);
        this.inFlight++;
        resolve();
      };
      const onAbort = (): void => {
        const i = this.waiting.indexOf(go);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(abortReason(signal, `${doing}: waiting for a slot in the send window`));
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(go);
    });
  }

  private release(): void {
    this.inFlight--;
    this.waiting.shift()?.();
  }
}
