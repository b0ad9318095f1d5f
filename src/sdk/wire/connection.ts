/**
 * One protocol connection to one node: core NATS messaging (PUB, HPUB,
 * SUB, request/reply) and the durable verbs (SEND, PULL, ACK/NAK) over TCP,
 * TLS or a libp2p stream (protocol/CLIENT.md, protocol/DURABLE.md,
 * SECURITY.md SEC4.1). The SDK (src/sdk/client.ts) builds its cluster-aware
 * client from these, and the `swarmmq` subcommands use one each. A limit on
 * every byte it buffers and an AbortSignal on every await.
 *
 * This file keeps the connection: connect and handshake, writes, answer
 * matching and close. Core messaging lives in client-core.ts, the durable
 * verbs in client-durable.ts, the public types in client-types.ts.
 *
 * Answers are matched to requests by order, as the protocol allows:
 * - `PONG` answers the oldest `flush()` (C2.6: everything before it has been
 *   handled, so -ERRs for earlier operations have arrived by then);
 * - `+STORED` answers the oldest `send()` (D3.5: in send order);
 * - `DMSG`s and `+PULLED` answer the one `pull()` in flight (one at a time);
 * - a `-ERR` whose text names a publish, subscribe or settle refusal, or
 *   that no send or pull waits for, is kept and rejects the next `flush()`;
 *   any other -ERR rejects the oldest send, else the pull. Do not keep SENDs
 *   and a PULL in flight on one connection at once.
 * A -ERR followed by the connection closing (Authorization Violation, Stale
 * Connection ...) is the reason every pending call is rejected with.
 */
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { CoreMessaging } from './core.js';
import { DurableVerbs } from './durable.js';
import { ClientError, ClientErrorCode, abortError, describeSocketError } from './errors.js';
import { Fifo } from './fifo.js';
import { ServerReader, type ServerOp } from './reader.js';
import {
  awaitSecureConnect,
  connectLine,
  hostPort,
  openSocket,
  startTls,
  type WireSocket,
} from './handshake.js';
import type {
  ClientWire,
  ConnectOptions,
  Delivery,
  Msg,
  PullOptions,
  SendOptions,
  ServerInfo,
  Stored,
  Subscription,
  TlsFiles,
  Waiter,
} from './types.js';

/**
 * INFO lines carry connect_urls and the view of a whole cluster (CLIENT.md
 * C2.9: at most about 850 bytes a member): far longer than a client's own
 * control lines.
 */
export const MAX_LINE_BYTES = 2 * 1024 * 1024;
/** Frame body limit before INFO says max_payload (the node's default). */
const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;
/** Whatever INFO says, no frame larger than this is buffered. */
const MAX_FRAME_BYTES = 64 * 1024 * 1024;
/** `publish()` and `send()` return false past this many unsent bytes: await `drain()`. */
const HIGH_WATER_BYTES = 4 * 1024 * 1024;
/** Unclaimed -ERRs kept for the next flush; a flood of them is one error, not a memory leak. */
const MAX_ASYNC_ERRORS = 16;
/** How long close() lets the socket end politely before destroying it. */
const CLOSE_GRACE_MS = 1000;

const CRLF = Buffer.from('\r\n');
/** -ERRs that answer a PUB, SUB or settle, never a SEND or PULL (CLIENT.md C3.3, C4.2, C4.4, SEC3.3, D4.9). */
const ASYNC_ERR =
  /^(Permissions Violation for (Publish|Subscription)|Invalid (Publish )?Subject|maximum subscriptions|unknown or expired handle)/i;

/** Connects, reads INFO, upgrades to TLS if needed, sends CONNECT and waits for its PONG. */
export async function connect(opts: ConnectOptions): Promise<Client> {
  const where = hostPort(opts.host, opts.port);
  const socket = await openSocket(opts.host, opts.port, where, opts.signal);
  return handshaken(new Client(socket, where, opts.host), opts);
}

/** What connectStream takes: credentials, name and signal; no address, no TLS. */
export type StreamConnectOptions = Omit<ConnectOptions, 'host' | 'port' | 'tls'>;

/**
 * The same handshake as connect() (INFO, CONNECT, PING -> PONG) over a byte
 * stream already open to a node: a libp2p client stream
 * (src/sdk/transport/libp2p.ts, SECURITY.md SEC6). TLS is never attempted
 * on it: noise encrypts it; a node asking for TLS there is refused
 * (ClientError `TLS`). `where` names the node in messages (its multiaddr).
 * The socket is destroyed when the handshake fails.
 */
