/**
 * One client connection: socket in, parser, the handler for each operation
 * (protocol/CLIENT.md sections 2-6), and batched socket writes out. A
 * connection that cannot keep up with its outbound traffic is cut off as a
 * slow consumer instead of growing memory (C6.9).
 */
import type { Authenticator } from '../auth/authenticator.js';
import type { Credential } from '../auth/config.js';
import { ALLOW_ALL, PermissionCheck, type DestinationRight } from '../auth/permissions.js';
import type { NodeOptions } from '../config/options.js';
import {
  CloseReason,
  closeTexts,
  DurableErrorCode,
  permissionTexts,
  ProtocolErrorCode,
  protocolErrors,
  type ErrorKind,
  type ProtocolError,
} from '../errors.js';
import type { Logger } from '../log.js';
import { HELP_TEXT } from '../protocol/help.js';
import type { ClientOp, ParserSink } from '../protocol/ops.js';
import { Parser } from '../protocol/parser.js';
import { isValidPublishSubject, isValidSubscribeSubject, tokenCount } from '../subjects/subject.js';
import {
  CLOSE_FLUSH_GRACE_MS,
  MAX_SUBJECT_TOKENS,
  OUTBOUND_FLUSH_THRESHOLD_BYTES,
} from '../config/defaults.js';
import type { ClientLimits } from './limits.js';
import type { ClientSocket } from './client-socket.js';
import { Outbound } from './outbound.js';
import { Subscription, type Deliverer, type Router } from './router.js';
import type { DurableService } from '../durable/service.js';
import { DurableSession, type SessionConnection, type SessionObserver } from './durable-session.js';

/** What a connection needs from its server; nothing else. */
export interface ConnectionHost {
  readonly router: Router;
  readonly options: NodeOptions;
  /** The limits in force, swapped whole by a reload (SEC2.6): read at each check, never kept. */
  readonly limits: ClientLimits;
  /** The node's durable engine (protocol/DURABLE.md). */
  readonly durable: DurableService | undefined;
  /** SEC2.1: undefined when the node takes clients without credentials. */
  readonly auth: Authenticator | undefined;
  infoLine(conn: ClientConnection): string;
  /** C2.9: true when INFO shows the cluster view only after CONNECT (a node with credentials or TLS). */
  readonly viewAfterConnect: boolean;
  /** Queue the connection for the end-of-turn flush. */
  markDirty(conn: ClientConnection): void;
  /** True when the node's total outbound is over its limit and this connection holds more than its share. */
  overTotalPending(conn: ClientConnection): boolean;
  onClosed(conn: ClientConnection, reason: CloseReason): void;
  countIn(bytes: number): void;
  /**
   * SEC5.1: takes (or, negative, returns) subject tokens from the node-wide
   * budget of subscription tokens; false when it is spent.
   */
  reserveSubjectTokens(tokens: number): boolean;
  countOut(bytes: number): void;
  /** Counts an -ERR by its code (protocol/METRICS.md MT2.1). */
  countError(kind: ErrorKind): void;
  /** The metrics' timing hooks for durable sessions; undefined when none are kept. */
  readonly observer: SessionObserver | undefined;
  /** The node is stopping and reads no more client input (OPS1.2). */
  readonly draining: boolean;
}

/** The CONNECT options a connection runs with (C2.2: verbose and pedantic start on, as in nats-server 2.9). */
interface ClientOptions {
  verbose: boolean;
  pedantic: boolean;
  echo: boolean;
  headers: boolean;
  noResponders: boolean;
  name: string | undefined;
  lang: string | undefined;
  version: string | undefined;
  protocol: number;
}

const PONG_LINE = 'PONG\r\n';
const PING_LINE = 'PING\r\n';
const OK_LINE = '+OK\r\n';
const NO_RESPONDERS_HEADER = Buffer.from('NATS/1.0 503\r\n\r\n');

