/**
 * The SwarmMQ SDK client (protocol/SDK.md): `connect({ servers })` and one
 * object with core messaging (publish, subscribe, request), durable sends
 * and consumers.
 *
 * It knows the mesh: the view comes with every INFO of its home node
 * (home.ts, view.ts); durable calls go to each destination's owner over
 * connections kept per node and purpose (router.ts); every failure a
 * cluster can cause (a node lost or frozen, an owner moved) is retried with
 * the call's id kept, so the application sees results, not failovers.
 * Everything it buffers is bounded; every call takes an AbortSignal; every
 * error is one of errors.ts.
 */
import { EventEmitter, setMaxListeners } from 'node:events';
import type { Client as Wire } from './wire/connection.js';
import { checkSubject, checkToken } from './wire/text.js';
import type { ServerInfo } from './wire/types.js';
import { DisconnectedError, InvalidArgumentError, abortReason, toSwarmError } from './errors.js';
import type { ClientEvents, ClientStats } from './events.js';
import { Home } from './home.js';
import { withKeepalive } from './keepalive.js';
import { tcpDialer, type Dial } from './links.js';
import { Msg, headerBlock, readHeaders, toBuffer, type HeadersInit, type Payload } from './messages.js';
import { resolveOptions, type ConnectOptions, type ResolvedOptions } from './options.js';
import { Consumer, type ConsumeOptions } from './consumer.js';
import { ClusterRouter } from './router.js';
import { Sender, type SendOptions, type SendResult } from './sender.js';
import { Subscription, type SubscribeOptions } from './subscription.js';
import { callSignal } from './signals.js';
import { viewFromInfo, type ClusterView, type ViewMember } from './view.js';

/** Publishes kept while the home connection is down (SDK5.2), in bytes and in messages. */
const MAX_PUBLISH_BUFFER_BYTES = 8 * 1024 * 1024;
const MAX_PUBLISH_BUFFER_MSGS = 65_536;
/** What one kept publish costs beyond its bytes (the entry, its strings), for the byte bound. */
const PUBLISH_ENTRY_OVERHEAD_BYTES = 96;
/** The node's default max_payload (C1.6), until an INFO says otherwise. */
const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;

/** Connects to one of `servers` and learns the cluster from it (SDK1.1). */
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

interface KeptPublish {
  subject: string;
  payload: Buffer;
  reply?: string;
  headers?: Buffer;
}

/** A connected client; made by `connect()`. */
export class SwarmClient extends EventEmitter<ClientEvents> {
  private readonly home: Home;
  private readonly router: ClusterRouter;
  private readonly sender: Sender;
  private readonly subs = new Set<Subscription>();
  private readonly consumers = new Set<Consumer>();
  private kept: KeptPublish[] = [];
  private keptBytes = 0;
  private maxPayloadBytes = DEFAULT_MAX_PAYLOAD_BYTES;
  private readonly lifetime = new AbortController();
  private closing: Promise<void> | undefined;
  private readonly counters: ClientStats = { toOwner: 0, viaHome: 0, retries: 0, reconnects: 0 };

  /** @internal use connect() */
  constructor(
    private readonly o: ResolvedOptions,
    dial: Dial,
    private readonly closeTransport: (() => Promise<void>) | undefined = undefined,
  ) {
    super();
    // One listener per call in flight (bounded by maxSendsInFlight and the wire's request limit), not a leak.
    setMaxListeners(0, this.lifetime.signal);
    this.home = new Home(o, dial, {
      candidates: () => [...new Set([...this.o.servers, ...this.router.memberAddresses()])],
      connected: (c, address, again) => this.onConnected(c, address, again),
      disconnected: (address, error) => this.tell('disconnect', { address, error }),
      reconnecting: (attempt, delayMs) => this.tell('reconnecting', { attempt, delayMs }),
      info: (info) => this.onInfo(info),
      gaveUp: (err) => void this.shutdown(err),
    });
    this.router = new ClusterRouter(o, dial, this.home, this.lifetime.signal, {
      retrying: (what, attempt, error) => this.retried(what, attempt, error),
      routed: (toOwner) => void (toOwner ? this.counters.toOwner++ : this.counters.viaHome++),
    });
    this.sender = new Sender(
      this.router,
      o.maxSendsInFlight,
      o.sendTimeoutMs,
      this.lifetime.signal,
      (w, a, e) => this.retried(w, a, e),
    );
  }

