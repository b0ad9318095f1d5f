/**
 * One connection's durable verbs (protocol/DURABLE.md sections 3-5): SEND
 * and HSEND with confirmations in send order, PULL with its DMSG frames,
 * the settle verbs, CREATE and DESTS; and the stock-client path, where a
 * PUB to an existing destination is stored and answered like a JetStream
 * publish.
 */
import { setMaxListeners } from 'node:events';
import { MAX_PULL_BATCH, MAX_PULL_WAIT_MS } from '../config/defaults.js';
import { parseBytes, parseDurationMs } from '../config/units.js';
import type { DestinationRight } from '../auth/permissions.js';
import { handleDestination } from '../durable/names.js';
import { DurableError, DurableErrorCode, permissionTexts, type ErrorKind } from '../errors.js';
import type { Logger } from '../log.js';
import { usage, type DurableVerb } from '../protocol/ops.js';
import type { Delivery, SendRequest, SendResult } from '../durable/engine.js';
import type { DurableService, SettleKind } from '../durable/service.js';
import type { DestinationSettings } from '../durable/model.js';
import type { DestinationInfo } from '../durable/types.js';

/** What the session needs from its connection. */
export interface SessionConnection {
  readonly closed: boolean;
  readonly log: Logger;
  /** The client's CONNECT name, used as producer id. */
  readonly clientName: string | undefined;
  writeLatin1(s: string): void;
  writeUtf8(s: string): void;
  writeBytes(b: Buffer): void;
  /** Writes `-ERR '<text>'` and counts it as `kind` (METRICS.md MT2.1). */
  sendErr(text: string, kind: ErrorKind): void;
  /** Counts an error the session answers some other way (an -ERR line of its own, a JSON publish ack). */
  countError(kind: ErrorKind): void;
  /** MSG, HMSG and DMSG frames written to the client (metrics: messages out). */
  msgsOut: number;
  ok(): void;
  /** Stop and restart reading from the socket (send backpressure, D3.6). */
  pauseInput(): void;
  resumeInput(): void;
  /** Delivers a core message (the JSON publish ack) to a reply subject. */
  publishCore(subject: string, payload: Buffer): void;
  /** SEC3.4: whether the client's key or user holds `right` on `destination`. */
  mayUse(right: DestinationRight, destination: string): boolean;
}

const RIGHTS: readonly DestinationRight[] = ['send', 'pull', 'admin'];

/** Timings for metrics (src/metrics, protocol/METRICS.md MT3); undefined when none are kept. */
export interface SessionObserver {
  /** A SEND or a PUB to a destination was confirmed `ms` after it arrived (D3.1, D3.7). */
  confirmed(ms: number): void;
  /** A message was handed to a consumer for the first time, `ageMs` after its stored timestamp. */
  delivered(ageMs: number): void;
}

/** Sends a connection may have waiting for their sync before it stops reading (D3.6). */
const MAX_PENDING_SENDS = 1024;
/** Payload bytes of a connection's sends awaiting their sync before it stops reading (D3.6). */
const MAX_PENDING_SEND_BYTES = 8 * 1024 * 1024;
/** Pulls a connection may have waiting at once (D4.7). */
const MAX_WAITING_PULLS = 64;

interface Slot {
  text: string | undefined;
}

