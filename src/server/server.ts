/**
 * The client-facing TCP server: accepts connections within the connection
 * limit, sends each its INFO, owns the node-wide router, batches all socket
 * writes of one event-loop turn into one flush per connection, and keeps
 * the counts (connections, closes by reason, bytes and messages).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { hostname } from 'node:os';
import { CLOSE_FLUSH_GRACE_MS } from '../config/defaults.js';
import type { NodeOptions } from '../config/options.js';
import { Authenticator } from '../auth/authenticator.js';
import type { AuthConfig } from '../auth/config.js';
import { CloseReason, closeTexts, StartupError, type ErrorKind } from '../errors.js';
import type { Logger } from '../log.js';
import { VERSION } from '../version.js';
import { ClientConnection, type ConnectionHost } from './connection.js';
import { remoteLabel, type ClientSocket } from './client-socket.js';
import { clientLimits, type ClientLimits } from './limits.js';
import { ConnectionRate } from './rate.js';
import { Router } from './router.js';
import type { DurableService } from '../durable/service.js';
import type { SessionObserver } from './durable-session.js';
import type { ClusterView } from '../protocol/cluster-view.js';

/** What a node in a cluster tells its clients in INFO (protocol/MESH.md M2.5). */
export interface ClusterInfo {
  /** Client addresses of the view's members (`connect_urls`, for stock NATS clients' failover). */
  readonly connectUrls: readonly string[];
  /** The ring the node computes owners with (`swarmmq`, for clients that route to owners). */
  readonly view: ClusterView;
}

export interface ServerStats {
  readonly connections: number;
  readonly totalConnections: number;
  readonly subscriptions: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly closes: Readonly<Record<string, number>>;
  /** PUB, HPUB and SEND received; MSG, HMSG and DMSG written (open and closed connections). */
  readonly msgsIn: number;
  readonly msgsOut: number;
  /** -ERRs sent, by code (protocol/METRICS.md MT2.1). */
  readonly errors: Readonly<Record<string, number>>;
}

export class ClientServer implements ConnectionHost {
  readonly router = new Router();
  readonly serverId: string = newServerId();
  readonly connections = new Map<number, ClientConnection>();
  private readonly tcp: net.Server;
  private nextCid = 1;
  private readonly dirty = new Set<ClientConnection>();
  private flushScheduled = false;
  private readonly flushAll = (): void => {
    this.flushScheduled = false;
    for (const c of this.dirty) c.flush();
    this.dirty.clear();
    this.turn++;
  };
  private turn = 0;
  private totalPendingTurn = -1;
  private totalPendingCache = 0;
  private bytesIn = 0;
  private bytesOut = 0;
  private totalConnections = 0;
  private readonly closes: Record<string, number> = {};
  private readonly errors: Record<string, number> = {};
  /** Messages of connections already closed; open ones are summed at stats() (no node-wide count per message). */
  private msgsInClosed = 0;
  private msgsOutClosed = 0;
  /** Set by the node: the metrics' timing hooks for durable sessions (protocol/METRICS.md MT3). */
  observer: SessionObserver | undefined = undefined;
  /** INFO as a connected client gets it. */
  private infoBase = '';
  /** C2.9: INFO before CONNECT on a node with credentials or TLS: the same without the view. */
  private infoBaseGuest = '';
  private boundHost = '';
  private boundPort = 0;
  private serverName = '';
  /** SEC2.1: who may connect; undefined when no keys or users are configured. */
  auth: Authenticator | undefined;
  /** Replaced when a reload changes max_connection_rate (SEC2.6). */
  private rate: ConnectionRate;
  /** The limits in force; setLimits swaps them on a reload (SEC2.6). */
  private liveLimits: ClientLimits;
  /**
   * SEC4.1: TLS on the client port, when a certificate is configured: a
   * tls.Server that never listens; acceptTls hands it each socket after INFO.
   */
  private readonly tlsServer: tls.Server | undefined;
  /** Sockets handed to tlsServer, by address and port, until their handshake ends. */
  private readonly tlsPending = new Map<
    string,
    { secured: (secure: tls.TLSSocket) => void; failed: (why: string) => void }
  >();
  /** Sockets between accept and the end of their TLS handshake; they count against max_connections. */
  private handshaking = 0;

