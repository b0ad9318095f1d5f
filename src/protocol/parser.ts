/**
 * The client protocol parser: a pure, incremental state machine over Buffers
 * (protocol/CLIENT.md section 1). It imports no I/O. It finds control lines
 * with a native byte search, checks every limit on the control line before a
 * byte of payload is buffered (C1.5, C1.6), hands payloads on as views into
 * the fed chunk, and copies only when a line or a payload straddles chunks.
 */
import { protocolErrors, type ProtocolError } from '../errors.js';
import { DURABLE_VERBS, usage, type ClientOp, type DurableVerb, type ParserSink } from './ops.js';

export const ParserState = {
  /** Collecting a control line (possibly part of one is buffered). */
  OpLine: 'OP_LINE',
  /** Collecting the declared number of payload bytes. */
  Payload: 'PAYLOAD',
  /** Payload complete; expecting CR or LF (C1.3). */
  PayloadCR: 'PAYLOAD_CR',
  /** Saw CR after the payload; expecting LF. */
  PayloadLF: 'PAYLOAD_LF',
  /** A fatal error was reported; further input is ignored. */
  Closed: 'CLOSED',
} as const;
export type ParserState = (typeof ParserState)[keyof typeof ParserState];

export interface ParserLimits {
  /** Longest control line in bytes, without its line ending (C1.5). */
  maxControlLineBytes: number;
  /** Largest declared payload in bytes (C1.6). */
  maxPayloadBytes: number;
}

const CR = 13;
const LF = 10;
const SPACE = 32;
const TAB = 9;
const EMPTY = Buffer.alloc(0);
const PING: ClientOp = Object.freeze({ kind: 'PING' });
const PONG: ClientOp = Object.freeze({ kind: 'PONG' });
const OK: ClientOp = Object.freeze({ kind: 'OK' });
const INFO: ClientOp = Object.freeze({ kind: 'INFO' });
const HELP: ClientOp = Object.freeze({ kind: 'HELP' });
/** Most arguments a core verb takes (HPUB: subject, reply, two sizes), plus one to detect excess. */
const MAX_ARGS = 5;
/** Most arguments a durable verb takes (CREATE: name and six options), plus one to detect excess. */
const MAX_DURABLE_ARGS = 9;
/** HSEND takes what SEND does and one size more (D3.9). */
const MAX_HSEND_ARGS = MAX_DURABLE_ARGS + 1;
const DURABLE_SET: ReadonlySet<string> = new Set(DURABLE_VERBS);

type PayloadVerb = 'PUB' | 'HPUB' | 'SEND' | 'HSEND';

interface PendingPub {
  kind: PayloadVerb;
  subject: string;
  reply: string | undefined;
  headerBytes: number;
  options?: string[];
}

export class Parser {
  private stateValue: ParserState = ParserState.OpLine;
  /** Partial control line carried over from earlier chunks. */
  private lineBuf: Buffer;
  private lineLen = 0;
  /** The PUB/HPUB whose payload is being collected. */
  private pub: PendingPub | null = null;
  private need = 0;
  private filled = 0;
  private payloadBuf: Buffer | null = null;
  private payload: Buffer = EMPTY;
  private readonly args: string[] = [];
  /** Token bounds for the byte-level PUB scan. */
  private readonly tokStart = new Int32Array(4);
  private readonly tokEnd = new Int32Array(4);

  constructor(
    private readonly sink: ParserSink,
    private limits: ParserLimits,
  ) {
    // +2 leaves room for the CR of an over-long line to be seen as over-long.
    this.lineBuf = Buffer.allocUnsafe(limits.maxControlLineBytes + 2);
  }

  get state(): ParserState {
    return this.stateValue;
  }

  /** Bytes the parser holds between calls (partial line or payload): bounded by the limits. */
  get bufferedBytes(): number {
    return this.lineLen + (this.payloadBuf === null ? 0 : this.payloadBuf.length);
  }

  /** Applies new limits (config reload); they take effect from the next control line to complete. */
  setLimits(limits: ParserLimits): void {
    this.limits = limits;
    if (this.lineBuf.length < limits.maxControlLineBytes + 2) {
      // Keep a partial line: the rest of it may now be longer than the old buffer holds.
      const buf = Buffer.allocUnsafe(limits.maxControlLineBytes + 2);
      this.lineBuf.copy(buf, 0, 0, this.lineLen);
      this.lineBuf = buf;
    }
  }