export function connectStream(
  socket: Duplex,
  where: string,
  opts: StreamConnectOptions = {},
): Promise<Client> {
  return handshaken(new Client(socket, where, undefined), opts);
}

async function handshaken(
  client: Client,
  opts: StreamConnectOptions & Pick<ConnectOptions, 'tls'>,
): Promise<Client> {
  try {
    await client.handshake(opts);
  } catch (err) {
    client.destroy();
    throw err;
  }
  return client;
}

export class Client {
  info: ServerInfo = {};
  /** Called with every INFO after the first (a cluster's view changed, M2.5; a leaving node's `ldm`, OPS1.2). */
  onInfo: ((info: ServerInfo) => void) | undefined;
  /** Resolves once the connection is closed, with why (undefined after close()). */
  readonly closed: Promise<ClientError | undefined>;
  private closedWith: ClientError | undefined;
  private closedByUs = false;
  private resolveClosed!: (e: ClientError | undefined) => void;
  private readonly reader: ServerReader;
  private socketError: Error | undefined;
  private corked = false;
  private infoWaiter: Waiter<void> | undefined;
  /** Waiters for PONGs in PING order; `errors` false for a liveness ping, which leaves -ERRs to the next flush. */
  private readonly pongs = new Fifo<Waiter<void> & { errors: boolean }>();
  private readonly core: CoreMessaging;
  private readonly durable: DurableVerbs;
  private asyncErrors: ClientError[] = [];
  /** The latest -ERR, until anything else arrives: a close right after it is for its reason. */
  private lastErr: ClientError | undefined;

  constructor(
    private socket: WireSocket,
    /** host:port (or a libp2p multiaddr), for messages. */
    readonly where: string,
    /** The host name TLS checks the certificate against; undefined on a libp2p stream, where TLS is never used. */
    private readonly tlsHost: string | undefined,
  ) {
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.reader = new ServerReader((op) => this.onOp(op), {
      maxControlLineBytes: MAX_LINE_BYTES,
      maxPayloadBytes: DEFAULT_MAX_PAYLOAD_BYTES,
    });
    // The helpers get closures, not `this`: the connection internals stay private.
    const wire: ClientWire = {
      wait: (signal, what, start) => this.wait(signal, what, start),
      write: (bytes) => this.write(bytes),
      writeFrame: (line, headers, payload) => this.writeFrame(line, headers, payload),
      checkSize: (bytes) => this.checkSize(bytes),
      flush: (signal) => this.flush(signal),
    };
    this.core = new CoreMessaging(wire);
    this.durable = new DurableVerbs(wire);
    this.attach(socket);
  }

  /** C2.1-C2.6 and SEC4.1: INFO, TLS if needed (never on a libp2p stream, SEC6.2), CONNECT, PING -> PONG. */
  async handshake(opts: StreamConnectOptions & Pick<ConnectOptions, 'tls'>): Promise<void> {
    await this.wait<void>(opts.signal, 'INFO', (w) => (this.infoWaiter = w));
    const info = this.info;
    if (opts.tls !== undefined || info.tls_required === true) {
      if (this.tlsHost === undefined) {
        throw new ClientError(
          ClientErrorCode.Tls,
          `${this.where} asks for TLS on a libp2p stream, where noise encrypts and TLS is not used`,
        );
      }
      if (info.tls_required !== true && info.tls_available !== true) {
        throw new ClientError(ClientErrorCode.Tls, `${this.where} does not offer TLS`);
      }
      await this.upgrade(this.tlsHost, opts, opts.tls ?? {});
    }
    this.write(connectLine(opts));
    try {
      await this.flush(opts.signal);
    } catch (err) {
      // SEC4.2: a node that verifies client certificates drops a client without one after the handshake.
      if (
        info.tls_verify === true &&
        opts.tls?.cert === undefined &&
        (err as ClientError).code === ClientErrorCode.Closed
      ) {
        throw new ClientError(
          ClientErrorCode.Tls,
          `${(err as ClientError).message} (it requires a client certificate, and none was given)`,
        );
      }
      throw err;
    }
  }

  /** True once the connection is closed or lost: writes go nowhere. */
  get isClosed(): boolean {
    return this.closedWith !== undefined;
  }

  /** The largest payload (headers included) the node takes (C1.6). */
  get maxPayloadBytes(): number {
    return typeof this.info.max_payload === 'number' ? this.info.max_payload : DEFAULT_MAX_PAYLOAD_BYTES;
  }

