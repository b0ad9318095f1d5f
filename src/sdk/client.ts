/**
 * The SwarmMQ SDK client: `connect({ servers })` and one object with core
 * messaging (publish, subscribe, request), durable sends and consumers.
 *
 * It knows the mesh: the view comes with every INFO of its home node
 * (view.ts), durable calls go to each destination's owner, computed with the
 * nodes' own ring (src/mesh/ring.ts), over one shared connection per node
 * (links.ts), and every failure a cluster can cause (a node lost, an owner
 * moved) is retried with the call's id kept, so the application sees
 * results, not failovers. Everything it buffers is bounded; every call takes
 * an AbortSignal; every error is one of errors.ts.
 */
import { EventEmitter } from 'node:events';
import type { Client as Wire } from './wire/connection.js';
import type { ServerInfo } from './wire/types.js';
import { DisconnectedError, abortReason, toSwarmError } from './errors.js';
import { Home } from './home.js';
import { withKeepalive } from './keepalive.js';
import { Links, addressOf, tcpDialer, type Dial } from './links.js';
import { Msg, headerBlock, readHeaders, toBuffer, type HeadersInit, type Payload } from './messages.js';
import { backoffMs, resolveOptions, type ConnectOptions, type ResolvedOptions } from './options.js';
import { Consumer, type ConsumeOptions } from './consumer.js';
import { Sender, type Router, type SendOptions, type SendResult } from './sender.js';
import { Subscription, type SubscribeOptions } from './subscription.js';
import { Placement, viewFromInfo, type ClusterView, type ViewMember } from './view.js';

/** Event `connect`. */
export interface ConnectEvent {
  /** The node's address. */
  address: string;
  /** False for the first connection. */
  reconnected: boolean;
}

/** Event `disconnect`. */
export interface DisconnectEvent {
  /** The node that was lost. */
  address: string;
  /** Why. */
  error: Error;
}

/** Event `reconnecting`. */
export interface ReconnectingEvent {
  /** 1 for the first try after the loss. */
  attempt: number;
  /** The wait before this try (backoff with jitter). */
  delayMs: number;
}

/** Event `retry`. */
export interface RetryEvent {
  /** The call, e.g. `sending to orders (id …)`. */
  what: string;
  /** 1 for the first retry. */
  attempt: number;
  /** The failure that is retried. */
  error: Error;
}

/** Event `slowConsumer`. */
export interface SlowConsumerEvent {
  /** The subscription's subject. */
  subject: string;
  /** Messages it has dropped so far. */
  dropped: number;
}

/** Event `callbackError`. */
export interface CallbackErrorEvent {
  /** The subscription's subject. */
  subject: string;
  /** What the callback threw. */
  error: unknown;
}

/** Counters of what the client did, for dashboards and tests (`client.stats`). */
export interface ClientStats {
  /** Durable calls sent straight to the destination's owner (one per attempt). */
  toOwner: number;
  /** Durable calls sent through the home node, which forwards them (M4.5): no view, the owner is the home node, or its link failed. */
  viaHome: number;
  /** Calls retried after a failure the client rides out. */
  retries: number;
  /** Home connections made after the first (reconnects and moves). */
  reconnects: number;
}

/** The events a client emits; all are informational (nothing must listen). */
export interface ClientEvents {
  /** Connected (first time, or again after a loss). */
  connect: [ConnectEvent];
  /** The home connection was lost; the client is reconnecting. */
  disconnect: [DisconnectEvent];
  /** The client waits `delayMs` before its `attempt`-th try to reconnect. */
  reconnecting: [ReconnectingEvent];
  /** The cluster's view changed (members, their addresses, the replication factor). */
  view: [ClusterView];
  /** A call failed in a way the client retries (a lost node, a moved owner). */
  retry: [RetryEvent];
  /** A subscription dropped a message because its iterator was not read fast enough. */
  slowConsumer: [SlowConsumerEvent];
  /** A subscription callback threw; the subscription goes on. */
  callbackError: [CallbackErrorEvent];
  /** The client is closed: by close() (no error) or because no node answered within the reconnect budget. */
  closed: [DisconnectedError | undefined];
}