  constructor(
    readonly options: NodeOptions,
    private readonly log: Logger,
    /** Set by the node: the engine, or the mesh's routing in a cluster. */
    public durable: DurableService | undefined = undefined,
  ) {
    this.tcp = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.auth = options.auth === undefined ? undefined : new Authenticator(options.auth);
    this.liveLimits = clientLimits(options);
    this.rate = new ConnectionRate(options.maxConnectionRate);
    this.tlsServer =
      options.tlsCertFile === undefined ? undefined : this.makeTlsServer(loadSecureContext(options));
  }

  /** Connections read these at each check, never keeping a copy, so a reload reaches them. */
  get limits(): ClientLimits {
    return this.liveLimits;
  }

  get port(): number {
    return this.boundPort;
  }

  get host(): string {
    return this.boundHost;
  }

  get name(): string {
    return this.serverName;
  }

  /** Binds the client port; rejects with StartupError when it cannot. */
  async listen(): Promise<void> {
    const { host, port } = this.options;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        this.tcp.off('listening', onListening);
        if (err.code === 'EADDRINUSE') {
          reject(
            new StartupError(
              'PORT_IN_USE',
              `client port ${host}:${port} is already in use (set client.port / --port)`,
            ),
          );
        } else {
          reject(
            new StartupError(
              'BIND_FAILED',
              `cannot bind client port ${host}:${port}: ${err.code ?? err.message}`,
            ),
          );
        }
      };
      const onListening = (): void => {
        this.tcp.off('error', onError);
        resolve();
      };
      this.tcp.once('error', onError);
      this.tcp.once('listening', onListening);
      this.tcp.listen({ host, port, exclusive: true });
    });
    const addr = this.tcp.address() as net.AddressInfo;
    this.boundHost = addr.address;
    this.boundPort = addr.port;
    this.serverName = this.options.name ?? `${hostname()}:${addr.port}`;
    // C2.1: the INFO every connection gets; client_id and client_ip are added per connection.
    const info = {
      server_id: this.serverId,
      server_name: this.serverName,
      version: VERSION,
      proto: 1,
      host: this.boundHost,
      port: this.boundPort,
      headers: true,
      max_payload: this.limits.maxPayloadBytes,
      cluster: this.options.clusterName,
      // SEC4.1: NATS clients start TLS right after this INFO; tls_verify tells them to bring a certificate.
      ...(this.tlsServer === undefined ? {} : { tls_required: true }),
      ...(this.options.tlsVerify ? { tls_verify: true } : {}),
    };
    this.infoFields = info;
    this.rebuildInfo();
    this.tcp.on('error', (err) => this.log.error({ err: err.message }, 'client listener error'));
  }

  private infoFields: Record<string, unknown> = {};
  /** Set by stopAccepting: the node is leaving, INFO says `ldm` (lame duck mode, as nats-server). */
  private lameDuck = false;
  /** Set by the node in a cluster (M2.5); undefined for a standalone node, whose INFO has neither field. */
  private cluster: ClusterInfo | undefined;

  private rebuildInfo(): void {
    const extra: Record<string, unknown> = {};
    if (this.auth !== undefined) extra.auth_required = true; // SEC2.1
    const c = this.cluster;
    if (c !== undefined) {
      // OPS1.2: a leaving node sends clients elsewhere, so it names itself in neither list.
      const self = `${this.boundHost}:${this.boundPort}`;
      const urls = this.lameDuck ? c.connectUrls.filter((u) => u !== self) : c.connectUrls;
      if (urls.length > 0) extra.connect_urls = urls;
      extra.swarmmq = this.lameDuck ? withoutSelf(c.view) : c.view; // M2.5
    }
    if (this.lameDuck) extra.ldm = true; // OPS1.2: clients move to another node before this one stops
    this.infoBase = JSON.stringify({ ...this.infoFields, ...extra }).slice(0, -1);
    const { swarmmq: _view, ...guest } = extra;
    this.infoBaseGuest = this.viewAfterConnect
      ? JSON.stringify({ ...this.infoFields, ...guest }).slice(0, -1)
      : this.infoBase;
  }

  /**
   * C2.9: peer ids and mesh addresses are for clients that proved who they
   * are: on a node with credentials (SEC2) or TLS (whose first INFO goes in
   * plaintext, SEC4.1), INFO shows the view only after CONNECT.
   */
  get viewAfterConnect(): boolean {
    return this.cluster !== undefined && (this.auth !== undefined || this.tlsServer !== undefined);
  }

  /**
   * SEC2.6: new keys, users and permissions without a restart. Connections
   * whose credential is gone or changed are closed; the others run on with
   * their new permissions (and lose subscriptions those no longer allow).
   */
  reloadAuth(config: AuthConfig | undefined): { closed: number; updated: number } {
    this.auth = config === undefined ? undefined : new Authenticator(config);
    this.rebuildInfo();
    let closed = 0;
    let updated = 0;
    for (const conn of [...this.connections.values()]) {
      if (conn.reauthorize(this.auth)) updated++;
      else closed++;
    }
    return { closed, updated };
  }

  /**
   * M2.5: the cluster's view, set at start and on every view change. INFO
   * carries the members' client addresses as `connect_urls` (stock NATS
   * clients fail over to them) and the ring as `swarmmq` (clients that send
   * to owners directly); connected clients get the new INFO at once, once
   * per change of what it says.
   */
  setClusterView(next: ClusterInfo): void {
    this.cluster = next;
    this.publishInfo();
  }

  /** Rebuilds INFO and resends it to connected clients if it changed (M2.5, OPS1.2). */
  private publishInfo(): void {
    const before = this.infoBase;
    this.rebuildInfo();
    if (this.infoBase === before) return;
    for (const conn of this.connections.values()) if (conn.connected && !conn.closed) conn.resendInfo();
  }

  /**
   * SEC2.6: the limits a reload changed, applied at once. A connection
   * keeps the max_payload its INFO announced; see limits.ts for each key.
   */
  setLimits(next: ClientLimits): void {
    const before = this.liveLimits;
    this.liveLimits = next;
    if (next.maxConnectionRate !== before.maxConnectionRate)
      this.rate = new ConnectionRate(next.maxConnectionRate);
    if (next.maxPayloadBytes !== before.maxPayloadBytes) {
      this.infoFields = { ...this.infoFields, max_payload: next.maxPayloadBytes };
      this.rebuildInfo();
    }
    for (const conn of this.connections.values()) conn.limitsChanged(before);
  }

  /** C2.1; `maxPayloadBytes` is the connection's own, which may predate a reload. */
  infoLine(conn: {
    cid: number;
    socket: ClientSocket;
    maxPayloadBytes?: number;
    connected?: boolean;
  }): string {
    const ip = JSON.stringify(conn.socket.remoteAddress ?? '');
    const mine = conn.maxPayloadBytes ?? this.limits.maxPayloadBytes;
    const overTcp = conn.socket.remotePeer === undefined;
    const full = conn.connected === true ? this.infoBase : this.infoBaseGuest;
    const base = overTcp ? full : this.streamInfoBase(full);
    const line = mine === this.limits.maxPayloadBytes ? base : withPayload(base, mine);
    return `INFO ${line},"client_id":${conn.cid},"client_ip":${ip}}\r\n`;
  }

  /** Stream INFO bases made by streamInfoBase, by the base they were made from (the full and the guest one). */
  private streamInfo = new Map<string, string>();

  /**
   * SEC6.2: INFO on a libp2p client stream offers no TLS (noise encrypts
   * the stream), whatever the client port does. Rebuilt only when INFO changed.
   */
  private streamInfoBase(from: string): string {
    if (this.tlsServer === undefined) return from;
    let base = this.streamInfo.get(from);
    if (base === undefined) {
      const info = JSON.parse(`${from}}`) as Record<string, unknown>;
      delete info.tls_required;
      delete info.tls_verify;
      base = JSON.stringify(info).slice(0, -1);
      if (this.streamInfo.size >= 2) this.streamInfo.clear();
      this.streamInfo.set(from, base);
    }
    return base;
  }

  private accept(socket: net.Socket): void {
    this.acceptSocket(socket, socket.remoteAddress ?? '', this.tlsServer);
  }

  /**
   * A client on a libp2p stream of `/swarmmq/client/1.0.0` (SECURITY.md
   * SEC6): the same checks and connection as a TCP client, never TLS.
   * `rateKey` is what its connection rate is counted by (SEC5.2). Refused
   * (the stream reset) once the node stops accepting clients (OPS1.2).
   */
  acceptStream(socket: ClientSocket, rateKey: string): void {
    if (this.lameDuck || this.shuttingDown) {
      socket.destroy();
      return;
    }
    this.acceptSocket(socket, rateKey, undefined);
  }

  /** Set by close(): streams that still arrive are refused. */
  private shuttingDown = false;

  private acceptSocket(socket: ClientSocket, address: string, tlsServer: tls.Server | undefined): void {
    const cid = this.nextCid++;
    this.totalConnections++;
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    if (!this.rate.admit(address)) {
      // SEC5.2: refused before any work (no TLS, no scrypt), logged at debug: a flood must not flood the log.
      this.log.debug({ cid, address }, 'connection refused: connection rate per address exceeded');
      return this.refuse(cid, socket, CloseReason.ConnectionRateExceeded, closeTexts.connectionRate);
    }
    if (this.connections.size + this.handshaking >= this.limits.maxConnections) {
      // C6.10: INFO first, as nats-server does, so the client can read the -ERR.
      this.log.warn({ cid, max: this.limits.maxConnections }, 'connection refused: too many connections');
      return this.refuse(cid, socket, CloseReason.MaxConnectionsExceeded, closeTexts.maxConnections);
    }
    // Only TCP sockets are given a tlsServer; a libp2p stream never gets TLS (SEC6.2).
    if (tlsServer !== undefined) return this.acceptTls(cid, socket as net.Socket, tlsServer);
    this.admit(cid, socket, false);
  }

  private makeTlsServer(context: tls.SecureContextOptions): tls.Server {
    const verify = this.options.tlsVerify;
    // The certificate's verdict is read below (authorized, authorizationError: tls.Server sets
    // them) rather than left to rejectUnauthorized, so a refusal is logged with its reason.
    const server = new tls.Server({
      ...context,
      requestCert: verify,
      rejectUnauthorized: false,
      handshakeTimeout: this.options.tlsTimeoutMs,
    });
    server.on('secureConnection', (secure: tls.TLSSocket) => {
      const pending = this.tlsPending.get(socketKey(secure));
      if (pending === undefined) return secure.destroy();
      this.tlsPending.delete(socketKey(secure));
      if (verify && !secure.authorized) {
        // SEC4.2. The TLS socket first: destroying the raw one under it inside this event crashes node 20.
        const why = String(secure.authorizationError ?? 'no certificate');
        secure.destroy();
        return pending.failed(`client certificate refused: ${why}`);
      }
      pending.secured(secure);
    });
    server.on('tlsClientError', (err: Error & { code?: string }, secure: tls.TLSSocket) => {
      this.tlsPending.get(socketKey(secure))?.failed(err.code ?? err.message);
      secure.destroy();
    });
    return server;
  }

  private admit(cid: number, socket: ClientSocket, infoSent: boolean): void {
    // One child per connection: every line it logs carries its cid and address (and, after CONNECT, its name);
    // a libp2p client's address is its multiaddr with its peer id (SEC6.4).
    const remote = remoteLabel(socket);
    const conn = new ClientConnection(cid, socket, this, this.log.child({ cid, remote }));
    this.connections.set(cid, conn);
    const transport = socket.remotePeer !== undefined ? 'libp2p' : infoSent ? 'tls' : 'tcp';
    conn.log.debug({ tls: infoSent, transport }, 'connection accepted');
    conn.start(infoSent);
  }

  private refuse(cid: number, socket: ClientSocket, reason: CloseReason, text: string): void {
    socket.write(this.infoLine({ cid, socket }));
    this.count(reason);
    socket.end(`-ERR '${text}'\r\n`);
    setTimeout(() => socket.destroy(), CLOSE_FLUSH_GRACE_MS).unref();
  }

  /**
   * SEC4.1: INFO in plaintext (nats-server 2.9 order), then the client's
   * first byte decides: a TLS handshake record starts it, anything else is a
   * plaintext client and gets `-ERR 'Secure Connection - TLS Required'`.
   * The handshake must finish within tls.timeout.
   */
  private acceptTls(cid: number, socket: net.Socket, tlsServer: tls.Server): void {
    this.handshaking++;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      this.handshaking--;
      clearTimeout(timer);
    };
    const fail = (reason: CloseReason, why: string): void => {
      if (done) return;
      finish();
      this.count(reason);
      this.log.info({ cid, address: socket.remoteAddress, why }, 'TLS connection refused');
      socket.destroy();
    };
    const timer = setTimeout(
      () => fail(CloseReason.TlsHandshakeFailed, 'handshake timeout'),
      this.options.tlsTimeoutMs,
    );
    timer.unref();
    socket.write(this.infoLine({ cid, socket }));
    socket.once('close', () => fail(CloseReason.TlsHandshakeFailed, 'closed during handshake'));
    socket.once('data', (first: Buffer) => {
      socket.pause();
      if (first[0] !== TLS_HANDSHAKE_RECORD) {
        if (done) return;
        finish();
        this.count(CloseReason.TlsRequired);
        socket.end(`-ERR '${closeTexts.tlsRequired}'\r\n`);
        setTimeout(() => socket.destroy(), CLOSE_FLUSH_GRACE_MS).unref();
        return;
      }
      socket.unshift(first);
      this.tlsPending.set(socketKey(socket), {
        secured: (secure) => {
          if (done) return secure.destroy();
          finish();
          this.admit(cid, secure, true);
        },
        failed: (why) => fail(CloseReason.TlsHandshakeFailed, why),
      });
      socket.once('close', () => this.tlsPending.delete(socketKey(socket)));
      // tls.Server does the handshake and, with tls.verify, refuses a client
      // certificate that does not chain to tls.ca_file (SEC4.2).
      tlsServer.emit('connection', socket);
    });
  }

  markDirty(conn: ClientConnection): void {
    this.dirty.add(conn);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushAll);
    }
  }

  overTotalPending(conn: ClientConnection): boolean {
    const max = this.limits.maxTotalPendingBytes;
    const share = max / Math.max(1, this.connections.size);
    if (conn.pendingBytes <= share) return false;
    // Summed at most once per event-loop turn: cheap under bursts, exact enough for a limit.
    if (this.totalPendingTurn !== this.turn) {
      let total = 0;
      for (const c of this.connections.values()) total += c.pendingBytes;
      this.totalPendingCache = total;
      this.totalPendingTurn = this.turn;
    }
    return this.totalPendingCache > max;
  }

  onClosed(conn: ClientConnection, reason: CloseReason): void {
    this.connections.delete(conn.cid);
    this.dirty.delete(conn);
    this.count(reason);
    this.msgsInClosed += conn.msgsIn;
    this.msgsOutClosed += conn.msgsOut;
    const level =
      reason === CloseReason.ClientClosed || reason === CloseReason.ServerShutdown ? 'debug' : 'info';
    conn.log[level]({ reason, msgsIn: conn.msgsIn, msgsOut: conn.msgsOut }, 'connection closed');
  }

  private subjectTokens = 0;
  /** Every open client socket, admitted, refused or in its TLS handshake: a stop ends them all. */
  private readonly sockets = new Set<ClientSocket>();

  reserveSubjectTokens(tokens: number): boolean {
    if (tokens > 0 && this.subjectTokens + tokens > this.limits.maxSubscriptionTokens) return false;
    this.subjectTokens += tokens;
    return true;
  }

  countIn(bytes: number): void {
    this.bytesIn += bytes;
  }

  countOut(bytes: number): void {
    this.bytesOut += bytes;
  }

  countError(kind: ErrorKind): void {
    this.errors[kind] = (this.errors[kind] ?? 0) + 1;
  }

  private count(reason: CloseReason): void {
    this.closes[reason] = (this.closes[reason] ?? 0) + 1;
  }

  stats(): ServerStats {
    return {
      connections: this.connections.size,
      totalConnections: this.totalConnections,
      subscriptions: this.router.subscriptionCount,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      closes: { ...this.closes },
      ...this.messageCounts(),
      errors: { ...this.errors },
    };
  }

  /** One pass over the open connections, when asked (a scrape, /varz), never per message. */
  private messageCounts(): { msgsIn: number; msgsOut: number } {
    let msgsIn = this.msgsInClosed;
    let msgsOut = this.msgsOutClosed;
    for (const c of this.connections.values()) {
      msgsIn += c.msgsIn;
      msgsOut += c.msgsOut;
    }
    return { msgsIn, msgsOut };
  }

  /** stopAccepting has run: the node is on its way out (/readyz says so, OPS1.2). */
  get stopping(): boolean {
    return this.lameDuck;
  }

  /**
   * OPS1.2: the first step of a graceful stop. No new connections; the open
   * ones are told (INFO with `ldm`, and without this node in connect_urls
   * and in the `swarmmq` view) and go on working until close().
   */
  stopAccepting(): void {
    if (this.lameDuck) return;
    this.lameDuck = true;
    this.listenerClosed = new Promise<void>((resolve) => this.tcp.close(() => resolve()));
    this.publishInfo();
  }

  private listenerClosed: Promise<void> | undefined;

  /** Set by drainInput: the node reads no more client input (OPS1.2). */
  draining = false;

  /**
   * OPS1.2: the node has left the mesh and is about to close its clients. It
   * reads nothing more from them, so the sends it has taken can all be answered.
   */
  drainInput(): void {
    this.draining = true;
    for (const conn of this.connections.values()) conn.pauseInput();
  }

  /** Durable sends taken from clients and not yet answered, over all connections (OPS1.2). */
  unansweredSends(): number {
    let n = 0;
    for (const conn of this.connections.values()) n += conn.unansweredSends;
    return n;
  }

  /** Stops accepting, closes every connection (flushing what it can), and waits for the listener. */
  async close(): Promise<void> {
    const closed = this.listenerClosed ?? new Promise<void>((resolve) => this.tcp.close(() => resolve()));
    for (const conn of [...this.connections.values()]) conn.close(CloseReason.ServerShutdown);
    // Closed connections had their grace to read the last bytes; a peer that
    // never closes its side (or a refused one) must not hold the stop.
    this.shuttingDown = true;
    const grace = setTimeout(() => {
      for (const s of this.sockets) s.destroy();
    }, CLOSE_FLUSH_GRACE_MS);
    // The TCP listener's close waits for its sockets; libp2p client streams are waited for here (OPS1.2).
    const streams = [...this.sockets]
      .filter((s) => s.remotePeer !== undefined && !s.closed)
      .map((s) => new Promise<void>((resolve) => s.once('close', () => resolve())));
    await Promise.all([closed, ...streams]);
    clearTimeout(grace);
  }
}