  /** @internal */
  async start(signal: AbortSignal | undefined): Promise<void> {
    await this.home.start(signal);
  }

  /** A copy of the client's counters (SDK5.4). */
  get stats(): ClientStats {
    return { ...this.counters };
  }

  /** The cluster as last seen (undefined for a standalone node). */
  get view(): ClusterView | undefined {
    return this.router.view;
  }

  /** The address of the node the home connection is on, if connected. */
  get connectedTo(): string | undefined {
    return this.home.client === undefined ? undefined : this.home.address;
  }

  /** The node that owns `destination` in the client's view (MESH.md M3.2), if known. */
  ownerOf(destination: string): Pick<ViewMember, 'id' | 'client'> | undefined {
    const owner = this.router.member(destination);
    return owner === undefined ? undefined : { id: owner.id, client: owner.client };
  }

  // ---- core messaging (CLIENT.md C3-C5) ------------------------------------

  /**
   * C3.1: publishes (at most once). While the client is reconnecting, up to 8 MiB (65,536
   * messages) wait for the next connection (SDK5.2); past that it throws a DisconnectedError.
   */
  publish(subject: string, data: Payload = '', opts: { reply?: string; headers?: HeadersInit } = {}): void {
    this.assertOpen();
    const payload = toBuffer(data);
    let headers: Buffer | undefined;
    try {
      checkSubject('subject', subject, false);
      if (opts.reply !== undefined) checkToken('reply subject', opts.reply);
      headers = headerBlock(opts.headers);
    } catch (err) {
      throw toSwarmError(err);
    }
    const size = payload.length + (headers?.length ?? 0);
    if (size > this.maxPayloadBytes) {
      throw new InvalidArgumentError(
        `a ${size}-byte message is over max_payload (${this.maxPayloadBytes} bytes)`,
      );
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
    const cost = size + subject.length + (opts.reply?.length ?? 0) + PUBLISH_ENTRY_OVERHEAD_BYTES;
    if (this.keptBytes + cost > MAX_PUBLISH_BUFFER_BYTES || this.kept.length >= MAX_PUBLISH_BUFFER_MSGS) {
      throw new DisconnectedError('not connected, and the reconnect buffer (8 MiB) is full');
    }
    this.keptBytes += cost;
    this.kept.push({ subject, payload: Buffer.from(payload), reply: opts.reply, headers });
  }

  /** Resolves when the home connection's outbound buffer is below its mark: await it in a publish loop. */
  async drain(signal?: AbortSignal): Promise<void> {
    const c = this.home.client;
    if (c !== undefined) await c.drain(signal);
  }

  /** C4.1: subscribes; the subscription is made again on every new connection (SDK5.2). */
  subscribe(subject: string, opts: SubscribeOptions = {}): Subscription {
    this.assertOpen();
    const cb = opts.callback;
    const report = (error: unknown): void => this.tell('callbackError', { subject, error });
    const callback =
      cb === undefined
        ? undefined
        : (m: Msg): void => {
            try {
              // An async callback's rejection is reported too, never left unhandled.
              const r = cb(m) as unknown;
              if (r instanceof Promise) r.catch(report);
            } catch (error) {
              report(error);
            }
          };
    const sub = new Subscription(
      subject,
      opts.queue,
      { ...opts, callback },
      (s, d, o) => this.publish(s, d, o),
      (s) => this.tell('slowConsumer', { subject: s.subject, dropped: s.dropped }),
      (s) => this.subs.delete(s),
    );
    if (sub.closed) return sub;
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
    const call = callSignal([this.lifetime.signal, opts.signal], opts.timeoutMs ?? this.o.requestTimeoutMs);
    const signal = call.signal;
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
    } finally {
      call.release();
    }
  }