/** Publishes kept while the home connection is down, flushed when it is back. */
const MAX_PUBLISH_BUFFER_BYTES = 8 * 1024 * 1024;
/** After a failed dial of an owner, durable calls go through the home node for this long. */
const FAILED_LINK_QUARANTINE_MS = 1000;
/** Nodes a consumer tries in one go before it backs off (each try is bounded by connectTimeoutMs). */
const MAX_CONSUMER_DIALS = 3;
/** Retry backoff for durable calls: 25 ms doubling to 1 s, jittered, cut short by a view change. */
const RETRY = { initialDelayMs: 25, maxDelayMs: 1000, maxAttempts: Number.MAX_SAFE_INTEGER };

/** Connects to one of `servers` and learns the cluster from it. */
export async function connect(opts: ConnectOptions): Promise<SwarmClient> {
  const o = resolveOptions(opts);
  const transport = await dialerFor(o);
  const dial = withKeepalive(transport.dial, o.pingIntervalMs, o.pingTimeoutMs);
  const client = new SwarmClient(o, dial, transport.close);
  try {
    await client.start(opts.signal);
  } catch (err) {
    await client.close();
    throw err;
  }
  return client;
}

async function dialerFor(o: ResolvedOptions): Promise<{ dial: Dial; close?: () => Promise<void> }> {
  if (o.transport === 'tcp') return { dial: tcpDialer(o) };
  // Loaded only here: a TCP application never loads libp2p.
  const { libp2pDialer } = await import('./transport/dial-libp2p.js');
  return libp2pDialer(o);
}

export class SwarmClient extends EventEmitter<ClientEvents> {
  private readonly home: Home;
  private readonly links: Links;
  private readonly sender: Sender;
  private placement: Placement | undefined;
  private homeNode: string | undefined;
  private readonly subs = new Set<Subscription>();
  private readonly consumers = new Set<Consumer>();
  private readonly failedLinks = new Map<string, number>();
  private viewWaiters: (() => void)[] = [];
  private publishBuffer: { subject: string; payload: Buffer; reply?: string; headers?: Buffer }[] = [];
  private publishBufferBytes = 0;
  private closing: Promise<void> | undefined;
  private readonly counters: ClientStats = { toOwner: 0, viaHome: 0, retries: 0, reconnects: 0 };

  /** @internal use connect() */
  constructor(
    private readonly o: ResolvedOptions,
    private readonly dial: Dial,
    private readonly closeTransport: (() => Promise<void>) | undefined = undefined,
  ) {
    super();
    this.home = new Home(o, dial, {
      candidates: () => this.candidates(),
      connected: (c, address, again) => this.onConnected(c, address, again),
      disconnected: (address, error) => this.emit('disconnect', { address, error }),
      reconnecting: (attempt, delayMs) => this.emit('reconnecting', { attempt, delayMs }),
      info: (info) => this.onInfo(info),
      gaveUp: (err) => void this.shutdown(err),
    });
    this.links = new Links(dial, o.connectTimeoutMs, () => undefined);
    const router: Router = {
      target: (d, s) => this.target(d, s),
      failed: () => undefined,
      pause: (attempt, s) => this.pause(attempt, s),
      retrying: (what, attempt, error) => this.retried(what, attempt, error),
    };
    this.sender = new Sender(router, o.maxSendsInFlight, o.sendTimeoutMs);
  }

  /** @internal */
  async start(signal: AbortSignal | undefined): Promise<void> {
    await this.home.start(signal);
  }

  /** A copy of the client's counters. */
  get stats(): ClientStats {
    return { ...this.counters };
  }