  /** Parses one chunk, calling the sink for every complete operation in it. */
  feed(chunk: Buffer): void {
    const len = chunk.length;
    let pos = 0;
    while (pos < len) {
      switch (this.stateValue) {
        case ParserState.OpLine:
          pos = this.opLine(chunk, pos, len);
          break;
        case ParserState.Payload:
          pos = this.payloadBytes(chunk, pos, len);
          break;
        case ParserState.PayloadCR: {
          const b = chunk[pos++];
          if (b === CR) this.stateValue = ParserState.PayloadLF;
          else if (b === LF) this.emitPub();
          else this.fail(protocolErrors.payloadTerminator(this.need));
          break;
        }
        case ParserState.PayloadLF:
          if (chunk[pos++] === LF) this.emitPub();
          else this.fail(protocolErrors.payloadTerminator(this.need));
          break;
        case ParserState.Closed:
          return;
      }
    }
  }

  private opLine(chunk: Buffer, pos: number, len: number): number {
    const nl = chunk.indexOf(LF, pos);
    const max = this.limits.maxControlLineBytes;
    if (nl === -1) {
      const n = len - pos;
      // A line may end in CR, which is not part of it: allow one byte over.
      if (this.lineLen + n > max + 1) {
        this.fail(protocolErrors.maxControlLine());
        return len;
      }
      chunk.copy(this.lineBuf, this.lineLen, pos, len);
      this.lineLen += n;
      return len;
    }
    let line: Buffer;
    if (this.lineLen > 0) {
      const total = this.lineLen + (nl - pos);
      if (total > max + 1) {
        this.fail(protocolErrors.maxControlLine());
        return len;
      }
      chunk.copy(this.lineBuf, this.lineLen, pos, nl);
      line = this.lineBuf.subarray(0, total);
      this.lineLen = 0;
    } else {
      line = chunk.subarray(pos, nl);
    }
    let end = line.length;
    if (end > 0 && line[end - 1] === CR) end--;
    if (end > max) {
      this.fail(protocolErrors.maxControlLine());
      return len;
    }
    this.controlLine(line, end);
    return nl + 1;
  }

  private payloadBytes(chunk: Buffer, pos: number, len: number): number {
    const avail = len - pos;
    if (this.payloadBuf === null && avail >= this.need) {
      // The whole payload is in this chunk: hand on a view, copy nothing.
      this.payload = chunk.subarray(pos, pos + this.need);
      this.stateValue = ParserState.PayloadCR;
      return pos + this.need;
    }
    if (this.payloadBuf === null) this.payloadBuf = Buffer.allocUnsafe(this.need);
    const n = Math.min(avail, this.need - this.filled);
    chunk.copy(this.payloadBuf, this.filled, pos, pos + n);
    this.filled += n;
    if (this.filled === this.need) {
      this.payload = this.payloadBuf;
      this.stateValue = ParserState.PayloadCR;
    }
    return pos + n;
  }

  /** Dispatches one complete control line `line[0, end)` (C1.2: verbs are case-insensitive). */
  private controlLine(line: Buffer, end: number): void {
    let start = 0;
    while (start < end && (line[start] === SPACE || line[start] === TAB)) start++;
    if (start === end) return; // C1.7: empty lines are ignored
    let verbEnd = start;
    while (verbEnd < end && line[verbEnd] !== SPACE && line[verbEnd] !== TAB) verbEnd++;
    // The hot path: PUB is recognised on its bytes (| 0x20 folds case for letters),
    // without making a string of the verb.
    if (
      verbEnd - start === 3 &&
      (line[start]! | 0x20) === 0x70 &&
      (line[start + 1]! | 0x20) === 0x75 &&
      (line[start + 2]! | 0x20) === 0x62
    ) {
      return this.pubLine(line, verbEnd, end);
    }
    const verb = line.toString('latin1', start, verbEnd).toUpperCase();
    switch (verb) {
      case 'PUB':
        return this.pubLine(line, verbEnd, end);
      case 'HPUB':
        return this.hpubLine(line, verbEnd, end);
      case 'SUB':
        return this.subLine(line, verbEnd, end);
      case 'UNSUB':
        return this.unsubLine(line, verbEnd, end);
      case 'PING':
        return this.sink.onOp(PING);
      case 'PONG':
        return this.sink.onOp(PONG);
      case 'CONNECT':
        return this.sink.onOp({ kind: 'CONNECT', json: line.toString('utf8', verbEnd, end).trim() });
      case '+OK':
        return this.sink.onOp(OK);
      case '-ERR':
        return this.sink.onOp({ kind: 'ERR', message: line.toString('utf8', verbEnd, end).trim() });
      case 'INFO':
        return this.sink.onOp(INFO);
      case 'HELP':
        return this.sink.onOp(HELP);
      case 'SEND':
        return this.sendLine(line, verbEnd, end);
      case 'HSEND':
        return this.hsendLine(line, verbEnd, end);
      default:
        if (DURABLE_SET.has(verb)) {
          const n = this.split(line, verbEnd, end, MAX_DURABLE_ARGS);
          return this.sink.onOp({ kind: 'DURABLE', verb: verb as DurableVerb, args: this.args.slice(0, n) });
        }
        return this.error(protocolErrors.unknownOperation(verb));
    }
  }