export class DurableSession {
  private readonly replies: Slot[] = [];
  private pendingSends = 0;
  private pendingSendBytes = 0;
  private paused = false;
  private waitingPulls = 0;
  private readonly abort = new AbortController();
  /** Settles when every SEND so far has (D3.5: later PULL, CREATE and DESTS see them). */
  private sendsSettled: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly conn: SessionConnection,
    private readonly engine: DurableService,
    private readonly defaultBatch: number,
    private readonly observer: SessionObserver | undefined = undefined,
  ) {
    // Each waiting PULL listens on the signal; D4.7 allows 64 (Node warns past 10).
    setMaxListeners(MAX_WAITING_PULLS + 1, this.abort.signal);
  }

  /** Sends taken from this client and not yet answered (a graceful stop waits for them, OPS1.2). */
  get unansweredSends(): number {
    return this.pendingSends;
  }

  /**
   * D3.1: SEND, and HSEND with `headers` (D3.9); the answer (+STORED or
   * -ERR) is written in send order.
   */
  send(destination: string, options: readonly string[], payload: Buffer, headers?: Buffer): void {
    const arrivedMs = this.observer === undefined ? 0 : performance.now();
    const slot: Slot = { text: undefined };
    this.replies.push(slot);
    let req: SendRequest;
    try {
      this.permit('send', destination);
      const parsed = parseSendOptions(options);
      // An empty block (`HSEND q 0 <n>`) is stored as no headers: a DMSG shows 0 header bytes either way.
      const h = headers === undefined || headers.length === 0 ? undefined : headers;
      // D3.9: without id=, a Nats-Msg-Id header names the message, as for a stock client's publish (D3.7).
      const id = parsed.id ?? (h === undefined ? undefined : msgIdHeader(h));
      req = { destination, payload, producer: this.conn.clientName, ...parsed, id, headers: h };
    } catch (err) {
      slot.text = errLine(err, this.conn);
      this.flushReplies();
      return;
    }
    this.track(this.engine.send(req), payload.length + (req.headers?.length ?? 0)).then(
      (r) => {
        slot.text = `+STORED ${r.destination} ${r.seq} ${wireId(r.id)}${r.duplicate ? ' duplicate' : ''}\r\n`;
        this.observer?.confirmed(performance.now() - arrivedMs);
        this.flushReplies();
      },
      (err: unknown) => {
        slot.text = errLine(err, this.conn);
        this.flushReplies();
      },
    );
  }

  /**
   * D3.7: a core PUB to an existing destination is stored; a reply subject
   * gets a JetStream-shaped JSON ack. Returns true when the subject is a
   * destination (so no-responders does not apply).
   */
  storeFromPub(
    subject: string,
    reply: string | undefined,
    headers: Buffer | undefined,
    payload: Buffer,
  ): boolean {
    if (!this.engine.isDestination(subject)) return false;
    if (!this.conn.mayUse('send', subject)) {
      this.conn.sendErr(permissionTexts.send(subject), DurableErrorCode.PermissionDenied);
      return true;
    }
    const arrivedMs = this.observer === undefined ? 0 : performance.now();
    const id = headers === undefined ? undefined : msgIdHeader(headers);
    const req: SendRequest = { destination: subject, id, headers, payload, producer: this.conn.clientName };
    this.track(this.engine.send(req), payload.length + (req.headers?.length ?? 0)).then(
      (r) => {
        this.observer?.confirmed(performance.now() - arrivedMs);
        if (reply !== undefined) this.conn.publishCore(reply, Buffer.from(pubAck(r)));
      },
      (err: unknown) => {
        this.conn.countError(err instanceof DurableError ? err.code : 'INTERNAL');
        // Per message, so trace: a full destination must not flood the log; the
        // engine logs a storage failure once per batch, at error.
        this.conn.log.trace(
          { destination: subject, err: (err as Error).message },
          'PUB to destination not stored',
        );
        if (reply !== undefined) {
          const code =
            err instanceof DurableError && err.code !== DurableErrorCode.StorageFailure ? 400 : 503;
          const json = JSON.stringify({ error: { code, description: (err as Error).message } });
          this.conn.publishCore(reply, Buffer.from(json));
        }
      },
    );
    return true;
  }

  /** The payload-less durable verbs. */
  verb(verb: DurableVerb, args: readonly string[]): void {
    if (this.pendingSends > 0 && (verb === 'PULL' || verb === 'CREATE' || verb === 'DESTS')) {
      void this.sendsSettled.then(() => {
        if (!this.conn.closed) this.verbNow(verb, args);
      });
      return;
    }
    this.verbNow(verb, args);
  }

  private verbNow(verb: DurableVerb, args: readonly string[]): void {
    try {
      switch (verb) {
        case 'PULL':
          return this.pull(args);
        case 'ACK':
          return this.settle('ack', this.permitHandle(handleArg(verb, args, 1)));
        case 'NAK': {
          const handle = this.permitHandle(handleArg(verb, args, 2));
          return this.settle('nak', handle, args.length > 1 ? duration(args[1]!, 'delay') : 0);
        }
        case 'WIP':
          return this.settle('wip', this.permitHandle(handleArg(verb, args, 1)));
        case 'TERM':
          return this.settle('term', this.permitHandle(handleArg(verb, args, 1)));
        case 'CREATE':
          if (args[0] !== undefined) this.permit('admin', args[0]);
          return this.create(args);
        case 'DESTS':
          return this.dests();
        case 'OWNER':
          return this.owner(args);
        case 'DROP': {
          // D7.3
          if (args.length !== 2) throw usageError('DROP');
          this.permit('admin', args[0]!);
          const line = `+DROPPED ${args[0]!} ${args[1]!}\r\n`;
          return this.answer(this.engine.dropGroup(args[0]!, args[1]!), () => this.conn.writeLatin1(line));
        }
      }
    } catch (err) {
      this.conn.writeUtf8(errLine(err, this.conn));
    }
  }

  private pull(args: readonly string[]): void {
    const positional = args.filter((a) => !a.includes('='));
    const named = parseNamed(
      args.filter((a) => a.includes('=')),
      { ack_timeout: 'duration' },
      'PULL',
    );
    // args.length: the parser passes one argument more than any verb takes, so excess shows.
    if (positional.length < 2 || positional.length > 4 || args.length > 5) throw usageError('PULL');
    const [destination, group, batchArg, waitArg] = positional as [string, string, string?, string?];
    this.permit('pull', destination);
    const batch = batchArg === undefined ? this.defaultBatch : Number(batchArg);
    if (!Number.isInteger(batch) || batch < 1 || batch > MAX_PULL_BATCH) {
      throw new DurableError(DurableErrorCode.InvalidOption, `PULL batch must be 1-${MAX_PULL_BATCH}`);
    }
    const waitMs = waitArg === undefined ? 0 : duration(waitArg, 'wait');
    if (waitMs > MAX_PULL_WAIT_MS) {
      throw new DurableError(
        DurableErrorCode.InvalidOption,
        `PULL wait must be at most ${MAX_PULL_WAIT_MS} ms`,
      );
    }
    if (this.waitingPulls >= MAX_WAITING_PULLS) {
      throw new DurableError(
        DurableErrorCode.InvalidOption,
        `too many PULLs waiting on this connection (max ${MAX_WAITING_PULLS})`,
      );
    }
    this.waitingPulls++;
    const req = {
      destination,
      group,
      max: batch,
      waitMs,
      ackTimeoutMs: named.ack_timeout as number | undefined,
      signal: this.abort.signal,
    };
    this.engine.pull(req).then(
      (msgs) => {
        this.waitingPulls--;
        this.writeDeliveries(destination, msgs);
      },
      (err: unknown) => {
        this.waitingPulls--;
        if (!this.conn.closed) this.conn.writeUtf8(errLine(err, this.conn));
      },
    );
  }

  /** D4.1: one DMSG per message, then +PULLED with the count. */
  private writeDeliveries(destination: string, msgs: Delivery[]): void {
    if (this.conn.closed) return; // they come back at their ack deadline (D4.6)
    const nowMs = Date.now();
    this.conn.msgsOut += msgs.length;
    for (const m of msgs) {
      // First deliveries only: a redelivery's age is mostly its ack timeout, not latency.
      if (m.deliveries === 1) this.observer?.delivered(nowMs - m.timestampMs);
      const h = m.headers?.length ?? 0;
      this.conn.writeLatin1(
        `DMSG ${m.destination} ${m.handle} ${wireId(m.id)} ${m.priority} ${m.deliveries} ${m.timestampMs} ${h} ${h + m.payload.length}\r\n`,
      );
      if (h > 0) this.conn.writeBytes(m.headers!);
      this.conn.writeBytes(m.payload);
      this.conn.writeLatin1('\r\n');
    }
    this.conn.writeLatin1(`+PULLED ${destination} ${msgs.length}\r\n`);
  }

  private create(args: readonly string[]): void {
    const [name, ...rest] = args;
    if (name === undefined || name.includes('=') || rest.length > 6) throw usageError('CREATE');
    const named = parseNamed(
      rest,
      {
        ttl: 'duration',
        max_msgs: 'count',
        max_bytes: 'bytes',
        max_deliveries: 'count',
        ack_timeout: 'duration',
        dead_letter_expired: 'bool',
      },
      'CREATE',
    );
    const settings: Partial<DestinationSettings> = {};
    const s = settings as Record<string, unknown>;
    if (named.ttl !== undefined) s.defaultTtlMs = named.ttl;
    if (named.max_msgs !== undefined) s.maxMsgs = named.max_msgs;
    if (named.max_bytes !== undefined) s.maxBytes = named.max_bytes;
    if (named.max_deliveries !== undefined) s.maxDeliveries = named.max_deliveries;
    if (named.ack_timeout !== undefined) s.ackTimeoutMs = named.ack_timeout;
    if (named.dead_letter_expired !== undefined) s.deadLetterExpired = named.dead_letter_expired;
    this.engine.ensureDestination(name, settings).then(
      (created) => {
        if (!this.conn.closed) this.conn.writeLatin1(`+${created ? 'CREATED' : 'EXISTS'} ${name}\r\n`);
      },
      (err: unknown) => {
        if (!this.conn.closed) this.conn.writeUtf8(errLine(err, this.conn));
      },
    );
  }

  /** M3.3: `+OWNER <destination> <owner-id> <owner-client> <replica-id>,...` (`-` for none). */
  private owner(args: readonly string[]): void {
    if (args.length !== 1) throw usageError('OWNER');
    const places = this.engine.placement?.(args[0]!) ?? [];
    if (places.length === 0) {
      // A standalone node owns everything it stores.
      this.conn.writeLatin1(`+OWNER ${args[0]!} local - -\r\n`);
      return;
    }
    const [owner, ...replicas] = places;
    const rest = replicas.length === 0 ? '-' : replicas.map((r) => r.id).join(',');
    this.conn.writeLatin1(`+OWNER ${args[0]!} ${owner!.id} ${owner!.client} ${rest}\r\n`);
  }

  /** SEC3.4: throws the permission error when the client lacks `right` on `destination`. */
  private permit(right: DestinationRight, destination: string): void {
    if (this.conn.mayUse(right, destination)) return;
    throw new DurableError(DurableErrorCode.PermissionDenied, permissionTexts[right](destination));
  }

  /** SEC3.4: settling a delivery takes the pull right on its destination. */
  private permitHandle(handle: string): string {
    const destination = handleDestination(handle);
    if (destination !== undefined) this.permit('pull', destination);
    return handle;
  }

  /** Settles now when the engine is local, or once the owner answers (through the mesh). */
  private settle(kind: SettleKind, handle: string, delayMs?: number): void {
    this.answer(this.engine.settle(kind, handle, delayMs), () => this.conn.ok());
  }

  /** Runs `then` after a result that may be a promise; a rejection becomes -ERR. */
  private answer<T>(result: T | Promise<T>, then: (v: T) => void): void {
    if (!(result instanceof Promise)) return then(result);
    result.then(
      (v) => {
        if (!this.conn.closed) then(v);
      },
      (err: unknown) => {
        if (!this.conn.closed) this.conn.writeUtf8(errLine(err, this.conn));
      },
    );
  }

  /** D7.2: one DEST line per destination, then +DESTS with the count. */
  private dests(): void {
    this.answer(this.engine.list(), (list) => this.writeDests(list));
  }

  private writeDests(all: DestinationInfo[]): void {
    // SEC3.4: a client sees the destinations it holds some right on.
    const list = all.filter((d) => RIGHTS.some((r) => this.conn.mayUse(r, d.name)));
    for (const d of list) {
      const groups = d.groups.map((g) => `${g.name}:${g.pending}/${g.inFlight}/${g.acked}`).join(',');
      this.conn.writeLatin1(
        `DEST ${d.name} depth=${d.depth} bytes=${d.bytes} last_seq=${d.lastSeq} groups=${groups === '' ? '-' : groups}\r\n`,
      );
    }
    this.conn.writeLatin1(`+DESTS ${list.length}\r\n`);
  }

  /** Counts a send until it settles, pausing input past the limit. */
  private track<T>(p: Promise<T>, bytes: number): Promise<T> {
    this.sendsSettled = Promise.allSettled([this.sendsSettled, p]);
    this.pendingSends++;
    this.pendingSendBytes += bytes;
    if (
      !this.paused &&
      (this.pendingSends >= MAX_PENDING_SENDS || this.pendingSendBytes >= MAX_PENDING_SEND_BYTES)
    ) {
      this.paused = true;
      this.conn.pauseInput();
    }
    const settle = (): void => {
      this.pendingSends--;
      this.pendingSendBytes -= bytes;
      if (
        this.paused &&
        this.pendingSends <= MAX_PENDING_SENDS / 2 &&
        this.pendingSendBytes <= MAX_PENDING_SEND_BYTES / 2
      ) {
        this.paused = false;
        this.conn.resumeInput();
      }
    };
    p.then(settle, settle);
    return p;
  }

  private flushReplies(): void {
    while (this.replies.length > 0 && this.replies[0]!.text !== undefined) {
      const text = this.replies.shift()!.text!;
      // +STORED lines are byte strings (latin1: names and ids as the client sent them); -ERR texts are UTF-8.
      if (!this.conn.closed) {
        if (text.startsWith('+')) this.conn.writeLatin1(text);
        else this.conn.writeUtf8(text);
      }
    }
  }

  /** The connection closed: waiting pulls end (their taken messages come back at the ack deadline). */
  close(): void {
    this.abort.abort();
  }
}