export class ClientConnection implements ParserSink, Deliverer, SessionConnection {
  closed = false;
  closeReason: CloseReason | undefined;
  readonly subs = new Map<string, Subscription>();
  readonly outbound = new Outbound();
  readonly opts: ClientOptions = {
    verbose: true,
    pedantic: true,
    echo: true,
    headers: false,
    noResponders: false,
    name: undefined,
    lang: undefined,
    version: undefined,
    protocol: 0,
  };
  /** Whether a CONNECT has been accepted. */
  connected = false;
  /** SEC2.2: the key or user this connection proved; undefined without auth. */
  credential: Credential | undefined;
  /** SEC3: what this connection may do; everything when the node has no auth. */
  private perms = new PermissionCheck(ALLOW_ALL);
  /** Operations that arrived while a password was being checked (SEC2.4), replayed after. */
  private held: ClientOp[] | undefined;
  private authTimer: NodeJS.Timeout | undefined;
  msgsIn = 0;
  msgsOut = 0;
  /** Bytes read from and written to the socket (/connz in_bytes, out_bytes). */
  bytesIn = 0;
  bytesOut = 0;
  /** When it was accepted, and when bytes last came in or went out: /connz uptime and idle. */
  readonly startedAtMs = Date.now();
  lastActivityMs = this.startedAtMs;
  private readonly parser: Parser;
  private pingsOut = 0;
  private inboundSinceTick = false;
  private pingTimer: NodeJS.Timeout | undefined;
  private session: DurableSession | undefined;
  /** Queued for the server's end-of-turn flush. */
  private dirty = false;
  /** The max_payload this connection's INFO announced; a reload does not change it (limits.ts). */
  readonly maxPayloadBytes: number;
  /** Whether the client's name is in the log bindings yet (it is bound once: pino appends bindings). */
  private nameBound = false;

  constructor(
    readonly cid: number,
    readonly socket: ClientSocket,
    private readonly host: ConnectionHost,
    readonly log: Logger,
  ) {
    const l = host.limits;
    this.maxPayloadBytes = l.maxPayloadBytes;
    this.parser = new Parser(this, {
      maxControlLineBytes: l.maxControlLineBytes,
      maxPayloadBytes: l.maxPayloadBytes,
    });
  }

  /**
   * Per-message trace lines are built only when trace is on: the log object
   * costs even when dropped. Asked each time, since a reload can change the level.
   */
  private get traceOn(): boolean {
    return this.log.isLevelEnabled('trace');
  }

  /** SEC2.6: the server swapped its limits; apply those a running connection follows (limits.ts). */
  limitsChanged(before: ClientLimits): void {
    if (this.closed) return;
    const now = this.host.limits;
    if (now.maxControlLineBytes !== before.maxControlLineBytes) {
      this.parser.setLimits({
        maxControlLineBytes: now.maxControlLineBytes,
        maxPayloadBytes: this.maxPayloadBytes,
      });
    }
    if (now.pingIntervalMs !== before.pingIntervalMs) {
      clearInterval(this.pingTimer);
      this.armPing();
    }
  }

  get echo(): boolean {
    return this.opts.echo;
  }

  /** Outbound bytes not yet written by the kernel: ours plus the socket's. */
  get pendingBytes(): number {
    return this.outbound.size + this.socket.writableLength;
  }

  /** Wires the socket and sends INFO (C2.1), unless the TLS accept path already did (SEC4.1). */
  start(infoSent = false): void {
    const s = this.socket;
    s.on('data', (chunk: Buffer) => this.onData(chunk));
    s.on('error', (err) => {
      this.log.debug({ err: err.message }, 'socket error');
      // SEC6.5: a libp2p client that resets its stream (src/mesh/stream-socket.ts) is named apart.
      const reason = err.name === 'StreamResetError' ? CloseReason.StreamReset : CloseReason.SocketError;
      this.close(reason, undefined, false);
    });
    s.on('close', () => this.close(CloseReason.ClientClosed, undefined, false));
    if (!infoSent) this.writeRaw(this.host.infoLine(this));
    this.flush();
    if (this.host.auth !== undefined) {
      // SEC2.5: a client that does not authenticate in time is closed, as nats-server does.
      this.authTimer = setTimeout(
        () => this.close(CloseReason.AuthenticationTimeout, closeTexts.authenticationTimeout),
        this.host.limits.authTimeoutMs,
      );
      this.authTimer.unref();
    }
    this.armPing();
  }

  private armPing(): void {
    this.pingTimer = setInterval(() => this.pingTick(), this.host.limits.pingIntervalMs);
    this.pingTimer.unref();
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.inboundSinceTick = true;
    this.bytesIn += chunk.length;
    this.lastActivityMs = Date.now();
    this.host.countIn(chunk.length);
    this.parser.feed(chunk);
  }

