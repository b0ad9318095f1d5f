/**
 * The client side of the wire: a pure, incremental reader of what a node
 * sends (INFO, MSG/HMSG, DMSG, +STORED, +PULLED, PING/PONG, +OK, -ERR and
 * other answer lines). src/protocol/parser.ts reads the other direction
 * (client operations) and cannot read these frames, so this is a second,
 * smaller state machine. No I/O: tested byte by byte without sockets.
 *
 * Limits are checked on the control line before a payload byte is buffered:
 * a line longer than `maxControlLineBytes` or a declared size above
 * `maxPayloadBytes` is a fatal `error` event, after which input is ignored.
 * Payloads are views into the fed chunk when a frame lies in one chunk, and
 * a copy when it straddles chunks: a sink that keeps one copies it.
 */

/** Everything a node sends, one event per complete frame. */
export type ServerOp =
  /** C2.1; `info` is the parsed JSON object. */
  | { readonly kind: 'INFO'; readonly info: Record<string, unknown> }
  /** C5.1/C5.3: `headers` is the raw NATS/1.0 block (undefined for MSG). */
  | {
      readonly kind: 'MSG';
      readonly subject: string;
      readonly sid: string;
      readonly reply: string | undefined;
      readonly headers: Buffer | undefined;
      readonly payload: Buffer;
    }
  /** DURABLE.md D4.1. */
  | {
      readonly kind: 'DMSG';
      readonly destination: string;
      readonly handle: string;
      readonly id: string;
      readonly priority: number;
      readonly deliveries: number;
      readonly timestampMs: number;
      readonly headers: Buffer | undefined;
      readonly payload: Buffer;
    }
  /** D3.1/D3.4. */
  | {
      readonly kind: 'STORED';
      readonly destination: string;
      readonly seq: number;
      readonly id: string;
      readonly duplicate: boolean;
    }
  /** D4.1: the end of a pull. */
  | { readonly kind: 'PULLED'; readonly destination: string; readonly count: number }
  | { readonly kind: 'PING' }
  | { readonly kind: 'PONG' }
  | { readonly kind: 'OK' }
  /** `message` is the text inside the quotes. */
  | { readonly kind: 'ERR'; readonly message: string }
  /** Any other line (+CREATED, DEST, +DESTS, +OWNER, HELP's # lines ...), without its line end. */
  | { readonly kind: 'LINE'; readonly line: string }
  /** Fatal: the stream cannot be read further. */
  | { readonly kind: 'error'; readonly message: string };

export interface ReaderLimits {
  /** Longest line in bytes without its line end; INFO with many connect_urls is the long one. */
  maxControlLineBytes: number;
  /** Largest declared frame body (headers + payload) in bytes. */
  maxPayloadBytes: number;
}

const LF = 10;
const CR = 13;
const EMPTY = Buffer.alloc(0);

interface PendingFrame {
  /** The op to emit, without its body. */
  readonly head: (headers: Buffer | undefined, payload: Buffer) => ServerOp;
  readonly headerBytes: number;
  readonly totalBytes: number;
}

const CONSTANT_OPS: Readonly<Record<string, ServerOp>> = {
  PING: Object.freeze({ kind: 'PING' }),
  PONG: Object.freeze({ kind: 'PONG' }),
  '+OK': Object.freeze({ kind: 'OK' }),
};

export class ServerReader {
  private line: Buffer;
  private lineLen = 0;
  private frame: PendingFrame | undefined;
  /** Body bytes of `frame` (plus its CRLF) when it straddles chunks. */
  private body: Buffer | undefined;
  private filled = 0;
  private dead = false;

  constructor(
    private readonly onOp: (op: ServerOp) => void,
    private limits: ReaderLimits,
  ) {
    this.line = Buffer.allocUnsafe(limits.maxControlLineBytes + 2);
  }

  /** Raises the payload limit (after INFO announces max_payload); takes effect at the next frame. */
  setMaxPayloadBytes(bytes: number): void {
    this.limits = { ...this.limits, maxPayloadBytes: bytes };
  }

  /** Bytes held between calls: bounded by the two limits. */
  get bufferedBytes(): number {
    return this.lineLen + (this.body?.length ?? 0);
  }

  feed(chunk: Buffer): void {
    let pos = 0;
    const len = chunk.length;
    while (pos < len && !this.dead) {
      pos = this.frame === undefined ? this.readLine(chunk, pos, len) : this.readBody(chunk, pos, len);
    }
  }

  private readLine(chunk: Buffer, pos: number, len: number): number {
    const nl = chunk.indexOf(LF, pos);
    const max = this.limits.maxControlLineBytes;
    const end = nl < 0 ? len : nl;
    // One byte over is a CR that is not part of the line.
    if (this.lineLen + (end - pos) > max + 1) {
      this.fail(`a line from the server is longer than ${max} bytes`);
      return len;
    }
    if (nl < 0) {
      chunk.copy(this.line, this.lineLen, pos, len);
      this.lineLen += len - pos;
      return len;
    }
    let line: Buffer;
    if (this.lineLen === 0) {
      line = chunk.subarray(pos, nl);
    } else {
      chunk.copy(this.line, this.lineLen, pos, nl);
      line = this.line.subarray(0, this.lineLen + nl - pos);
      this.lineLen = 0;
    }
    if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
    // UTF-8: names and ids are the UTF-8 bytes of their text (D3.2), and byte
    // counts are ASCII digits, so decoding the whole line first splits the same.
    this.onLine(line.toString('utf8'));
    return nl + 1;
  }

