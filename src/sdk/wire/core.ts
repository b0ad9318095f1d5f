/**
 * Core NATS messaging for the CLI client (protocol/CLIENT.md): PUB/HPUB,
 * SUB/UNSUB, and request/reply through one `_INBOX` subscription. The
 * Client (client.ts) owns the connection and hands MSG frames here.
 */
import { randomBytes } from 'node:crypto';
import { ClientError, ClientErrorCode } from './errors.js';
import { checkSubject, checkToken, decodeHeaders } from './text.js';
import type { ClientWire, Msg, Subscription, Waiter } from './types.js';

/** Requests waiting for replies at once. */
const MAX_PENDING_REQUESTS = 4096;

interface SubEntry {
  handler: (m: Msg) => void;
  max: number;
  received: number;
}

export class CoreMessaging {
  private readonly subs = new Map<string, SubEntry>();
  private nextSid = 1;
  private inbox: string | undefined;
  private readonly requests = new Map<string, Waiter<Msg>>();
  private nextRequest = 1;

  constructor(private readonly wire: ClientWire) {}

  /** C3.1: PUB or HPUB. Returns false when the outbound buffer is past its mark. */
  publish(subject: string, payload: Buffer, opts: { reply?: string; headers?: Buffer } = {}): boolean {
    checkSubject('subject', subject, false);
    if (opts.reply !== undefined) checkSubject('reply subject', opts.reply, false);
    const h = opts.headers?.length ?? 0;
    this.wire.checkSize(h + payload.length);
    const reply = opts.reply === undefined ? '' : ` ${opts.reply}`;
    const line =
      h === 0
        ? `PUB ${subject}${reply} ${payload.length}\r\n`
        : `HPUB ${subject}${reply} ${h} ${h + payload.length}\r\n`;
    return this.wire.writeFrame(line, h === 0 ? undefined : opts.headers, payload);
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
    this.wire.write(Buffer.from(`SUB ${subject}${queue} ${sid}\r\n`));
    const unsubscribe = (max?: number): void => {
      const s = this.subs.get(sid);
      if (s === undefined) return;
      if (max === undefined || max <= s.received) this.subs.delete(sid);
      else s.max = max;
      this.wire.write(Buffer.from(max === undefined ? `UNSUB ${sid}\r\n` : `UNSUB ${sid} ${max}\r\n`));
    };
    if (opts.max !== undefined) unsubscribe(opts.max);
    return { sid, unsubscribe };
  }

  /** C5.6: publishes with a reply subject of its own; resolves with the first reply. */
  request(
    subject: string,
    payload: Buffer,
    opts: { headers?: Buffer; signal?: AbortSignal } = {},
  ): Promise<Msg> {
    checkSubject('subject', subject, false);
    this.wire.checkSize((opts.headers?.length ?? 0) + payload.length);
    if (this.requests.size >= MAX_PENDING_REQUESTS) {
      throw new ClientError(ClientErrorCode.Invalid, `more than ${MAX_PENDING_REQUESTS} requests waiting`);
    }
    if (this.inbox === undefined) {
      this.inbox = `_INBOX.${randomBytes(11).toString('hex')}`;
      this.subscribe(`${this.inbox}.*`, (m) => this.onReply(m));
    }
    const token = String(this.nextRequest++);
    const reply = `${this.inbox}.${token}`;
    const answer = this.wire.wait<Msg>(opts.signal, `a reply on "${subject}"`, (w) => {
      this.requests.set(token, w);
      this.publish(subject, payload, { reply, headers: opts.headers });
      // A refused publish gets -ERR and no reply: the PONG behind it carries the refusal.
      this.wire.flush(opts.signal).catch((err: ClientError) => w.reject(err));
    });
    return answer
      .catch((err: ClientError) => {
        if (err.code !== ClientErrorCode.NoResponders) throw err;
        throw new ClientError(err.code, `no responders: nobody is subscribed to ${subject}`);
      })
      .finally(() => this.requests.delete(token));
  }

  /** C4.2: a MSG for one of our sids; counts it against the sid's UNSUB max. */
  onMsg(op: Msg): void {
    const sub = this.subs.get(op.sid);
    if (sub === undefined) return;
    sub.received++;
    if (sub.max > 0 && sub.received >= sub.max) this.subs.delete(op.sid);
    sub.handler(op);
  }

  /** The connection is gone: every request waiting for a reply fails with why. */
  failRequests(err: ClientError): void {
    for (const w of this.requests.values()) w.reject(err);
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
}
