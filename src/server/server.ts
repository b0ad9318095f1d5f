/**
 * The client-facing TCP server: accepts connections within the connection
 * limit, sends each its INFO, owns the node-wide router, batches all socket
 * writes of one event-loop turn into one flush per connection, and keeps
 * the counts (connections, closes by reason, bytes and messages).
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { hostname } from 'node:os';
import { CLOSE_FLUSH_GRACE_MS } from '../config/defaults.js';
import type { NodeOptions } from '../config/options.js';
import { CloseReason, closeTexts, StartupError } from '../errors.js';
import type { Logger } from '../log.js';
import { VERSION } from '../version.js';
import { ClientConnection, type ConnectionHost } from './connection.js';
import { Router } from './router.js';
import type { DurableService } from '../durable/service.js';

export interface ServerStats {
  readonly connections: number;
  readonly totalConnections: number;
  readonly subscriptions: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly closes: Readonly<Record<string, number>>;
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
  private infoBase = '';
  private boundHost = '';
  private boundPort = 0;
  private serverName = '';

  constructor(
    readonly options: NodeOptions,
    private readonly log: Logger,
    /** Set by the node: the engine, or the mesh's routing in a cluster. */
    public durable: DurableService | undefined = undefined,
  ) {
    this.tcp = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
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
      max_payload: this.options.maxPayloadBytes,
      cluster: this.options.clusterName,
    };
    this.infoFields = info;
    this.infoBase = JSON.stringify(info).slice(0, -1);
    this.tcp.on('error', (err) => this.log.error({ err: err.message }, 'client listener error'));
  }

  private infoFields: Record<string, unknown> = {};

  /**
   * The client addresses of the live mesh members (M2.5): INFO carries them
   * as `connect_urls`, and connected clients get the new INFO at once, so a
   * stock NATS client knows where to fail over to.
   */
  setConnectUrls(urls: readonly string[]): void {
    this.infoBase = JSON.stringify({ ...this.infoFields, connect_urls: urls }).slice(0, -1);
    for (const conn of this.connections.values()) if (conn.connected && !conn.closed) conn.resendInfo();
  }

  infoLine(conn: ClientConnection): string {
    const ip = JSON.stringify(conn.socket.remoteAddress ?? '');
    return `INFO ${this.infoBase},"client_id":${conn.cid},"client_ip":${ip}}\r\n`;
  }

  private accept(socket: net.Socket): void {
    const cid = this.nextCid++;
    const conn = new ClientConnection(cid, socket, this, this.log.child({ cid }));
    this.totalConnections++;
    if (this.connections.size >= this.options.maxConnections) {
      // C6.10: INFO first, as nats-server does, so the client can read the -ERR.
      this.log.warn({ cid, max: this.options.maxConnections }, 'connection refused: too many connections');
      socket.on('error', () => socket.destroy());
      socket.write(this.infoLine(conn));
      this.count(CloseReason.MaxConnectionsExceeded);
      socket.end(`-ERR '${closeTexts.maxConnections}'\r\n`);
      setTimeout(() => socket.destroy(), CLOSE_FLUSH_GRACE_MS).unref();
      return;
    }
    this.connections.set(cid, conn);
    conn.log.debug({ remote: `${socket.remoteAddress}:${socket.remotePort}` }, 'connection accepted');
    conn.start();
  }

  markDirty(conn: ClientConnection): void {
    this.dirty.add(conn);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushAll);
    }
  }

  overTotalPending(conn: ClientConnection): boolean {
    const max = this.options.maxTotalPendingBytes;
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
    const level =
      reason === CloseReason.ClientClosed || reason === CloseReason.ServerShutdown ? 'debug' : 'info';
    conn.log[level]({ reason, msgsIn: conn.msgsIn, msgsOut: conn.msgsOut }, 'connection closed');
  }

  countIn(bytes: number): void {
    this.bytesIn += bytes;
  }

  countOut(bytes: number): void {
    this.bytesOut += bytes;
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
    };
  }

  /** Stops accepting, closes every connection (flushing what it can), and waits for the listener. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.tcp.close(() => resolve()));
    for (const conn of [...this.connections.values()]) conn.close(CloseReason.ServerShutdown);
    await closed;
  }
}

/** A random, nats-like server id: 'N' and 55 base32 characters. */
function newServerId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bytes = randomBytes(55);
  let id = 'N';
  for (const b of bytes) id += alphabet[b & 31];
  return id;
}