  onOp(op: ClientOp): void {
    if (this.closed) return;
    if (this.held !== undefined) {
      this.held.push(op);
      return;
    }
    // SEC2.3: with auth on, the first operation must be a CONNECT that authenticates.
    if (
      this.host.auth !== undefined &&
      this.credential === undefined &&
      op.kind !== 'CONNECT' &&
      op.kind !== 'error'
    ) {
      return this.authorizationViolation('operation before CONNECT');
    }
    switch (op.kind) {
      case 'PUB':
        return this.handlePub(op.subject, op.reply, undefined, op.payload);
      case 'HPUB':
        return this.handlePub(op.subject, op.reply, op.headers, op.payload);
      case 'SUB':
        return this.handleSub(op.subject, op.queue, op.sid);
      case 'UNSUB':
        return this.handleUnsub(op.sid, op.max);
      case 'PING':
        // C2.6: everything before it is handled; answers to SENDs follow their sync (D3.5).
        return this.writeRaw(PONG_LINE);
      case 'PONG':
        this.pingsOut = 0;
        return;
      case 'CONNECT':
        return this.handleConnect(op.json);
      case 'OK':
      case 'INFO':
        return;
      case 'ERR':
        // C6.8: a client -ERR is logged and the connection closed, as nats-server does.
        this.log.info({ clientErr: op.message.slice(0, 200) }, 'client sent -ERR');
        return this.close(CloseReason.ClientError);
      case 'HELP':
        return this.writeUtf8(HELP_TEXT);
      case 'SEND':
        this.msgsIn++;
        return this.durableSession()?.send(op.destination, op.options, op.payload);
      case 'HSEND':
        this.msgsIn++;
        // D3.9: headers as HPUB's, so a client that did not announce them is closed as for HPUB (C3.5).
        if (!this.opts.headers) return this.protocolError(protocolErrors.headersNotSupported());
        return this.durableSession()?.send(op.destination, op.options, op.payload, op.headers);
      case 'DURABLE':
        return this.durableSession()?.verb(op.verb, op.args);
      case 'error':
        return this.protocolError(op.error);
    }
  }

  private handleConnect(json: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch (err) {
      return this.protocolError(protocolErrors.invalidConnect(`not JSON (${(err as Error).message})`));
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      return this.protocolError(protocolErrors.invalidConnect('expected a JSON object'));
    }
    const c = parsed as Record<string, unknown>;
    const o = this.opts;
    const bool = (k: string, cur: boolean): boolean => (typeof c[k] === 'boolean' ? (c[k] as boolean) : cur);
    const str = (k: string): string | undefined =>
      typeof c[k] === 'string' ? (c[k] as string).slice(0, 256) : undefined;
    if (c.protocol !== undefined && c.protocol !== 0 && c.protocol !== 1) {
      return this.protocolError(protocolErrors.invalidProtocol());
    }
    o.verbose = bool('verbose', o.verbose);
    o.pedantic = bool('pedantic', o.pedantic);
    o.echo = bool('echo', o.echo);
    o.headers = bool('headers', o.headers);
    o.noResponders = bool('no_responders', o.noResponders);
    o.name = str('name') ?? o.name;
    o.lang = str('lang') ?? o.lang;
    o.version = str('version') ?? o.version;
    o.protocol = typeof c.protocol === 'number' ? c.protocol : o.protocol;
    if (o.name !== undefined && !this.nameBound) {
      // From here on every line of this connection names the client (never a credential).
      this.nameBound = true;
      this.log.setBindings({ clientName: o.name });
    }
    if (o.noResponders && !o.headers) return this.protocolError(protocolErrors.noRespondersRequiresHeaders());
    const auth = this.host.auth;
    if (auth !== undefined && this.credential === undefined) {
      const secret = (k: string): string | undefined =>
        typeof c[k] === 'string' && (c[k] as string).length <= 1024 ? (c[k] as string) : undefined;
      const user = secret('user');
      const proved = auth.authenticate({ token: secret('auth_token'), user, pass: secret('pass') });
      if (proved instanceof Promise) {
        // SEC2.4: scrypt runs off the event loop; what the client sends meanwhile waits, bounded by the paused socket.
        this.held = [];
        this.socket.pause();
        void proved.then((cred) => {
          const held = this.held ?? [];
          this.held = undefined;
          if (this.closed) return;
          if (cred === undefined) return this.authorizationViolation('bad user or password', user);
          this.socket.resume();
          this.authenticated(cred);
          for (const op of held) this.onOp(op);
        });
        return;
      }
      if (proved === undefined) return this.authorizationViolation('bad or missing credentials', user);
      return this.authenticated(proved);
    }
    this.connected = true;
    this.log.debug({ lang: o.lang, version: o.version }, 'client connected');
    this.ok();
    if (this.host.viewAfterConnect) this.resendInfo(); // C2.9
  }