  /** The cluster as last seen (undefined for a standalone node). */
  get view(): ClusterView | undefined {
    return this.placement?.view;
  }

  /** The address of the node the home connection is on, if connected. */
  get connectedTo(): string | undefined {
    return this.home.client === undefined ? undefined : this.home.address;
  }

  /** The node that owns `destination` in the client's view (MESH.md M3.2), if known. */
  ownerOf(destination: string): Pick<ViewMember, 'id' | 'client'> | undefined {
    const m = this.placement?.owner(destination);
    return m === undefined ? undefined : { id: m.id, client: m.client };
  }

  // ---- core messaging (CLIENT.md C3-C5) ------------------------------------

  /**
   * C3.1: publishes (at most once). While the client is reconnecting, up to 8 MiB of publishes
   * wait for the next connection; past that it throws a DisconnectedError.
   */
  publish(subject: string, data: Payload = '', opts: { reply?: string; headers?: HeadersInit } = {}): void {
    this.assertOpen();
    const payload = toBuffer(data);
    let headers: Buffer | undefined;
    try {
      headers = headerBlock(opts.headers);
    } catch (err) {
      throw toSwarmError(err);
    }
    const c = this.home.client;
    if (c !== undefined && !c.isClosed) {
      try {
        c.publish(subject, payload, { reply: opts.reply, headers });
        return;
      } catch (err) {
        throw toSwarmError(err);
      }
    }
    const bytes = payload.length + (headers?.length ?? 0);
    if (this.publishBufferBytes + bytes > MAX_PUBLISH_BUFFER_BYTES) {
      throw new DisconnectedError('not connected, and the reconnect buffer (8 MiB) is full');
    }
    this.publishBufferBytes += bytes;
    this.publishBuffer.push({ subject, payload: Buffer.from(payload), reply: opts.reply, headers });
  }

  /** C4.1: subscribes; the subscription is made again on every new connection. */
  subscribe(subject: string, opts: SubscribeOptions = {}): Subscription {
    this.assertOpen();
    const cb = opts.callback;
    const callback =
      cb === undefined
        ? undefined
        : (m: Msg): void => {
            try {
              cb(m);
            } catch (error) {
              this.emit('callbackError', { subject, error });
            }
          };
    const sub = new Subscription(
      subject,
      opts.queue,
      opts.max,
      { ...opts, callback },
      (s, d, o) => this.publish(s, d, o),
      (s) => this.emit('slowConsumer', { subject: s.subject, dropped: s.dropped }),
      (s) => this.subs.delete(s),
    );
    this.subs.add(sub);
    const c = this.home.client;
    if (c !== undefined) sub.attach(c);
    return sub;
  }