function parseSendOptions(options: readonly string[]): Partial<SendRequest> {
  const named = parseNamed(
    options,
    { id: 'string', priority: 'count', ttl: 'duration', delay: 'duration' },
    'SEND',
  );
  return {
    // The id arrives as a byte string (latin1, as the parser gives every
    // argument); ids are UTF-8 text, as Nats-Msg-Id headers are (msgIdHeader).
    id: named.id === undefined ? undefined : Buffer.from(named.id as string, 'latin1').toString('utf8'),
    priority: named.priority as number | undefined,
    ttlMs: named.ttl as number | undefined,
    delayMs: named.delay as number | undefined,
  };
}

type Kind = 'string' | 'count' | 'duration' | 'bool' | 'bytes';

function parseNamed(
  args: readonly string[],
  known: Record<string, Kind>,
  verb: keyof typeof usage,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const a of args) {
    const eq = a.indexOf('=');
    const k = eq < 0 ? a : a.slice(0, eq).toLowerCase();
    const v = eq < 0 ? '' : a.slice(eq + 1);
    const kind = known[k];
    if (eq < 0 || kind === undefined) {
      throw new DurableError(
        DurableErrorCode.InvalidOption,
        `unknown ${verb} option "${a.slice(0, 40)}", expected: ${usage[verb]}`,
      );
    }
    if (kind === 'string') out[k] = v;
    else if (kind === 'count') {
      if (!/^\d{1,15}$/.test(v))
        throw new DurableError(DurableErrorCode.InvalidOption, `${k} must be a whole number`);
      out[k] = Number(v);
    } else if (kind === 'bytes') {
      const n = parseBytes(v);
      if (typeof n === 'string') throw new DurableError(DurableErrorCode.InvalidOption, `${k}: ${n}`);
      out[k] = n;
    } else if (kind === 'bool') {
      if (v !== 'true' && v !== 'false')
        throw new DurableError(DurableErrorCode.InvalidOption, `${k} must be true or false`);
      out[k] = v === 'true';
    } else {
      out[k] = duration(v, k);
      if (k === 'ack_timeout' && (out[k] as number) < MIN_ACK_TIMEOUT_MS) {
        throw new DurableError(
          DurableErrorCode.InvalidOption,
          `ack_timeout must be at least ${MIN_ACK_TIMEOUT_MS} ms`,
        );
      }
    }
  }
  return out;
}