/** OPS1.2: the view of a leaving node, which owns nothing any more (as its own ring says once it has left, OPS1.3). */
function withoutSelf(view: ClusterView): ClusterView {
  const members = view.members.filter((m) => m.id !== view.self);
  return { ...view, members, rf: Math.min(view.rf, members.length) };
}

/** An INFO base with another max_payload: a connection older than a max_payload reload (rare: only INFO resends need it). */
function withPayload(base: string, maxPayloadBytes: number): string {
  const info = JSON.parse(`${base}}`) as Record<string, unknown>;
  return JSON.stringify({ ...info, max_payload: maxPayloadBytes }).slice(0, -1);
}

/** The first byte of every TLS record that starts a handshake (content type 22). */
const TLS_HANDSHAKE_RECORD = 0x16;

/** SEC4.1: TLS 1.3 only, from the configured PEM files; a bad file stops the node. */
function loadSecureContext(o: NodeOptions): tls.SecureContextOptions {
  try {
    const options: tls.SecureContextOptions = {
      minVersion: 'TLSv1.3',
      cert: readFileSync(o.tlsCertFile!),
      key: readFileSync(o.tlsKeyFile!),
      ...(o.tlsCaFile === undefined ? {} : { ca: readFileSync(o.tlsCaFile) }),
    };
    // Made once here so that a bad file or a key that does not match stops the node at start.
    tls.createSecureContext(options);
    return options;
  } catch (err) {
    // The message names the failing step, never key material.
    throw new StartupError('TLS_FAILED', `cannot use the TLS certificate and key: ${(err as Error).message}`);
  }
}

/** A socket's identity while its handshake runs: the TLS socket over it reports the same address and port. */
function socketKey(s: net.Socket): string {
  return `${s.remoteAddress}|${s.remotePort}`;
}

/** A random, nats-like server id: 'N' and 55 base32 characters. */
function newServerId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bytes = randomBytes(55);
  let id = 'N';
  for (const b of bytes) id += alphabet[b & 31];
  return id;
}
