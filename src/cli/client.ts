/**
 * A small client for the `swarmmq` subcommands: core NATS messaging (PUB,
 * HPUB, SUB, request/reply) and the durable verbs (SEND, PULL, ACK/NAK) over
 * TCP or TLS (protocol/CLIENT.md, protocol/DURABLE.md, SECURITY.md SEC4.1).
 * The full SDK is a later issue; this is just enough for the CLI, with a
 * limit on every byte it buffers and an AbortSignal on every await.
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
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { VERSION } from '../version.js';
import { ClientError, ClientErrorCode, abortError, describeSocketError } from './client-errors.js';
import { ServerReader, type ServerOp } from './client-reader.js';
import { checkDestination, checkId, checkSubject, checkToken, decodeHeaders } from './client-text.js';

/** INFO lines carry connect_urls of a whole cluster: far longer than a client's own control lines. */
const MAX_LINE_BYTES = 64 * 1024;
/** Frame body limit before INFO says max_payload (the node's default). */
const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;
/** Whatever INFO says, no frame larger than this is buffered. */
const MAX_FRAME_BYTES = 64 * 1024 * 1024;
/** `publish()` and `send()` return false past this many unsent bytes: await `drain()`. */
const HIGH_WATER_BYTES = 4 * 1024 * 1024;
/** Unclaimed -ERRs kept for the next flush; a flood of them is one error, not a memory leak. */
const MAX_ASYNC_ERRORS = 16;
/** Requests waiting for replies at once. */
const MAX_PENDING_REQUESTS = 4096;
/** How long close() lets the socket end politely before destroying it. */
const CLOSE_GRACE_MS = 1000;

/** The INFO fields the client uses (C2.1). */
export interface ServerInfo {
  server_id?: string;
  server_name?: string;
  version?: string;
  max_payload?: number;
  auth_required?: boolean;
  tls_required?: boolean;
  tls_available?: boolean;
  tls_verify?: boolean;
  cluster?: string;
  [field: string]: unknown;
}

export interface TlsFiles {
  /** PEM CA bundle to trust instead of the system's. */
  ca?: Buffer;
  /** Client certificate and key for mutual TLS (SEC4.2). */
  cert?: Buffer;
  key?: Buffer;
}

export interface ConnectOptions {
  host: string;
  port: number;
  /** CONNECT auth_token (an API key, SECURITY.md SEC2.1). */
  token?: string;
  user?: string;
  password?: string;
  /**
   * TLS: given, the client insists on it; absent, it upgrades only when INFO
   * says tls_required, trusting the system's CAs.
   */
  tls?: TlsFiles;
  /** CONNECT name; the node stores it as the producer of sent messages (D3.2). */
  name?: string;
  /** Bounds connecting, the TLS handshake and CONNECT; aborting it fails connect(). */
  signal?: AbortSignal;
}

/** A core message. Its buffers are views valid during the callback only: copy what you keep. */
export interface Msg {
  readonly subject: string;
  readonly sid: string;
  readonly reply: string | undefined;
  /** The raw NATS/1.0 header block (C3.1), or undefined. */
  readonly headers: Buffer | undefined;
  readonly payload: Buffer;
}

/** D4.1: one delivery of a pull, as the reader gives it but with buffers copied (safe to keep). */
export type Delivery = Omit<Extract<ServerOp, { kind: 'DMSG' }>, 'kind'>;

/** D3.1: a send's confirmation. */
export interface Stored {
  readonly destination: string;
  readonly seq: number;
  readonly id: string;
  readonly duplicate: boolean;
}

export interface SendOptions {
  id?: string;
  priority?: number;
  ttlMs?: number;
  delayMs?: number;
}

export interface PullOptions {
  /** 1-10000 (D4.7). */
  batch: number;
  /** How long the node waits for a first message (D4.1). */
  waitMs?: number;
}

export interface Subscription {
  readonly sid: string;
  /** C4.5/C4.6: stop now, or after `max` messages in all. */
  unsubscribe(max?: number): void;
}

interface Waiter<T> {
  settled: boolean;
  resolve(v: T): void;
  reject(e: ClientError): void;
}

interface SubEntry {
  handler: (m: Msg) => void;
  max: number;
  received: number;
}

const CRLF = Buffer.from('\r\n');
/** -ERRs that answer a PUB, SUB or settle, never a SEND or PULL (CLIENT.md C3.3, C4.2, C4.4, SEC3.3, D4.9). */
const ASYNC_ERR =
  /^(Permissions Violation for (Publish|Subscription)|Invalid (Publish )?Subject|maximum subscriptions|unknown or expired handle)/i;