  /** C3.1: PUB or HPUB. Returns false when the outbound buffer is past its mark: await drain(). */
  publish(subject: string, payload: Buffer, opts: { reply?: string; headers?: Buffer } = {}): boolean {
    return this.core.publish(subject, payload, opts);
  }

  /** C4.1: SUB; `max` sends UNSUB <sid> <max> at once (C4.6). */
  subscribe(
    subject: string,
    handler: (m: Msg) => void,
    opts: { queue?: string; max?: number } = {},
  ): Subscription {
    return this.core.subscribe(subject, handler, opts);
  }

  /**
   * C5.6: publishes with a reply subject of its own and resolves with the
   * first reply (buffers copied). No subscriber: NoResponders (C5.4).
   */
  request(
    subject: string,
    payload: Buffer,
    opts: { headers?: Buffer; signal?: AbortSignal } = {},
  ): Promise<Msg> {
    return this.core.request(subject, payload, opts);
  }

  /** D3.1: SEND; resolves with +STORED (synced), rejects with the -ERR. */
  send(destination: string, payload: Buffer, opts: SendOptions = {}, signal?: AbortSignal): Promise<Stored> {
    return this.durable.send(destination, payload, opts, signal);
  }

  /** D4.1: PULL; resolves with the deliveries at +PULLED. One pull at a time per connection. */
  pull(destination: string, group: string, opts: PullOptions, signal?: AbortSignal): Promise<Delivery[]> {
    return this.durable.pull(destination, group, opts, signal);
  }

  /** D4.2-D4.5: settles a delivery. Refusals (a stale handle) reject the next flush(). */
  settle(kind: 'ACK' | 'NAK' | 'WIP' | 'TERM', handle: string, delayMs?: number): void {
    this.durable.settle(kind, handle, delayMs);
  }

  /**
   * C2.6: PING; resolves at its PONG, when the node has handled everything
   * written before. Rejects with a -ERR that came for any of it.
   */
  flush(signal?: AbortSignal): Promise<void> {
    return this.wait<void>(signal, 'PONG', (w) => {
      this.pongs.push(Object.assign(w, { errors: true }));
      this.write(Buffer.from('PING\r\n'));
    });
  }

  /** C2.6: PING for liveness only; resolves at its PONG and never takes a -ERR meant for a flush(). */
  ping(signal?: AbortSignal): Promise<void> {
    return this.wait<void>(signal, 'PONG', (w) => {
      this.pongs.push(Object.assign(w, { errors: false }));
      this.write(Buffer.from('PING\r\n'));
    });
  }

  /** Resolves when the outbound buffer is below its mark (or the connection is gone). */
  async drain(signal?: AbortSignal): Promise<void> {
    if (this.socket.writableLength < HIGH_WATER_BYTES || this.closedWith !== undefined) return;
    const socket = this.socket;
    await this.wait<void>(signal, 'the connection to drain', (w) => {
      const done = (): void => {
        socket.off('drain', done);
        socket.off('close', done);
        w.resolve();
      };
      socket.once('drain', done);
      socket.once('close', done);
    });
  }

