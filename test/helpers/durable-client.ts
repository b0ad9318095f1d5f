/**
 * A raw-TCP client for the durable verbs (protocol/DURABLE.md), for tests
 * and benchmarks that need thousands of frames: a streaming Buffer parser
 * (no string re-slicing per frame) that routes each answer to whoever waits
 * for it.
 *
 * Routing: `+STORED` answers the oldest pending SEND, `DMSG`... `+PULLED`
 * the oldest pending PULL, `+CREATED`/`+EXISTS` the oldest CREATE, `PONG`
 * the oldest PING. A `-ERR` goes to the oldest pending SEND, else to the
 * oldest PULL or CREATE; an `unknown or expired handle` error (a settle of
 * a stale handle) always goes to `errors` instead. Use one connection for
 * SENDs and another for PULLs when both are in flight at once.
 *
 * No test framework imports: bench/durable.ts uses it too.
 */
import net from 'node:net';

export interface Delivery {
  destination: string;
  handle: string;
  id: string;
  priority: number;
  deliveries: number;
  timestampMs: number;
  headers: Buffer;
  payload: Buffer;
  /** performance.now() when the frame was parsed. */
  receivedAt: number;
}

export interface SendReply {
  ok: boolean;
  seq: number;
  id: string;
  duplicate: boolean;
  /** The -ERR text (without quotes) when refused. */
  error: string | undefined;
}

export interface SendOptions {
  id?: string;
  priority?: number;
  ttl?: string;
  delay?: string;
}

interface Waiter<T> {
  resolve: (v: T) => void;
  reject: (e: Error) => void;
}

interface PullWaiter extends Waiter<Delivery[]> {
  msgs: Delivery[];
}

const CRLF = Buffer.from('\r\n');

export class DurableClient {
  /** -ERR lines nobody waited for (stale handles, ...). */
  readonly errors: string[] = [];
  /** Every line that was neither an answer nor a frame (INFO, +OK, MSG ...). */
  readonly other: string[] = [];
  closed = false;
  /** Called for each SEND answer, in order, before its promise settles. */
  onSendReply: ((r: SendReply) => void) | undefined;
  private buf: Buffer = Buffer.alloc(0);
  private readonly sends: Waiter<SendReply>[] = [];
  private sendHead = 0;
  private readonly pulls: PullWaiter[] = [];
  private readonly creates: Waiter<string>[] = [];
  private readonly pings: Waiter<void>[] = [];
  /** A DMSG whose payload has not fully arrived yet. */
  private frame: { d: Omit<Delivery, 'headers' | 'payload'>; hdr: number; total: number } | undefined;
  private readonly closeWaiters: (() => void)[] = [];