  /** PUB arguments scanned as bytes: strings only for subject and reply, the size read from its digits. */
  private pubLine(line: Buffer, from: number, end: number): void {
    const ts = this.tokStart;
    const te = this.tokEnd;
    let n = 0;
    let i = from;
    // One token more than PUB takes, so excess is seen.
    while (n < 4) {
      while (i < end && (line[i] === SPACE || line[i] === TAB)) i++;
      if (i === end) break;
      ts[n] = i;
      while (i < end && line[i] !== SPACE && line[i] !== TAB) i++;
      te[n++] = i;
    }
    if (n !== 2 && n !== 3) return this.fail(protocolErrors.badPayloadArguments('PUB', usage.PUB));
    const size = parseSizeBytes(line, ts[n - 1]!, te[n - 1]!);
    if (size < 0) return this.fail(protocolErrors.badPayloadArguments('PUB', usage.PUB));
    if (size > this.limits.maxPayloadBytes) return this.fail(protocolErrors.maxPayload());
    const subject = line.toString('latin1', ts[0], te[0]);
    const reply = n === 3 ? line.toString('latin1', ts[1], te[1]) : undefined;
    this.startPayload('PUB', subject, reply, 0, size);
  }

  private hpubLine(line: Buffer, from: number, end: number): void {
    const n = this.split(line, from, end);
    const a = this.args;
    if (n !== 3 && n !== 4) return this.fail(protocolErrors.badPayloadArguments('HPUB', usage.HPUB));
    const hdr = parseSize(a[n - 2]!);
    const total = parseSize(a[n - 1]!);
    if (hdr < 0 || total < 0 || hdr > total) {
      return this.fail(protocolErrors.badPayloadArguments('HPUB', usage.HPUB));
    }
    if (total > this.limits.maxPayloadBytes) return this.fail(protocolErrors.maxPayload());
    this.startPayload('HPUB', a[0]!, n === 4 ? a[1] : undefined, hdr, total);
  }

  /** D3.1: SEND <destination> [key=value...] <#bytes>, then the payload. */
  private sendLine(line: Buffer, from: number, end: number): void {
    const n = this.split(line, from, end, MAX_DURABLE_ARGS);
    const a = this.args;
    if (n < 2 || n >= MAX_DURABLE_ARGS)
      return this.fail(protocolErrors.badPayloadArguments('SEND', usage.SEND));
    const size = parseSize(a[n - 1]!);
    if (size < 0) return this.fail(protocolErrors.badPayloadArguments('SEND', usage.SEND));
    if (size > this.limits.maxPayloadBytes) return this.fail(protocolErrors.maxPayload());
    this.startPayload('SEND', a[0]!, undefined, 0, size);
    this.pub!.options = a.slice(1, n - 1);
  }

  /**
   * D3.9: HSEND <destination> [key=value...] <#header-bytes> <#total-bytes>,
   * then headers and payload; sizes checked as HPUB's (C3.2, C1.6).
   */
  private hsendLine(line: Buffer, from: number, end: number): void {
    const n = this.split(line, from, end, MAX_HSEND_ARGS);
    const a = this.args;
    if (n < 3 || n >= MAX_HSEND_ARGS)
      return this.fail(protocolErrors.badPayloadArguments('HSEND', usage.HSEND));
    const hdr = parseSize(a[n - 2]!);
    const total = parseSize(a[n - 1]!);
    if (hdr < 0 || total < 0 || hdr > total) {
      return this.fail(protocolErrors.badPayloadArguments('HSEND', usage.HSEND));
    }
    if (total > this.limits.maxPayloadBytes) return this.fail(protocolErrors.maxPayload());
    this.startPayload('HSEND', a[0]!, undefined, hdr, total);
    this.pub!.options = a.slice(1, n - 2);
  }