  /** Ends the connection; pending calls are rejected. Resolves once the socket is closed. */
  async close(): Promise<void> {
    if (this.closedWith === undefined) {
      this.closedByUs = true;
      this.socket.end();
      const timer = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS);
      await this.closed;
      clearTimeout(timer);
    }
  }

  /** Closes at once. */
  destroy(): void {
    this.closedByUs = true;
    this.socket.destroy();
  }

  // ---- internals ------------------------------------------------------------

  private attach(socket: WireSocket): void {
    socket.setNoDelay?.(true);
    socket.on('data', (chunk: Buffer) => this.reader.feed(chunk));
    socket.on('error', (err) => (this.socketError ??= err));
    socket.on('close', () => this.onClose());
  }

  /** SEC4.1: the TLS handshake starts on the same socket right after INFO (only ever a TCP socket). */
  private async upgrade(host: string, opts: StreamConnectOptions, files: TlsFiles): Promise<void> {
    const secure = startTls(this.socket as net.Socket, host, files);
    this.socket = secure;
    this.attach(secure);
    await this.wait<void>(opts.signal, 'the TLS handshake', (w) => awaitSecureConnect(secure, this.where, w));
  }

  /** A promise for an answer: settled by the reader, the connection's close, or the signal. */
  private wait<T>(signal: AbortSignal | undefined, what: string, start: (w: Waiter<T>) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.closedWith !== undefined) return reject(this.closedWith);
      const doing = `waiting for ${what} from ${this.where}`;
      if (signal?.aborted === true) return reject(abortError(signal, doing));
      const onAbort = (): void => w.reject(abortError(signal!, doing));
      const w: Waiter<T> = {
        settled: false,
        resolve: (v) => {
          if (w.settled) return;
          w.settled = true;
          signal?.removeEventListener('abort', onAbort);
          resolve(v);
        },
        reject: (e) => {
          if (w.settled) return;
          w.settled = true;
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      start(w);
    });
  }

  private checkSize(bytes: number): void {
    if (bytes > this.maxPayloadBytes) {
      throw new ClientError(
        ClientErrorCode.Invalid,
        `a ${bytes}-byte message is over the server's max_payload of ${this.maxPayloadBytes} bytes`,
      );
    }
  }

  /** One buffer per frame; the writes of one tick go out in one syscall (cork until the next tick). */
  private writeFrame(line: string, headers: Buffer | undefined, payload: Buffer): boolean {
    const lineBytes = Buffer.byteLength(line);
    const h = headers?.length ?? 0;
    const frame = Buffer.allocUnsafe(lineBytes + h + payload.length + 2);
    frame.write(line, 0);
    if (h > 0) headers!.copy(frame, lineBytes);
    payload.copy(frame, lineBytes + h);
    CRLF.copy(frame, frame.length - 2);
    return this.write(frame);
  }

  private write(bytes: Buffer): boolean {
    if (this.closedWith !== undefined) return false;
    if (!this.corked) {
      this.corked = true;
      const socket = this.socket;
      socket.cork();
      process.nextTick(() => {
        this.corked = false;
        socket.uncork();
      });
    }
    this.socket.write(bytes);
    return this.socket.writableLength < HIGH_WATER_BYTES;
  }

  private onOp(op: ServerOp): void {
    if (op.kind !== 'ERR') this.lastErr = undefined;
    switch (op.kind) {
      case 'INFO':
        this.info = op.info as ServerInfo;
        this.reader.setMaxPayloadBytes(Math.min(Math.max(this.maxPayloadBytes, 1), MAX_FRAME_BYTES));
        if (this.infoWaiter === undefined) this.onInfo?.(this.info);
        this.infoWaiter?.resolve();
        this.infoWaiter = undefined;
        return;
      case 'MSG':
        return this.core.onMsg(op);
      case 'DMSG':
        return this.durable.onDelivery(op);
      case 'PULLED':
        return this.durable.onPulled();
      case 'STORED':
        return this.durable.onStored(op);
      case 'PONG': {
        const w = this.pongs.shift();
        if (w?.errors === false) return w.resolve();
        const err = this.asyncErrors[0];
        this.asyncErrors = [];
        if (err !== undefined) w?.reject(err);
        else w?.resolve();
        return;
      }
      case 'PING':
        this.write(Buffer.from('PONG\r\n'));
        return;
      case 'ERR':
        return this.onErr(op.message);
      case 'error':
        this.lastErr = new ClientError(ClientErrorCode.Protocol, `${this.where}: ${op.message}`);
        this.socket.destroy();
        return;
      case 'OK':
      case 'LINE':
        return;
    }
  }

  private onErr(text: string): void {
    const err = new ClientError(ClientErrorCode.Server, `-ERR '${text}'`, text);
    this.lastErr = err;
    if (!ASYNC_ERR.test(text) && this.durable.claimErr(err)) return;
    if (this.asyncErrors.length < MAX_ASYNC_ERRORS) this.asyncErrors.push(err);
  }

  private onClose(): void {
    if (this.closedWith !== undefined) return;
    const e = this.socketError;
    const err = this.closedByUs
      ? new ClientError(ClientErrorCode.Closed, `connection to ${this.where} closed`)
      : (this.lastErr ??
        new ClientError(
          ClientErrorCode.Closed,
          e === undefined
            ? `connection to ${this.where} closed by the server`
            : `connection to ${this.where} lost (${describeSocketError(e)})`,
        ));
    this.closedWith = err;
    this.infoWaiter?.reject(err);
    this.durable.failPull(err);
    for (let w = this.pongs.shift(); w !== undefined; w = this.pongs.shift()) w.reject(err);
    this.durable.failSends(err);
    this.core.failRequests(err);
    this.resolveClosed(this.closedByUs ? undefined : err);
  }
}