/** Connects, reads INFO, upgrades to TLS if needed, sends CONNECT and waits for its PONG. */
export async function connect(opts: ConnectOptions): Promise<Client> {
  const where = hostPort(opts.host, opts.port);
  const socket = await openSocket(opts.host, opts.port, where, opts.signal);
  const client = new Client(socket, where);
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
  /** Resolves once the connection is closed, with why (undefined after close()). */
  readonly closed: Promise<ClientError | undefined>;
  private closedWith: ClientError | undefined;
  private closedByUs = false;
  private resolveClosed!: (e: ClientError | undefined) => void;
  private readonly reader: ServerReader;
  private socketError: Error | undefined;
  private corked = false;
  private infoWaiter: Waiter<void> | undefined;
  private readonly pongs = new Fifo<Waiter<void>>();
  private readonly sends = new Fifo<Waiter<Stored>>();
  private pullWaiter: (Waiter<Delivery[]> & { msgs: Delivery[] }) | undefined;
  private readonly subs = new Map<string, SubEntry>();
  private nextSid = 1;
  private inbox: string | undefined;
  private readonly requests = new Map<string, Waiter<Msg>>();
  private nextRequest = 1;
  private asyncErrors: ClientError[] = [];
  /** The latest -ERR, until anything else arrives: a close right after it is for its reason. */
  private lastErr: ClientError | undefined;

  constructor(
    private socket: net.Socket,
    /** host:port, for messages. */
    readonly where: string,
  ) {
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.reader = new ServerReader((op) => this.onOp(op), {
      maxControlLineBytes: MAX_LINE_BYTES,
      maxPayloadBytes: DEFAULT_MAX_PAYLOAD_BYTES,
    });
    this.attach(socket);
  }

  /** C2.1-C2.6 and SEC4.1: INFO, TLS if needed, CONNECT, PING -> PONG. */
  async handshake(opts: ConnectOptions): Promise<void> {
    await this.wait<void>(opts.signal, 'INFO', (w) => (this.infoWaiter = w));
    const info = this.info;
    if (opts.tls !== undefined || info.tls_required === true) {
      if (info.tls_required !== true && info.tls_available !== true) {
        throw new ClientError(ClientErrorCode.Tls, `${this.where} does not offer TLS`);
      }
      await this.upgrade(opts, opts.tls ?? {});
    }
    const connectFields: Record<string, unknown> = {
      verbose: false,
      pedantic: false,
      headers: true,
      no_responders: true,
      protocol: 1,
      lang: 'swarmmq-cli',
      version: VERSION,
      ...(opts.name === undefined ? {} : { name: opts.name }),
      ...(opts.token === undefined ? {} : { auth_token: opts.token }),
      ...(opts.user === undefined ? {} : { user: opts.user, pass: opts.password ?? '' }),
    };
    this.write(Buffer.from(`CONNECT ${JSON.stringify(connectFields)}\r\n`));
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

  /** The largest payload (headers included) the node takes (C1.6). */
  get maxPayloadBytes(): number {
    return typeof this.info.max_payload === 'number' ? this.info.max_payload : DEFAULT_MAX_PAYLOAD_BYTES;
  }

  /** C3.1: PUB or HPUB. Returns false when the outbound buffer is past its mark: await drain(). */
  publish(subject: string, payload: Buffer, opts: { reply?: string; headers?: Buffer } = {}): boolean {
    checkSubject('subject', subject, false);
    if (opts.reply !== undefined) checkSubject('reply subject', opts.reply, false);
    const h = opts.headers?.length ?? 0;
    this.checkSize(h + payload.length);
    const reply = opts.reply === undefined ? '' : ` ${opts.reply}`;
    const line =
      h === 0
        ? `PUB ${subject}${reply} ${payload.length}\r\n`
        : `HPUB ${subject}${reply} ${h} ${h + payload.length}\r\n`;
    return this.writeFrame(line, h === 0 ? undefined : opts.headers, payload);
  }

  /** C4.1: SUB; `max` sends UNSUB <sid> <max> at once (C4.6). */
  subscribe(
    subject: string,
    handler: (m: Msg) => void,
    opts: { queue?: string; max?: number } = {},
  ): Subscription {
    checkSubject('subject', subject, true);
    if (opts.queue !== undefined) checkToken('queue group', opts.queue);
    const sid = String(this.nextSid++);
    this.subs.set(sid, { handler, max: opts.max ?? 0, received: 0 });
    const queue = opts.queue === undefined ? '' : ` ${opts.queue}`;
    this.write(Buffer.from(`SUB ${subject}${queue} ${sid}\r\n`));
    const unsubscribe = (max?: number): void => {
      const s = this.subs.get(sid);
      if (s === undefined) return;
      if (max === undefined || max <= s.received) this.subs.delete(sid);
      else s.max = max;
      this.write(Buffer.from(max === undefined ? `UNSUB ${sid}\r\n` : `UNSUB ${sid} ${max}\r\n`));
    };
    if (opts.max !== undefined) unsubscribe(opts.max);
    return { sid, unsubscribe };
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
    checkSubject('subject', subject, false);
    this.checkSize((opts.headers?.length ?? 0) + payload.length);
    if (this.requests.size >= MAX_PENDING_REQUESTS) {
      throw new ClientError(ClientErrorCode.Invalid, `more than ${MAX_PENDING_REQUESTS} requests waiting`);
    }
    if (this.inbox === undefined) {
      this.inbox = `_INBOX.${randomBytes(11).toString('hex')}`;
      this.subscribe(`${this.inbox}.*`, (m) => this.onReply(m));
    }
    const token = String(this.nextRequest++);
    const reply = `${this.inbox}.${token}`;
    const answer = this.wait<Msg>(opts.signal, `a reply on "${subject}"`, (w) => {
      this.requests.set(token, w);
      this.publish(subject, payload, { reply, headers: opts.headers });
      // A refused publish gets -ERR and no reply: the PONG behind it carries the refusal.
      this.flush(opts.signal).catch((err: ClientError) => w.reject(err));
    });
    return answer
      .catch((err: ClientError) => {
        if (err.code !== ClientErrorCode.NoResponders) throw err;
        throw new ClientError(err.code, `no responders: nobody is subscribed to ${subject}`);
      })
      .finally(() => this.requests.delete(token));
  }

  /** D3.1: SEND; resolves with +STORED (synced), rejects with the -ERR. */
  send(destination: string, payload: Buffer, opts: SendOptions = {}, signal?: AbortSignal): Promise<Stored> {
    checkDestination(destination);
    this.checkSize(payload.length);
    let line = `SEND ${destination}`;
    if (opts.id !== undefined) {
      checkId(opts.id);
      line += ` id=${opts.id}`;
    }
    if (opts.priority !== undefined) line += ` priority=${opts.priority}`;
    if (opts.ttlMs !== undefined) line += ` ttl=${opts.ttlMs}`;
    if (opts.delayMs !== undefined) line += ` delay=${opts.delayMs}`;
    line += ` ${payload.length}\r\n`;
    return this.wait<Stored>(signal, `+STORED for ${destination}`, (w) => {
      this.sends.push(w);
      this.writeFrame(line, undefined, payload);
    });
  }

  /** D4.1: PULL; resolves with the deliveries at +PULLED. One pull at a time per connection. */
  pull(destination: string, group: string, opts: PullOptions, signal?: AbortSignal): Promise<Delivery[]> {
    checkDestination(destination);
    checkToken('group', group);
    if (this.pullWaiter !== undefined) {
      throw new ClientError(ClientErrorCode.Invalid, 'one PULL at a time on a connection');
    }
    const wait = opts.waitMs === undefined ? '' : ` ${opts.waitMs}`;
    return this.wait<Delivery[]>(signal, `the PULL of ${destination}`, (w) => {
      this.pullWaiter = Object.assign(w, { msgs: [] as Delivery[] });
      this.write(Buffer.from(`PULL ${destination} ${group} ${opts.batch}${wait}\r\n`));
    });
  }

  /** D4.2-D4.5: settles a delivery. Refusals (a stale handle) reject the next flush(). */
  settle(kind: 'ACK' | 'NAK' | 'WIP' | 'TERM', handle: string, delayMs?: number): void {
    checkToken('handle', handle);
    const delay = kind === 'NAK' && delayMs !== undefined ? ` ${delayMs}` : '';
    this.write(Buffer.from(`${kind} ${handle}${delay}\r\n`));
  }

  /**
   * C2.6: PING; resolves at its PONG, when the node has handled everything
   * written before. Rejects with a -ERR that came for any of it.
   */
  flush(signal?: AbortSignal): Promise<void> {
    return this.wait<void>(signal, 'PONG', (w) => {
      this.pongs.push(w);
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

  private attach(socket: net.Socket): void {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.reader.feed(chunk));
    socket.on('error', (err) => (this.socketError ??= err));
    socket.on('close', () => this.onClose());
  }

  /** SEC4.1: the TLS handshake starts on the same socket right after INFO. */
  private async upgrade(opts: ConnectOptions, files: TlsFiles): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    const secure = tls.connect({
      socket: plain,
      host: opts.host,
      // SNI takes a name, not an address (RFC 6066); the certificate is checked against `host` either way.
      ...(net.isIP(opts.host) === 0 ? { servername: opts.host } : {}),
      ...files,
    });
    this.socket = secure;
    this.attach(secure);
    await this.wait<void>(opts.signal, 'the TLS handshake', (w) => {
      secure.once('secureConnect', () => w.resolve());
      secure.once('error', (err) =>
        w.reject(
          new ClientError(
            ClientErrorCode.Tls,
            `TLS handshake with ${this.where} failed (${describeSocketError(err)})`,
          ),
        ),
      );
      secure.once('close', () =>
        w.reject(
          new ClientError(
            ClientErrorCode.Tls,
            `${this.where} closed the connection during the TLS handshake`,
          ),
        ),
      );
    });
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
        this.infoWaiter?.resolve();
        this.infoWaiter = undefined;
        return;
      case 'MSG': {
        const sub = this.subs.get(op.sid);
        if (sub === undefined) return;
        sub.received++;
        if (sub.max > 0 && sub.received >= sub.max) this.subs.delete(op.sid);
        sub.handler(op);
        return;
      }
      case 'DMSG': {
        const p = this.pullWaiter;
        if (p === undefined) return;
        const { kind: _, ...delivery } = op;
        p.msgs.push({
          ...delivery,
          headers: op.headers === undefined ? undefined : Buffer.from(op.headers),
          payload: Buffer.from(op.payload),
        });
        return;
      }
      case 'PULLED': {
        const p = this.pullWaiter;
        this.pullWaiter = undefined;
        p?.resolve(p.msgs);
        return;
      }
      case 'STORED':
        this.sends.shift()?.resolve({
          destination: op.destination,
          seq: op.seq,
          id: op.id,
          duplicate: op.duplicate,
        });
        return;
      case 'PONG': {
        const w = this.pongs.shift();
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
    if (!ASYNC_ERR.test(text)) {
      const send = this.sends.shift();
      if (send !== undefined) return send.reject(err);
      if (this.pullWaiter !== undefined) {
        const p = this.pullWaiter;
        this.pullWaiter = undefined;
        return p.reject(err);
      }
    }
    if (this.asyncErrors.length < MAX_ASYNC_ERRORS) this.asyncErrors.push(err);
  }

  private onReply(m: Msg): void {
    const token = m.subject.slice(this.inbox!.length + 1);
    const w = this.requests.get(token);
    if (w === undefined) return;
    // C5.4: a header-only 503 says nobody was subscribed.
    if (m.payload.length === 0 && m.headers !== undefined && decodeHeaders(m.headers).status === 503) {
      return w.reject(new ClientError(ClientErrorCode.NoResponders, 'no responders'));
    }
    w.resolve({
      subject: m.subject,
      sid: m.sid,
      reply: m.reply,
      headers: m.headers === undefined ? undefined : Buffer.from(m.headers),
      payload: Buffer.from(m.payload),
    });
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
    this.pullWaiter?.reject(err);
    for (let w = this.pongs.shift(); w !== undefined; w = this.pongs.shift()) w.reject(err);
    for (let w = this.sends.shift(); w !== undefined; w = this.sends.shift()) w.reject(err);
    for (const w of this.requests.values()) w.reject(err);
    this.resolveClosed(this.closedByUs ? undefined : err);
  }
}

function openSocket(host: string, port: number, where: string, signal?: AbortSignal): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) return reject(abortError(signal, `connecting to ${where}`));
    const socket = net.connect({ host, port });
    const onAbort = (): void => {
      socket.destroy();
      reject(abortError(signal!, `connecting to ${where}`));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal?.removeEventListener('abort', onAbort);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      signal?.removeEventListener('abort', onAbort);
      reject(
        new ClientError(ClientErrorCode.Connect, `cannot connect to ${where} (${describeSocketError(err)})`),
      );
    });
  });
}

function hostPort(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** A queue with O(1) shift that compacts as it goes. */
class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  push(v: T): void {
    this.items.push(v);
  }

  shift(): T | undefined {
    if (this.head === this.items.length) return undefined;
    const v = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return v;
  }
}
