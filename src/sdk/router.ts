/**
 * Where the SDK's durable calls go (protocol/SDK.md section 2): the view
 * and its ring, one connection per node and purpose, and the waits between
 * retries.
 *
 * A connection carries one kind of durable call only, because -ERR has no
 * correlation id (CLIENT.md C6): a `send` link has only SEND/HSEND, so every
 * answer on it is a send's, in order (D3.5); a `settle` link has only
 * ACK/NAK/WIP/TERM, whose refusals nothing waits for; each consumer pulls on
 * a connection of its own (consumer.ts). The home connection (home.ts)
 * carries core messaging only.
 */
import type { Client as Wire } from './wire/connection.js';
import { ClientError, ClientErrorCode } from './wire/errors.js';
import type { Home } from './home.js';
import { Links, addressOf, type Dial } from './links.js';
import { backoffMs, type ResolvedOptions } from './options.js';
import { callSignal } from './signals.js';
import { Placement, type ClusterView, type ViewMember } from './view.js';

/** After a failed dial of a node, it is tried last (or not at all) for this long. */
const FAILED_DIAL_QUARANTINE_MS = 1000;
/** Nodes a consumer tries in one go before it backs off (each try is bounded by connectTimeoutMs). */
const MAX_CONSUMER_DIALS = 3;
/** Retry backoff for durable calls: 25 ms doubling to 1 s, jittered, cut short by a view change. */
const RETRY = { initialDelayMs: 25, maxDelayMs: 1000, maxAttempts: Number.MAX_SAFE_INTEGER };
/** Attempts to deliver one settle before it is left to its ack deadline (D4.6). */
const SETTLE_ATTEMPTS = 5;

type SettleKind = 'ACK' | 'NAK' | 'WIP' | 'TERM';

/** What the router reports (client.ts turns these into events and counters). */
export interface RouterEvents {
  retrying(what: string, attempt: number, err: unknown): void;
  /** A durable call goes straight to its owner (true) or through another node that forwards it. */
  routed(toOwner: boolean): void;
}

export class ClusterRouter {
  private placement: Placement | undefined;
  private homeNode: string | undefined;
  private readonly links: Links;
  private readonly failedDials = new Map<string, number>();
  private viewWaiters: (() => void)[] = [];

  constructor(
    private readonly o: ResolvedOptions,
    private readonly dial: Dial,
    private readonly home: Home,
    /** Aborted when the client closes. */
    private readonly lifetime: AbortSignal,
    private readonly events: RouterEvents,
  ) {
    this.links = new Links(dial, o.connectTimeoutMs);
  }

  get view(): ClusterView | undefined {
    return this.placement?.view;
  }

  /**
   * SDK1.2: a new INFO from the home node. Returns true when the view changed (members, their
   * addresses or RF). Links to nodes no longer in the view are closed.
   */
  setView(view: ClusterView | undefined): boolean {
    this.homeNode = view?.self;
    if (view === undefined) return false;
    const next = new Placement(view);
    const changed = !next.sameView(this.placement);
    this.placement = next;
    if (!changed) return false;
    const live = new Set(view.members.map((m) => addressOf(m, this.o.transport)));
    this.links.retain((address) => live.has(address));
    for (const a of this.failedDials.keys()) if (!live.has(a)) this.failedDials.delete(a);
    for (const w of this.viewWaiters.splice(0)) w();
    return true;
  }

  /** Addresses of every member of the view (reconnect candidates, SDK5.1). */
  memberAddresses(): string[] {
    const out: string[] = [];
    for (const m of this.placement?.view.members ?? []) {
      const a = addressOf(m, this.o.transport);
      if (a !== undefined) out.push(a);
    }
    return out;
  }

  /** The destination's owner in the view, whether or not calls are routed to it. */
  member(destination: string): ViewMember | undefined {
    return this.placement?.owner(destination);
  }

  /** The destination's owner in the view, when routing to owners is on. */
  owner(destination: string): { id: string; address: string | undefined } | undefined {
    if (!this.o.routeToOwner) return undefined;
    const m = this.placement?.owner(destination);
    return m === undefined ? undefined : { id: m.id, address: addressOf(m, this.o.transport) };
  }

  /** SDK2.1/SDK2.2: the send link to the owner, else to the home node (which forwards, M4.5). */
  async sendLink(destination: string, signal: AbortSignal): Promise<Wire> {
    return this.link('send', destination, signal);
  }

