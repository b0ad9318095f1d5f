/**
 * The home connection: the one connection core messaging runs on and INFO
 * updates come in on. When it is lost it is dialled again, node after node
 * (the seeds and every member the view named), with exponential backoff
 * and jitter, up to a bounded number of attempts; when its node says it is
 * leaving (INFO `ldm`, OPERATIONS.md OPS1.2) the SDK moves to another node
 * before that one closes.
 */
import type { Client } from './wire/connection.js';
import type { ServerInfo } from './wire/types.js';
import { AbortError, DisconnectedError, abortReason, toSwarmError } from './errors.js';
import type { Dial } from './links.js';
import { backoffMs, type ResolvedOptions } from './options.js';
import { callSignal } from './signals.js';

/** Rounds over the seeds a first connect makes before it fails. */
const INITIAL_ROUNDS = 3;

export interface HomeHooks {
  /** Addresses to try, seeds first; called before each round so it sees the latest view. */
  candidates(): string[];
  /** A connection is up (first, again after a loss, or after a move). */
  connected(c: Client, address: string, again: boolean): void;
  disconnected(address: string, err: Error): void;
  reconnecting(attempt: number, delayMs: number): void;
  /** INFO after the handshake (the view changed). */
  info(info: ServerInfo): void;
  /** The reconnect budget ran out: the client closes. */
  gaveUp(err: DisconnectedError): void;
}

export class Home {
  client: Client | undefined;
  address: string | undefined;
  private closing = false;
  private reconnectingNow = false;
  private readyWaiters = new Set<{ resolve: (c: Client) => void; reject: (e: Error) => void }>();
  private next = 0;
  private failure: Error | undefined;
  /** Cuts short a reconnect wait when the client closes. */
  private readonly closer = new AbortController();

  constructor(
    private readonly o: ResolvedOptions,
    private readonly dial: Dial,
    private readonly hooks: HomeHooks,
  ) {}

  /** The first connection; fails after trying every seed `maxAttempts` times in all, or when `signal` aborts. */
  async start(signal: AbortSignal | undefined): Promise<void> {
    const c = await this.connectLoop(signal, false);
    if (c === undefined) throw this.failure ?? new DisconnectedError('could not connect');
  }

  /** The current connection, or the next one once it is back. */
  ready(signal: AbortSignal): Promise<Client> {
    if (this.client !== undefined) return Promise.resolve(this.client);
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    return new Promise<Client>((resolve, reject) => {
      const onAbort = (): void => {
        this.readyWaiters.delete(w);
        reject(signal.reason as Error);
      };
      const w = {
        resolve: (c: Client): void => {
          signal.removeEventListener('abort', onAbort);
          resolve(c);
        },
        reject: (e: Error): void => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      this.readyWaiters.add(w);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** A method, not the field, where the answer may have changed across an await. */
  private isClosing(): boolean {
    return this.closing;
  }

  async close(): Promise<void> {
    this.closing = true;
    this.closer.abort();
    const err = new DisconnectedError('client closed');
    this.failure ??= err;
    for (const w of this.readyWaiters) w.reject(err);
    this.readyWaiters.clear();
    await this.client?.close();
  }

  private adopt(c: Client, address: string, again: boolean): void {
    this.client = c;
    this.address = address;
    c.onInfo = (info) => {
      this.hooks.info(info);
      // OPS1.2: the node is leaving; move before it closes (its subscriptions move with us).
      if (info.ldm === true && this.client === c) void this.move(c);
    };
    void c.closed.then((err) => {
      if (this.client !== c) return;
      this.client = undefined;
      if (this.closing) return;
      this.hooks.disconnected(address, err ?? new DisconnectedError(`connection to ${address} closed`));
      void this.connectLoop(undefined, true);
    });
    const waiters = [...this.readyWaiters];
    this.readyWaiters.clear();
    this.hooks.connected(c, address, again);
    for (const w of waiters) w.resolve(c);
  }

  /** Leaves a node in lame duck mode for another one, then closes the old connection. */
  private async move(old: Client): Promise<void> {
    const others = this.hooks.candidates().filter((a) => a !== this.address);
    for (const address of others) {
      if (this.closing || this.client !== old) return;
      try {
        const c = await this.dial(address, AbortSignal.timeout(this.o.connectTimeoutMs));
        if (this.client !== old || this.closing) return void c.destroy();
        this.client = undefined; // the old one's close is no longer a loss
        this.adopt(c, address, true);
        await old.close();
        return;
      } catch {
        // try the next; if none answers, the old connection's close starts the reconnect loop
      }
    }
  }

  /** Tries the candidates in turn with backoff; undefined when it gave up or was stopped. */
  private async connectLoop(signal: AbortSignal | undefined, again: boolean): Promise<Client | undefined> {
    if (this.reconnectingNow) return undefined;
    this.reconnectingNow = true;
    try {
      let lastErr: Error | undefined;
      // SDK1.1: a first connect tries each seed three times; a lost connection the whole budget (SDK5.1).
      const attempts = again
        ? this.o.reconnect.maxAttempts
        : Math.min(this.o.reconnect.maxAttempts, INITIAL_ROUNDS * this.hooks.candidates().length);
      for (let attempt = 0; attempt < attempts; attempt++) {
        if (this.closing) return undefined;
        if (signal?.aborted === true) throw abortReason(signal, 'connecting');
        if (attempt > 0 || again) {
          const delayMs = backoffMs(this.o.reconnect, attempt);
          this.hooks.reconnecting(attempt + 1, delayMs);
          const s = callSignal([signal, this.closer.signal]);
          try {
            await sleep(delayMs, s.signal);
          } catch (err) {
            if (this.closing) return undefined;
            throw err;
          } finally {
            s.release();
          }
        }
        const list = this.hooks.candidates();
        const address = list[this.next++ % list.length]!;
        const deadline = AbortSignal.timeout(this.o.connectTimeoutMs);
        try {
          const c = await this.dial(
            address,
            signal === undefined ? deadline : AbortSignal.any([signal, deadline]),
          );
          if (this.isClosing()) {
            c.destroy();
            return undefined;
          }
          this.adopt(c, address, again);
          return c;
        } catch (err) {
          if (aborted(signal)) throw abortReason(signal!, 'connecting');
          lastErr = err as Error;
          // A refused credential or an address that does not parse will not get better by retrying.
          const e = toSwarmError(err);
          if (!again && (e.code === 'FORBIDDEN' || e.code === 'INVALID_ARGUMENT')) throw e;
        }
      }
      const err = new DisconnectedError(
        `no node answered after ${attempts} attempts (last: ${lastErr?.message ?? 'none'})`,
        lastErr,
      );
      this.failure = err;
      for (const w of this.readyWaiters) w.reject(err);
      this.readyWaiters.clear();
      if (again) this.hooks.gaveUp(err);
      return undefined;
    } finally {
      this.reconnectingNow = false;
    }
  }
}

/** A function, so the check is made again after an await (TypeScript would narrow a property read). */
function aborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new AbortError('aborted while waiting to reconnect', signal?.reason));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