  /** C2.6: resolves once the home node has handled everything published before. */
  async flush(signal?: AbortSignal): Promise<void> {
    this.assertOpen();
    const call = callSignal(
      [this.lifetime.signal, signal],
      signal === undefined ? this.o.requestTimeoutMs : undefined,
    );
    const s = call.signal;
    try {
      const c = await this.home.ready(s);
      await c.flush(s);
    } catch (err) {
      if (s.aborted) throw abortReason(s, 'flushing');
      throw toSwarmError(err);
    } finally {
      call.release();
    }
  }

  // ---- durable destinations (DURABLE.md) -----------------------------------

  /**
   * D3.1: stores a message; resolves once the cluster confirmed it (synced at the owner and its
   * live replicas). Lost connections and owner failovers are retried with the same id, so the
   * store keeps one copy (SDK3). Rejects with a typed error the application must see: refused
   * (a full destination, a limit), forbidden, invalid, or a timeout after `sendTimeoutMs`.
   */
  async send(destination: string, data: Payload, opts: SendOptions = {}): Promise<SendResult> {
    this.assertOpen();
    return this.sender.send(destination, data, opts);
  }

  /**
   * D4: a consumer of `destination` for a group (SDK4). Iterate it with `for await`; settle each
   * message with ack(), nak(), term(); working() extends its ack timeout. Leaving the loop stops it.
   */
  consume(destination: string, opts: ConsumeOptions = {}): Consumer {
    this.assertOpen();
    const consumer = new Consumer(
      {
        open: (d, s) => this.router.consumerConnection(d, s),
        settle: (d, kind, handle, delayMs) => this.router.settle(d, kind, handle, delayMs),
        ownerId: (d) => this.router.owner(d)?.id,
        pause: (attempt, s) => this.router.pause(attempt, s),
        retrying: (what, attempt, error) => this.retried(what, attempt, error),
        ended: (c) => this.consumers.delete(c),
      },
      destination,
      opts,
    );
    this.consumers.add(consumer);
    return consumer;
  }

  /** Stops consumers, ends sends in flight, unsubscribes, closes every connection. */
  close(): Promise<void> {
    return this.shutdown(undefined);
  }

  // ---- internals -------------------------------------------------------------

  /** Emits an event; a listener that throws must not break the client's own work. */
  private tell<K extends keyof ClientEvents>(event: K, ...args: ClientEvents[K]): void {
    try {
      this.emit(event, ...(args as never));
    } catch {
      // the application's listener threw: its problem, not the connection's
    }
  }

  private retried(what: string, attempt: number, error: unknown): void {
    this.counters.retries++;
    this.tell('retry', { what, attempt, error: error as Error });
  }

  private assertOpen(): void {
    if (this.closing !== undefined) throw new DisconnectedError('client closed');
  }

  private shutdown(err: DisconnectedError | undefined): Promise<void> {
    this.closing ??= (async () => {
      // Sends in flight or waiting for a slot end now with why (SDK3.3).
      this.lifetime.abort(err ?? new DisconnectedError('client closed'));
      await Promise.all([...this.consumers].map((c) => c.fail(err)));
      for (const s of [...this.subs]) s.unsubscribe();
      this.kept = [];
      await Promise.all([this.router.close(), this.home.close()]);
      await this.closeTransport?.();
      this.tell('closed', err);
    })();
    return this.closing;
  }

  private onConnected(c: Wire, address: string, again: boolean): void {
    this.onInfo(c.info);
    for (const s of this.subs) s.attach(c);
    const kept = this.kept;
    this.kept = [];
    this.keptBytes = 0;
    for (const p of kept) {
      try {
        c.publish(p.subject, p.payload, { reply: p.reply, headers: p.headers });
      } catch (error) {
        // Checked when kept; a node with a lower max_payload refuses it here. The rest go on.
        this.tell('callbackError', { subject: p.subject, error: toSwarmError(error) });
      }
    }
    if (again) this.counters.reconnects++;
    this.tell('connect', { address, reconnected: again });
  }

  private onInfo(info: ServerInfo): void {
    if (typeof info.max_payload === 'number' && info.max_payload > 0) this.maxPayloadBytes = info.max_payload;
    const view = viewFromInfo(info);
    if (this.router.setView(view)) this.tell('view', view!);
  }
}