  /** SDK4.3: a settle, sent on the owner's settle link, tried a few times before it is left to its deadline. */
  settle(destination: string, kind: SettleKind, handle: string, delayMs?: number): void {
    // The common case, an open link to the owner: written at once, no promise.
    const owner = this.owner(destination)?.address;
    const open = this.links.peek(`settle ${owner ?? this.home.address ?? ''}`);
    if (open !== undefined && !open.isClosed) return open.settle(kind, handle, delayMs);
    void (async () => {
      for (let attempt = 0; attempt < SETTLE_ATTEMPTS && !this.lifetime.aborted; attempt++) {
        const call = callSignal([this.lifetime], this.o.connectTimeoutMs);
        try {
          const link = await this.link('settle', destination, call.signal);
          if (!link.isClosed) return link.settle(kind, handle, delayMs);
        } catch (err) {
          if (this.lifetime.aborted || kind === 'WIP') return;
          this.events.retrying(`${kind} ${handle}`, attempt + 1, err);
        } finally {
          call.release();
        }
        await this.pause(attempt, this.lifetime).catch(() => undefined);
      }
    })();
  }

  /**
   * SDK4.1: a consumer's own connection: to the owner, else to the home node, else to another
   * member (any node forwards, M4.5); nodes that failed a dial in the last second go last.
   * `ownerId` is the owner it was opened for (not the node it reached), so the consumer reopens
   * only when the owner changes.
   */
  async consumerConnection(
    destination: string,
    signal: AbortSignal,
  ): Promise<{ conn: Wire; ownerId: string | undefined }> {
    const owner = this.owner(destination);
    const choices: string[] = [];
    const add = (a: string | undefined): void => {
      if (a !== undefined && a !== '' && !choices.includes(a)) choices.push(a);
    };
    add(owner?.address);
    add(this.home.address);
    for (const a of this.memberAddresses()) add(a);
    for (const a of this.o.servers) add(a);
    const ordered = [...choices.filter((a) => this.fresh(a)), ...choices.filter((a) => !this.fresh(a))];
    let lastErr: unknown;
    for (const address of ordered.slice(0, MAX_CONSUMER_DIALS)) {
      const bounded = callSignal([signal], this.o.connectTimeoutMs);
      try {
        const conn = await this.dial(address, bounded.signal);
        this.events.routed(address === owner?.address);
        return { conn, ownerId: owner?.id };
      } catch (err) {
        if (signal.aborted) throw err;
        this.failedDials.set(address, Date.now());
        lastErr = err;
      } finally {
        bounded.release();
      }
    }
    throw lastErr ?? new ClientError(ClientErrorCode.Connect, 'no node to pull from');
  }

  /** Before a retry: backoff with jitter, cut short when the view changes; rejects when `signal` aborts. */
  pause(attempt: number, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason as Error);
      const cleanup = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        const i = this.viewWaiters.indexOf(done);
        if (i >= 0) this.viewWaiters.splice(i, 1);
      };
      const done = (): void => {
        cleanup();
        resolve();
      };
      const onAbort = (): void => {
        cleanup();
        reject(signal.reason as Error);
      };
      const timer = setTimeout(done, backoffMs(RETRY, attempt));
      signal.addEventListener('abort', onAbort, { once: true });
      this.viewWaiters.push(done);
    });
  }

  close(): Promise<void> {
    for (const w of this.viewWaiters.splice(0)) w();
    return this.links.closeAll();
  }

  private fresh(address: string): boolean {
    return Date.now() - (this.failedDials.get(address) ?? 0) > FAILED_DIAL_QUARANTINE_MS;
  }

  /** The `purpose` link to the owner, else to the home node's address. */
  private async link(purpose: 'send' | 'settle', destination: string, signal: AbortSignal): Promise<Wire> {
    const owner = this.owner(destination);
    const ownerAddress = owner?.address;
    if (ownerAddress !== undefined && ownerAddress !== '' && this.fresh(ownerAddress)) {
      try {
        const link = await this.links.get(`${purpose} ${ownerAddress}`, ownerAddress, signal);
        this.events.routed(true);
        return link;
      } catch (err) {
        if (signal.aborted) throw err;
        this.failedDials.set(ownerAddress, Date.now());
      }
    }
    await this.home.ready(signal);
    const address = this.home.address!;
    const link = await this.links.get(`${purpose} ${address}`, address, signal);
    this.events.routed(owner !== undefined && owner.id === this.homeNode);
    return link;
  }
}