  private authenticated(cred: Credential): void {
    if (this.authTimer !== undefined) clearTimeout(this.authTimer);
    this.credential = cred;
    this.perms = new PermissionCheck(cred.permissions);
    this.connected = true;
    const o = this.opts;
    this.log.info({ [cred.kind]: cred.name, lang: o.lang, version: o.version }, 'client authenticated');
    this.ok();
    if (this.host.viewAfterConnect) this.resendInfo(); // C2.9: the view only for a client that proved itself
  }

  /** SEC2.3: logged without the secret (a user name is not one), counted, and closed. */
  private authorizationViolation(why: string, user?: string): void {
    this.log.warn({ why, user }, 'authentication failed');
    this.close(CloseReason.AuthorizationViolation, closeTexts.authorizationViolation);
  }

  /**
   * SEC2.6: after a reload, keep the connection under its credential's new
   * permissions, or close it when that credential is gone. Returns whether it
   * stays open. Subscriptions the new permissions refuse are removed.
   */
  reauthorize(auth: Authenticator | undefined): boolean {
    if (this.closed) return false;
    if (auth === undefined) {
      this.perms = new PermissionCheck(ALLOW_ALL);
      return true;
    }
    const now = this.credential === undefined ? undefined : auth.current(this.credential);
    if (now === undefined) {
      this.log.info(
        { [this.credential?.kind ?? 'client']: this.credential?.name },
        'credential revoked by reload',
      );
      this.close(CloseReason.CredentialsRevoked, closeTexts.authorizationViolation);
      return false;
    }
    this.credential = now;
    this.perms = new PermissionCheck(now.permissions);
    for (const sub of [...this.subs.values()]) {
      if (!this.perms.maySubscribe(sub.subject)) {
        this.removeSub(sub);
        this.sendErr(permissionTexts.subscribe(sub.subject, sub.queue), DurableErrorCode.PermissionDenied);
      } else {
        sub.filterDeny = this.perms.needsDeliveryFilter(sub.subject);
      }
    }
    return true;
  }

  /** SEC3.4: whether this connection holds `right` on `destination`. */
  mayUse(right: DestinationRight, destination: string): boolean {
    return this.perms.mayUse(right, destination);
  }

  private handlePub(
    subject: string,
    reply: string | undefined,
    headers: Buffer | undefined,
    payload: Buffer,
  ): void {
    this.msgsIn++;
    if (!this.perms.mayPublish(subject)) {
      // SEC3.2: refused and reported; the connection stays open, as in nats-server.
      this.sendErr(permissionTexts.publish(subject), DurableErrorCode.PermissionDenied);
      return;
    }
    if (headers !== undefined && !this.opts.headers) {
      // C3.5: HPUB from a client that did not announce headers (nats-server closes too).
      return this.protocolError(protocolErrors.headersNotSupported());
    }
    // C3.3: in pedantic mode a bad subject is reported, yet (as in 2.9) still routed.
    if (this.opts.pedantic && !isValidPublishSubject(subject)) {
      this.sendErr(protocolErrors.invalidPublishSubject().wireText, ProtocolErrorCode.InvalidPublishSubject);
    }
    // C2.8: +OK acknowledges the operation before its deliveries, as nats-server orders it.
    this.ok();
    if (this.traceOn) this.log.trace({ subject, bytes: payload.length }, 'pub');
    const n = this.host.router.publish(this, subject, reply, headers, payload);
    // D3.7: a PUB to a destination is also stored; the store answers the reply subject.
    const stored =
      this.host.durable !== undefined &&
      this.durableSession()!.storeFromPub(subject, reply, headers, payload);
    if (n === 0 && !stored && reply !== undefined && this.opts.noResponders) this.noResponders(reply);
  }

  /** Durable sends of this connection still waiting for their answer (OPS1.2). */
  get unansweredSends(): number {
    return this.session?.unansweredSends ?? 0;
  }

  private durableSession(): DurableSession | undefined {
    if (this.session === undefined) {
      const engine = this.host.durable;
      if (engine === undefined) {
        this.sendErr('durable destinations are not enabled on this node', 'INTERNAL');
        return undefined;
      }
      this.session = new DurableSession(this, engine, this.host.options.batchSize, this.host.observer);
    }
    return this.session;
  }