  /** C5.6: a request and its first reply. NoRespondersError when nobody is subscribed (C5.4). */
  async request(
    subject: string,
    data: Payload = '',
    opts: { headers?: HeadersInit; timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<Msg> {
    this.assertOpen();
    const deadline = AbortSignal.timeout(opts.timeoutMs ?? this.o.requestTimeoutMs);
    const signal = opts.signal === undefined ? deadline : AbortSignal.any([opts.signal, deadline]);
    const doing = `waiting for a reply on ${subject}`;
    try {
      const c = await this.home.ready(signal);
      const m = await c.request(subject, toBuffer(data), { headers: headerBlock(opts.headers), signal });
      return new Msg(m.subject, m.reply, readHeaders(m.headers), m.payload, (s, d, o) =>
        this.publish(s, d, o),
      );
    } catch (err) {
      if (signal.aborted) throw abortReason(signal, doing);
      throw toSwarmError(err);
    }
  }

  /** C2.6: resolves once the home node has handled everything published before. */
  async flush(signal?: AbortSignal): Promise<void> {
    this.assertOpen();
    const s = signal ?? AbortSignal.timeout(this.o.requestTimeoutMs);
    try {
      const c = await this.home.ready(s);
      await c.flush(s);
    } catch (err) {
      if (s.aborted) throw abortReason(s, 'flushing');
      throw toSwarmError(err);
    }
  }

  // ---- durable destinations (DURABLE.md) -----------------------------------

  /**
   * D3.1: stores a message; resolves once the cluster confirmed it (synced at the owner and its
   * live replicas). Lost connections and owner failovers are retried with the same id, so the
   * store keeps one copy (D3.4). Rejects with a typed error the application must see: refused
   * (a full destination, a limit), forbidden, invalid, or a timeout after `sendTimeoutMs`.
   */
  async send(destination: string, data: Payload, opts: SendOptions = {}): Promise<SendResult> {
    this.assertOpen();
    return this.sender.send(destination, data, opts);
  }

  /**
   * D4: a consumer of `destination` for a group. Iterate it with `for await`; settle each message
   * with ack(), nak(), term(); working() extends its ack timeout. Breaking out of the loop stops it.
   */
  consume(destination: string, opts: ConsumeOptions = {}): Consumer {
    this.assertOpen();
    const consumer = new Consumer(
      {
        open: (d, s) => this.openConsumerConnection(d, s),
        settle: (d, kind, handle, delayMs) => this.settleAnywhere(d, kind, handle, delayMs),
        ownerId: (d) => (this.o.routeToOwner ? this.placement?.owner(d)?.id : undefined),
        pause: (attempt, s) => this.pause(attempt, s),
        retrying: (what, attempt, error) => this.retried(what, attempt, error),
      },
      destination,
      opts,
    );
    this.consumers.add(consumer);
    return consumer;
  }

  /** Stops consumers, unsubscribes, closes every connection. */
  close(): Promise<void> {
    return this.shutdown(undefined);
  }

  // ---- internals -------------------------------------------------------------

  private retried(what: string, attempt: number, error: unknown): void {
    this.counters.retries++;
    this.emit('retry', { what, attempt, error: error as Error });
  }

  private assertOpen(): void {
    if (this.closing !== undefined) throw new DisconnectedError('client closed');
  }

  private shutdown(err: DisconnectedError | undefined): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.consumers].map((c) => c.stop()));
      for (const s of [...this.subs]) s.unsubscribe();
      await Promise.all([this.links.closeAll(), this.home.close()]);
      await this.closeTransport?.();
      for (const w of this.viewWaiters.splice(0)) w();
      this.emit('closed', err);
    })();
    return this.closing;
  }

  /** Home candidates: seeds first, then every member's address. */
  private candidates(): string[] {
    const out = new Set(this.o.servers);
    for (const m of this.placement?.view.members ?? []) {
      const a = addressOf(m, this.o.transport);
      if (a !== undefined) out.add(a);
    }
    return [...out];
  }

  private onConnected(c: Wire, address: string, again: boolean): void {
    this.onInfo(c.info);
    for (const s of this.subs) s.attach(c);
    const buffered = this.publishBuffer;
    this.publishBuffer = [];
    this.publishBufferBytes = 0;
    for (const p of buffered) c.publish(p.subject, p.payload, { reply: p.reply, headers: p.headers });
    if (again) this.counters.reconnects++;
    this.emit('connect', { address, reconnected: again });
  }

  private onInfo(info: ServerInfo): void {
    const view = viewFromInfo(info);
    this.homeNode = view?.self;
    if (view === undefined) return;
    const next = new Placement(view);
    const changed = !next.samePlacement(this.placement);
    this.placement = next;
    if (changed) {
      for (const w of this.viewWaiters.splice(0)) w();
      this.emit('view', view);
    }
  }

  /** Router: the owner's shared link, else the home connection (which forwards, M4.5). */
  private async target(destination: string, signal: AbortSignal): Promise<Wire> {
    const owner = this.o.routeToOwner ? this.placement?.owner(destination) : undefined;
    if (owner !== undefined && owner.id !== this.homeNode) {
      const address = addressOf(owner, this.o.transport);
      const failedAt = address === undefined ? undefined : this.failedLinks.get(address);
      if (
        address !== undefined &&
        (failedAt === undefined || Date.now() - failedAt > FAILED_LINK_QUARANTINE_MS)
      ) {
        try {
          const link = await this.links.get(address, signal);
          this.counters.toOwner++;
          return link;
        } catch (err) {
          if (signal.aborted) throw err;
          this.failedLinks.set(address, Date.now());
        }
      }
    }
    const home = await this.home.ready(signal);
    if (owner !== undefined && owner.id === this.homeNode) this.counters.toOwner++;
    else this.counters.viaHome++;
    return home;
  }

  /** A settle of a stopped consumer's delivery, sent through the owner's link or the home node. */
  private settleAnywhere(
    destination: string,
    kind: 'ACK' | 'NAK' | 'WIP' | 'TERM',
    handle: string,
    delayMs?: number,
  ): void {
    if (this.closing !== undefined) return;
    this.target(destination, AbortSignal.timeout(this.o.connectTimeoutMs)).then(
      (c) => c.settle(kind, handle, delayMs),
      // Not settled: the delivery comes back at its ack deadline (D4.6), as for a lost connection.
      (error: unknown) =>
        this.emit('retry', { what: `settling ${handle}`, attempt: 1, error: error as Error }),
    );
  }

  /**
   * A consumer's own connection: to the owner, else to the home node, else to another member
   * (any node forwards, M4.5). Nodes that failed a dial in the last second are tried last.
   */
  private async openConsumerConnection(
    destination: string,
    signal: AbortSignal,
  ): Promise<{ conn: Wire; nodeId: string | undefined }> {
    const owner = this.o.routeToOwner ? this.placement?.owner(destination) : undefined;
    const choices: { address: string; nodeId: string | undefined }[] = [];
    const add = (address: string | undefined, nodeId: string | undefined): void => {
      if (address !== undefined && !choices.some((c) => c.address === address))
        choices.push({ address, nodeId });
    };
    if (owner !== undefined) add(addressOf(owner, this.o.transport), owner.id);
    if (this.home.client !== undefined) add(this.home.address, this.homeNode);
    for (const m of this.placement?.view.members ?? []) add(addressOf(m, this.o.transport), m.id);
    if (choices.length === 0) add((await this.home.ready(signal), this.home.address), this.homeNode);
    const fresh = (a: string): boolean =>
      Date.now() - (this.failedLinks.get(a) ?? 0) > FAILED_LINK_QUARANTINE_MS;
    const ordered = [...choices.filter((c) => fresh(c.address)), ...choices.filter((c) => !fresh(c.address))];
    let lastErr: unknown;
    for (const c of ordered.slice(0, MAX_CONSUMER_DIALS)) {
      try {
        const bounded = AbortSignal.any([signal, AbortSignal.timeout(this.o.connectTimeoutMs)]);
        return { conn: await this.dial(c.address, bounded), nodeId: c.nodeId };
      } catch (err) {
        if (signal.aborted) throw err;
        this.failedLinks.set(c.address, Date.now());
        lastErr = err;
      }
    }
    throw lastErr as Error;
  }

  /** Before a retry: backoff with jitter, cut short when the view changes. */
  private pause(attempt: number, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason as Error);
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        const i = this.viewWaiters.indexOf(done);
        if (i >= 0) this.viewWaiters.splice(i, 1);
        resolve();
      };
      const onAbort = (): void => {
        clearTimeout(timer);
        const i = this.viewWaiters.indexOf(done);
        if (i >= 0) this.viewWaiters.splice(i, 1);
        reject(signal.reason as Error);
      };
      const timer = setTimeout(done, backoffMs(RETRY, attempt));
      signal.addEventListener('abort', onAbort, { once: true });
      this.viewWaiters.push(done);
    });
  }
}