  private readBody(chunk: Buffer, pos: number, len: number): number {
    const f = this.frame!;
    const need = f.totalBytes + 2; // the body and its CRLF
    if (this.body === undefined && len - pos >= need) {
      this.emitFrame(f, chunk.subarray(pos, pos + need));
      return pos + need;
    }
    this.body ??= Buffer.allocUnsafe(need);
    const n = Math.min(len - pos, need - this.filled);
    chunk.copy(this.body, this.filled, pos, pos + n);
    this.filled += n;
    if (this.filled === need) {
      const body = this.body;
      this.body = undefined;
      this.filled = 0;
      this.emitFrame(f, body);
    }
    return pos + n;
  }

  /** `body` is the frame body followed by its CRLF. */
  private emitFrame(f: PendingFrame, body: Buffer): void {
    this.frame = undefined;
    const t = f.totalBytes;
    if (body[t] !== CR || body[t + 1] !== LF) {
      this.fail(`a frame from the server is longer than its declared ${t} bytes`);
      return;
    }
    const headers = f.headerBytes > 0 ? body.subarray(0, f.headerBytes) : undefined;
    this.onOp(f.head(headers, t === f.headerBytes ? EMPTY : body.subarray(f.headerBytes, t)));
  }

  private onLine(line: string): void {
    if (line.length === 0) return;
    const sp = line.indexOf(' ');
    const verb = sp < 0 ? line : line.slice(0, sp);
    const constant = CONSTANT_OPS[verb];
    if (constant !== undefined) return this.onOp(constant);
    const rest = sp < 0 ? '' : line.slice(sp + 1);
    switch (verb) {
      case 'INFO':
        return this.info(rest);
      case '-ERR':
        return this.onOp({ kind: 'ERR', message: unquote(rest.trim()) });
      case 'MSG':
        return this.msg(rest.split(/[ \t]+/), false);
      case 'HMSG':
        return this.msg(rest.split(/[ \t]+/), true);
      case 'DMSG':
        return this.dmsg(rest.split(' '));
      case '+STORED': {
        // +STORED <destination> <seq> <id> [duplicate]
        const a = rest.split(' ');
        const seq = Number(a[1]);
        if (a.length < 3 || !Number.isSafeInteger(seq)) return this.fail(`malformed answer: ${clip(line)}`);
        return this.onOp({
          kind: 'STORED',
          destination: a[0]!,
          seq,
          id: a[2]!,
          duplicate: a[3] === 'duplicate',
        });
      }
      case '+PULLED': {
        const a = rest.split(' ');
        const count = Number(a[1]);
        if (a.length !== 2 || !Number.isSafeInteger(count))
          return this.fail(`malformed answer: ${clip(line)}`);
        return this.onOp({ kind: 'PULLED', destination: a[0]!, count });
      }
      default:
        return this.onOp({ kind: 'LINE', line });
    }
  }

  private info(json: string): void {
    let info: unknown;
    try {
      info = JSON.parse(json);
    } catch {
      // fall through to the check below
    }
    if (typeof info !== 'object' || info === null || Array.isArray(info)) {
      return this.fail('INFO from the server is not a JSON object');
    }
    this.onOp({ kind: 'INFO', info: info as Record<string, unknown> });
  }

  /** MSG <subject> <sid> [reply] <#bytes>; HMSG <subject> <sid> [reply] <#hdr> <#total>. */
  private msg(a: string[], withHeaders: boolean): void {
    const sizes = withHeaders ? 2 : 1;
    if (a.length !== 2 + sizes && a.length !== 3 + sizes) {
      return this.fail(`malformed ${withHeaders ? 'HMSG' : 'MSG'} line`);
    }
    const [subject, sid] = a as [string, string];
    const reply = a.length === 3 + sizes ? a[2] : undefined;
    const total = size(a[a.length - 1]!);
    const hdr = withHeaders ? size(a[a.length - 2]!) : 0;
    this.startFrame(hdr, total, (headers, payload) => ({
      kind: 'MSG',
      subject,
      sid,
      reply,
      headers,
      payload,
    }));
  }

  /** DMSG <destination> <handle> <id> <priority> <deliveries> <timestamp-ms> <#hdr> <#total> (D4.1). */
  private dmsg(a: string[]): void {
    if (a.length !== 8) return this.fail('malformed DMSG line');
    const [destination, handle, id] = a as [string, string, string];
    const priority = Number(a[3]);
    const deliveries = Number(a[4]);
    const timestampMs = Number(a[5]);
    if (![priority, deliveries, timestampMs].every(Number.isSafeInteger)) {
      return this.fail('malformed DMSG line');
    }
    this.startFrame(size(a[6]!), size(a[7]!), (headers, payload) => ({
      kind: 'DMSG',
      destination,
      handle,
      id,
      priority,
      deliveries,
      timestampMs,
      headers,
      payload,
    }));
  }

  private startFrame(headerBytes: number, totalBytes: number, head: PendingFrame['head']): void {
    if (headerBytes < 0 || totalBytes < 0 || headerBytes > totalBytes) {
      return this.fail('malformed frame sizes from the server');
    }
    if (totalBytes > this.limits.maxPayloadBytes) {
      return this.fail(
        `the server sent a ${totalBytes}-byte message, over this client's limit of ${this.limits.maxPayloadBytes}`,
      );
    }
    this.frame = { head, headerBytes, totalBytes };
  }

  private fail(message: string): void {
    this.dead = true;
    this.frame = undefined;
    this.body = undefined;
    this.lineLen = 0;
    this.onOp({ kind: 'error', message });
  }
}

/** `'text'` -> `text` (nats-server wraps -ERR texts in single quotes). */
function unquote(s: string): string {
  return s.length >= 2 && s.startsWith("'") && s.endsWith("'") ? s.slice(1, -1) : s;
}

/** A decimal byte count, or -1. */
function size(s: string): number {
  return /^\d{1,10}$/.test(s) ? Number(s) : -1;
}

function clip(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}...` : s);
}