  /** An INFO with changed cluster members (M2.5). */
  resendInfo(): void {
    this.writeRaw(this.host.infoLine(this));
  }

  // ---- SessionConnection ----

  get clientName(): string | undefined {
    return this.opts.name;
  }

  writeLatin1(s: string): void {
    this.writeRaw(s);
  }

  writeBytes(b: Buffer): void {
    this.outbound.appendBytes(b);
    this.queued();
  }

  pauseInput(): void {
    this.socket.pause();
  }

  resumeInput(): void {
    if (!this.closed && !this.host.draining) this.socket.resume();
  }

  publishCore(subject: string, payload: Buffer): void {
    this.host.router.publish(null, subject, undefined, undefined, payload);
  }

  /** C5.4: tell a requester that nobody listens, on its own reply subscription. */
  private noResponders(reply: string): void {
    const sub = this.host.router.findOwn(this, reply);
    if (sub === undefined) return;
    const h = NO_RESPONDERS_HEADER;
    this.outbound.appendLatin1(`HMSG ${reply} ${sub.sid} ${h.length} ${h.length}\r\n`);
    this.outbound.appendBytes(h);
    this.outbound.appendCRLF();
    this.queued();
  }

  private handleSub(subject: string, queue: string | undefined, sid: string): void {
    if (!isValidSubscribeSubject(subject) || (queue !== undefined && queue.length === 0)) {
      this.sendErr(protocolErrors.invalidSubject().wireText, ProtocolErrorCode.InvalidSubject);
      return;
    }
    const tokens = tokenCount(subject);
    if (tokens > MAX_SUBJECT_TOKENS) {
      this.sendErr(
        protocolErrors.tooManyTokens(MAX_SUBJECT_TOKENS).wireText,
        ProtocolErrorCode.InvalidSubject,
      );
      return;
    }
    if (this.subs.has(sid)) return this.ok(); // C4.3: a reused sid is ignored
    if (this.subs.size >= this.host.limits.maxSubscriptions || !this.host.reserveSubjectTokens(tokens)) {
      this.sendErr(protocolErrors.maxSubscriptions().wireText, ProtocolErrorCode.MaxSubscriptions);
      return;
    }
    if (!this.perms.maySubscribe(subject)) {
      this.host.reserveSubjectTokens(-tokens);
      this.sendErr(permissionTexts.subscribe(subject, queue), DurableErrorCode.PermissionDenied);
      return;
    }
    const sub = new Subscription(this, subject, queue, sid);
    sub.filterDeny = this.perms.needsDeliveryFilter(subject);
    this.subs.set(sid, sub);
    this.host.router.add(sub);
    if (this.traceOn) this.log.trace({ subject, queue, sid }, 'sub');
    this.ok();
  }

  private handleUnsub(sid: string, max: number | undefined): void {
    const sub = this.subs.get(sid);
    if (sub !== undefined) {
      if (max !== undefined && max > 0 && sub.delivered < max) sub.max = max;
      else this.removeSub(sub);
    }
    this.ok();
  }

  private removeSub(sub: Subscription): void {
    if (this.subs.get(sub.sid) !== sub) return;
    this.subs.delete(sub.sid);
    this.host.router.remove(sub);
    this.host.reserveSubjectTokens(-tokenCount(sub.subject));
  }

  /** Writes one MSG or HMSG (C5.1); strips headers for a client that did not ask for them (C5.3). */
  deliver(
    sub: Subscription,
    subject: string,
    reply: string | undefined,
    headers: Buffer | undefined,
    payload: Buffer,
  ): void {
    if (this.closed) return;
    // SEC3.3: a wildcard subscription never delivers what the deny list names.
    if (sub.filterDeny && !this.perms.mayReceive(subject)) return;
    const out = this.outbound;
    if (headers !== undefined && this.opts.headers) {
      const r = reply === undefined ? '' : `${reply} `;
      out.appendLatin1(
        `HMSG ${subject} ${sub.sid} ${r}${headers.length} ${headers.length + payload.length}\r\n`,
      );
      out.appendBytes(headers);
    } else {
      // The hot path: a cached prefix, then the reply and size written as bytes.
      if (sub.msgPrefixSubject !== subject) {
        sub.msgPrefix = Buffer.from(`MSG ${subject} ${sub.sid} `, 'latin1');
        sub.msgPrefixSubject = subject;
      }
      out.appendSmall(sub.msgPrefix!);
      if (reply !== undefined) out.appendLatin1(`${reply} `);
      out.appendUint(payload.length);
      out.appendCRLF();
    }
    if (payload.length > 0) out.appendBytes(payload);
    out.appendCRLF();
    this.msgsOut++;
    sub.delivered++;
    if (sub.max > 0 && sub.delivered >= sub.max) this.removeSub(sub);
    this.queued();
  }