  private constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('close', () => this.onClose(new Error('connection closed')));
    socket.on('error', () => undefined);
  }

  /**
   * Connects, reads INFO and sends a quiet CONNECT; resolves after the PONG.
   * `name` is the CONNECT name, which the node stores as each message's
   * producer (null: none).
   */
  static async connect(
    port: number,
    host = '127.0.0.1',
    name: string | null = 'durable-client',
  ): Promise<DurableClient> {
    const socket = net.connect({ host, port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const c = new DurableClient(socket);
    const opts = { verbose: false, pedantic: false, headers: true, ...(name === null ? {} : { name }) };
    c.write(`CONNECT ${JSON.stringify(opts)}\r\n`);
    await c.ping(10_000);
    return c;
  }

  /** Bytes not yet handed to the kernel (for a bounded writer). */
  get writableLength(): number {
    return this.socket.writableLength;
  }

  /** Pending SENDs (sent, not yet answered). */
  get pendingSends(): number {
    return this.sends.length - this.sendHead;
  }

  write(data: string | Buffer): boolean {
    if (this.closed) return false;
    return this.socket.write(data);
  }

  /** Writes a SEND; the promise settles with +STORED or -ERR (or rejects when the connection dies). */
  send(destination: string, payload: Buffer | string, opts: SendOptions = {}): Promise<SendReply> {
    const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
    let line = `SEND ${destination}`;
    if (opts.id !== undefined) line += ` id=${opts.id}`;
    if (opts.priority !== undefined) line += ` priority=${opts.priority}`;
    if (opts.ttl !== undefined) line += ` ttl=${opts.ttl}`;
    if (opts.delay !== undefined) line += ` delay=${opts.delay}`;
    line += ` ${body.length}\r\n`;
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error('connection closed'));
      this.sends.push({ resolve, reject });
      this.socket.write(Buffer.concat([Buffer.from(line, 'latin1'), body, CRLF]));
    });
  }

  /** PULL; resolves with the batch when +PULLED arrives. */
  pull(destination: string, group: string, batch = 100, wait?: string, extra = ''): Promise<Delivery[]> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error('connection closed'));
      this.pulls.push({ resolve, reject, msgs: [] });
      this.socket.write(
        `PULL ${destination} ${group} ${batch}${wait !== undefined ? ` ${wait}` : ''}${extra}\r\n`,
      );
    });
  }

  /** Writes ACK lines (no answer with verbose off). */
  ack(...handles: string[]): void {
    if (handles.length === 0) return;
    this.write(handles.map((h) => `ACK ${h}\r\n`).join(''));
  }

  nak(handle: string, delay?: string): void {
    this.write(`NAK ${handle}${delay !== undefined ? ` ${delay}` : ''}\r\n`);
  }

  /** CREATE; resolves with `CREATED` or `EXISTS`. */
  create(destination: string, settings = ''): Promise<string> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error('connection closed'));
      this.creates.push({ resolve, reject });
      this.socket.write(`CREATE ${destination}${settings === '' ? '' : ` ${settings}`}\r\n`);
    });
  }

  /** PING/PONG: everything written before it has been read and handled by the node. */
  ping(timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error('connection closed'));
      const timer = setTimeout(() => reject(new Error(`no PONG within ${timeoutMs} ms`)), timeoutMs);
      this.pings.push({
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.socket.write('PING\r\n');
    });
  }

  /** DESTS as raw lines (sent as a PULL-like exchange is not needed: read until +DESTS). */
  async dests(timeoutMs = 10_000): Promise<string[]> {
    const start = this.other.length;
    this.write('DESTS\r\n');
    await this.ping(timeoutMs);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines = this.other.slice(start);
      if (lines.some((l) => l.startsWith('+DESTS'))) return lines.filter((l) => l.startsWith('DEST '));
      if (Date.now() > deadline || this.closed) throw new Error('no +DESTS');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  waitClosed(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((r) => this.closeWaiters.push(r));
  }

  close(): void {
    this.socket.destroy();
  }

  // ---- parsing ------------------------------------------------------------

  private onData(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    let pos = 0;
    const buf = this.buf;
    for (;;) {
      if (this.frame !== undefined) {
        const need = this.frame.total + 2;
        if (buf.length - pos < need) break;
        const f = this.frame;
        this.frame = undefined;
        const start = pos;
        pos += need;
        const msg: Delivery = {
          ...f.d,
          headers: Buffer.from(buf.subarray(start, start + f.hdr)),
          payload: Buffer.from(buf.subarray(start + f.hdr, start + f.total)),
        };
        const p = this.pulls[0];
        if (p !== undefined) p.msgs.push(msg);
        continue;
      }
      const eol = buf.indexOf(CRLF, pos);
      if (eol < 0) break;
      const line = buf.toString('latin1', pos, eol);
      pos = eol + 2;
      this.onLine(line);
    }
    this.buf = pos >= buf.length ? Buffer.alloc(0) : buf.subarray(pos);
  }

  private onLine(line: string): void {
    const sp = line.indexOf(' ');
    const op = sp < 0 ? line : line.slice(0, sp);
    switch (op) {
      case 'DMSG': {
        // DMSG <dest> <handle> <id> <prio> <deliveries> <ts> <#hdr> <#total>
        const f = line.split(' ');
        this.frame = {
          d: {
            destination: f[1]!,
            handle: f[2]!,
            id: f[3]!,
            priority: Number(f[4]),
            deliveries: Number(f[5]),
            timestampMs: Number(f[6]),
            receivedAt: performance.now(),
          },
          hdr: Number(f[7]),
          total: Number(f[8]),
        };
        return;
      }
      case '+STORED': {
        // +STORED <dest> <seq> <id> [duplicate]
        const f = line.split(' ');
        this.answerSend({
          ok: true,
          seq: Number(f[2]),
          id: f[3]!,
          duplicate: f[4] === 'duplicate',
          error: undefined,
        });
        return;
      }
      case '+PULLED': {
        const p = this.pulls.shift();
        p?.resolve(p.msgs);
        return;
      }
      case '+CREATED':
      case '+EXISTS':
        this.creates.shift()?.resolve(op.slice(1));
        return;
      case 'PONG':
        this.pings.shift()?.resolve();
        return;
      case 'PING':
        this.write('PONG\r\n');
        return;
      case '-ERR': {
        const text = line.slice(5).replace(/^'|'$/g, '');
        if (text.startsWith('unknown or expired handle')) {
          this.errors.push(text);
        } else if (this.pendingSends > 0) {
          this.answerSend({ ok: false, seq: 0, id: '', duplicate: false, error: text });
        } else if (this.pulls.length > 0) {
          this.pulls.shift()!.reject(new Error(text));
        } else if (this.creates.length > 0) {
          this.creates.shift()!.reject(new Error(text));
        } else {
          this.errors.push(text);
        }
        return;
      }
      default:
        if (this.other.length < 100_000) this.other.push(line);
    }
  }

  private answerSend(r: SendReply): void {
    const w = this.sends[this.sendHead];
    if (w === undefined) {
      this.other.push(`unexpected send answer ${JSON.stringify(r)}`);
      return;
    }
    this.sends[this.sendHead++] = undefined as unknown as Waiter<SendReply>;
    if (this.sendHead > 4096 && this.sendHead * 2 > this.sends.length) {
      this.sends.splice(0, this.sendHead);
      this.sendHead = 0;
    }
    this.onSendReply?.(r);
    w.resolve(r);
  }

  private onClose(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    for (let i = this.sendHead; i < this.sends.length; i++) this.sends[i]!.reject(err);
    this.sends.length = 0;
    this.sendHead = 0;
    for (const list of [this.pulls, this.creates, this.pings] as Waiter<never>[][]) {
      for (const w of list.splice(0)) w.reject(err);
    }
    for (const w of this.closeWaiters.splice(0)) w();
  }
}

/** Drains a destination for a group: pulls until a pull comes back empty (bounded). */
export async function pullAll(
  c: DurableClient,
  destination: string,
  group: string,
  opts: { batch?: number; ack?: boolean; maxPulls?: number } = {},
): Promise<Delivery[]> {
  const out: Delivery[] = [];
  const maxPulls = opts.maxPulls ?? 10_000;
  for (let i = 0; i < maxPulls; i++) {
    const got = await c.pull(destination, group, opts.batch ?? 10_000);
    if (got.length === 0) return out;
    out.push(...got);
    if (opts.ack === true) c.ack(...got.map((m) => m.handle));
  }
  throw new Error(`pullAll: still getting messages after ${maxPulls} pulls`);
}

export { prng } from './prng.js';