  private subLine(line: Buffer, from: number, end: number): void {
    const n = this.split(line, from, end);
    const a = this.args;
    if (n !== 2 && n !== 3) return this.error(protocolErrors.badArguments('SUB', usage.SUB));
    this.sink.onOp({ kind: 'SUB', subject: a[0]!, queue: n === 3 ? a[1] : undefined, sid: a[n - 1]! });
  }

  private unsubLine(line: Buffer, from: number, end: number): void {
    const n = this.split(line, from, end);
    const a = this.args;
    if (n !== 1 && n !== 2) return this.error(protocolErrors.badArguments('UNSUB', usage.UNSUB));
    let max: number | undefined;
    if (n === 2) {
      max = parseSize(a[1]!);
      if (max < 0) return this.error(protocolErrors.badArguments('UNSUB', usage.UNSUB));
    }
    this.sink.onOp({ kind: 'UNSUB', sid: a[0]!, max });
  }

  private startPayload(
    kind: PayloadVerb,
    subject: string,
    reply: string | undefined,
    headerBytes: number,
    size: number,
  ): void {
    this.pub = { kind, subject, reply, headerBytes };
    this.need = size;
    this.filled = 0;
    this.payloadBuf = null;
    if (size === 0) {
      this.payload = EMPTY;
      this.stateValue = ParserState.PayloadCR;
    } else {
      this.stateValue = ParserState.Payload;
    }
  }

  private emitPub(): void {
    const pub = this.pub!;
    const body = this.payload;
    this.pub = null;
    this.payloadBuf = null;
    this.payload = EMPTY;
    this.stateValue = ParserState.OpLine;
    if (pub.kind === 'PUB') {
      this.sink.onOp({ kind: 'PUB', subject: pub.subject, reply: pub.reply, payload: body });
    } else if (pub.kind === 'SEND') {
      this.sink.onOp({ kind: 'SEND', destination: pub.subject, options: pub.options ?? [], payload: body });
    } else if (pub.kind === 'HSEND') {
      this.sink.onOp({
        kind: 'HSEND',
        destination: pub.subject,
        options: pub.options ?? [],
        headers: body.subarray(0, pub.headerBytes),
        payload: body.subarray(pub.headerBytes),
      });
    } else {
      this.sink.onOp({
        kind: 'HPUB',
        subject: pub.subject,
        reply: pub.reply,
        headers: body.subarray(0, pub.headerBytes),
        payload: body.subarray(pub.headerBytes),
      });
    }
  }

  /**
   * Splits `line[from, end)` on runs of spaces and tabs into `this.args`
   * (latin1, so any byte round-trips unchanged to MSG lines). Returns the
   * count, which reaches `maxArgs` when there are too many.
   */
  private split(line: Buffer, from: number, end: number, maxArgs = MAX_ARGS): number {
    const a = this.args;
    a.length = 0;
    let i = from;
    while (i < end && a.length < maxArgs) {
      while (i < end && (line[i] === SPACE || line[i] === TAB)) i++;
      if (i === end) break;
      const s = i;
      while (i < end && line[i] !== SPACE && line[i] !== TAB) i++;
      a.push(line.toString('latin1', s, i));
    }
    return a.length;
  }

  private error(err: ProtocolError): void {
    this.sink.onOp({ kind: 'error', error: err });
  }

  private fail(err: ProtocolError): void {
    this.stateValue = ParserState.Closed;
    this.lineLen = 0;
    this.payloadBuf = null;
    this.pub = null;
    this.sink.onOp({ kind: 'error', error: err });
  }
}

/** parseSize over `b[start, end)` without making a string. */
function parseSizeBytes(b: Buffer, start: number, end: number): number {
  const n = end - start;
  if (n === 0 || n > 10) return -1;
  let v = 0;
  for (let i = start; i < end; i++) {
    const d = b[i]! - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/** Parses a decimal byte count; -1 if it is not one (only digits, at most 10 of them). */
export function parseSize(s: string): number {
  const n = s.length;
  if (n === 0 || n > 10) return -1;
  let v = 0;
  for (let i = 0; i < n; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}