  ok(): void {
    if (this.opts.verbose) this.writeRaw(OK_LINE);
  }

  sendErr(text: string, kind: ErrorKind): void {
    this.host.countError(kind);
    this.writeUtf8(`-ERR '${text}'\r\n`);
  }

  countError(kind: ErrorKind): void {
    this.host.countError(kind);
  }

  private protocolError(err: ProtocolError): void {
    this.log.debug({ code: err.code, fatal: err.fatal }, 'protocol error');
    if (!err.fatal) return this.sendErr(err.wireText, err.code);
    this.host.countError(err.code);
    this.close(err.closeReason, err.wireText);
  }

  private pingTick(): void {
    if (this.closed) return;
    if (this.inboundSinceTick && this.pingsOut === 0) {
      // C2.7: a client we heard from in this interval is alive; skip this PING.
      this.inboundSinceTick = false;
      return;
    }
    this.inboundSinceTick = false;
    if (this.pingsOut + 1 > this.host.limits.maxPingsOut) {
      this.close(CloseReason.StaleConnection, closeTexts.stale);
      return;
    }
    this.pingsOut++;
    this.writeRaw(PING_LINE);
  }

  private writeRaw(s: string): void {
    this.outbound.appendLatin1(s);
    this.queued();
  }

  writeUtf8(s: string): void {
    this.outbound.appendUtf8(s);
    this.queued();
  }

  /** After anything was queued: enforce the pending limits (C6.9), then schedule or force a flush. */
  private queued(): void {
    if (this.closed) return;
    const pending = this.pendingBytes;
    if (pending > this.host.limits.maxPendingBytes || this.host.overTotalPending(this)) {
      this.log.warn({ pendingBytes: pending }, 'slow consumer: outbound limit reached, closing');
      this.close(CloseReason.SlowConsumer, undefined, false);
      return;
    }
    if (this.outbound.size >= OUTBOUND_FLUSH_THRESHOLD_BYTES) this.flush();
    else if (!this.dirty) {
      this.dirty = true;
      this.host.markDirty(this);
    }
  }

  /** Hands everything queued to the socket in one write (or one corked writev). */
  flush(): void {
    this.dirty = false;
    if (this.outbound.size === 0 || this.socket.destroyed) return;
    const pieces = this.outbound.take();
    let bytes = 0;
    if (pieces.length === 1) {
      bytes = pieces[0]!.length;
      this.socket.write(pieces[0]!);
    } else {
      this.socket.cork();
      for (const p of pieces) {
        bytes += p.length;
        this.socket.write(p);
      }
      this.socket.uncork();
    }
    // Per flush, not per message: one clock read per batch.
    this.bytesOut += bytes;
    this.lastActivityMs = Date.now();
    this.host.countOut(bytes);
  }

  /**
   * Ends the connection once, with a reason from the catalogue. `errText`
   * goes out as -ERR first. `graceful` lets queued bytes reach the client
   * (a slow consumer's do not: they are the problem).
   */
  close(reason: CloseReason, errText?: string, graceful = true): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    if (this.pingTimer !== undefined) clearInterval(this.pingTimer);
    if (this.authTimer !== undefined) clearTimeout(this.authTimer);
    this.held = undefined;
    this.session?.close();
    for (const sub of this.subs.values()) {
      this.host.router.remove(sub);
      this.host.reserveSubjectTokens(-tokenCount(sub.subject));
    }
    this.subs.clear();
    this.host.onClosed(this, reason);
    const s = this.socket;
    if (graceful && !s.destroyed) {
      if (errText !== undefined) this.outbound.appendUtf8(`-ERR '${errText}'\r\n`);
      this.flush();
      s.end();
      // A peer that never reads would keep the socket forever.
      setTimeout(() => s.destroy(), CLOSE_FLUSH_GRACE_MS).unref();
    } else {
      this.outbound.clear();
      s.destroy();
    }
  }
}