/** Shortest ack timeout: below it every delivery would time out before it reached the client. */
const MIN_ACK_TIMEOUT_MS = 10;

function duration(v: string, what: string): number {
  const n = parseDurationMs(v);
  if (typeof n === 'string') throw new DurableError(DurableErrorCode.InvalidOption, `${what}: ${n}`);
  return n;
}

function handleArg(verb: DurableVerb, args: readonly string[], max: number): string {
  if (args.length < 1 || args.length > max) throw usageError(verb);
  return args[0]!;
}

function usageError(verb: DurableVerb | 'SEND'): DurableError {
  return new DurableError(
    DurableErrorCode.InvalidOption,
    `Invalid ${verb} arguments, expected: ${usage[verb]}`,
  );
}

/** The -ERR line for a refused verb, counted by its code (METRICS.md MT2.1). */
function errLine(err: unknown, conn: Pick<SessionConnection, 'log' | 'countError'>): string {
  if (err instanceof DurableError) {
    conn.countError(err.code);
    return `-ERR '${err.message}'\r\n`;
  }
  conn.countError('INTERNAL');
  conn.log.error(
    { err: err instanceof Error ? (err.stack ?? err.message) : String(err) },
    'internal error in a durable verb',
  );
  return `-ERR 'internal error'\r\n`;
}

/** An id (text) as the bytes of a protocol line written as latin1: its UTF-8 bytes. */
function wireId(id: string): string {
  return Buffer.from(id, 'utf8').toString('latin1');
}

/** The JetStream-shaped publish ack (D3.7). */
function pubAck(r: SendResult): string {
  // The destination is a byte string (latin1); JSON carries it as the text it is.
  const stream = Buffer.from(r.destination, 'latin1').toString('utf8');
  return JSON.stringify(r.duplicate ? { stream, seq: r.seq, duplicate: true } : { stream, seq: r.seq });
}

/** The value of a `Nats-Msg-Id` header, if any (header names are case-insensitive). */
export function msgIdHeader(headers: Buffer): string | undefined {
  // Line by line, no backtracking regex: header bytes come from any client (linear time).
  const lines = headers.toString('latin1').split('\r\n');
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon !== 11 || line.slice(0, 11).toLowerCase() !== 'nats-msg-id') continue;
    const value = line
      .slice(12)
      .replace(/^[ \t]+/, '')
      .trimEnd();
    return value === '' ? undefined : Buffer.from(value, 'latin1').toString('utf8');
  }
  return undefined;
}
