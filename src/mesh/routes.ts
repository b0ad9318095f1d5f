/**
 * Core pub/sub across the mesh (protocol/MESH.md section 6) on
 * `/swarmmq/route/1.0.0`. Each node tells every peer which subjects (and
 * queue groups) it has subscribers for; a peer's interest sits in the local
 * subject index as subscriptions whose owner is that peer, so a publish
 * forwards one copy per interested node, and a queue group spanning nodes
 * still gets each message once (the publishing node picks the member).
 * The same stream carries the destination catalog (M3.4).
 */
import { DEFAULT_MAX_SUBSCRIPTION_TOKENS } from '../config/defaults.js';
import type { Logger } from '../log.js';
import { Subscription, type Deliverer, type Router } from '../server/router.js';
import type { Channel } from './channel.js';
import type { Links } from './links.js';
import type { MemberInfo } from './membership.js';
import { joinBody } from './bodies.js';
import { memberInfo, routeDests, routeInterest, routeMsg, routeSub } from './schema.js';

export const ROUTE_PROTOCOL = '/swarmmq/route/1.0.0';
/** A member's route link that failed to open or closed is tried again this often. */
const ROUTE_REOPEN_MS = 1000;
/**
 * A peer's interest held here (M6.1), bounded as a node bounds its own
 * clients' (SECURITY.md SEC5.1): subject tokens in all (each subject has at
 * most MAX_SUBJECT_TOKENS, schema.ts) and characters. Past it, more
 * interest is dropped (logged), so a faulty peer cannot grow the subject
 * index without bound.
 */
const MAX_PEER_INTEREST_TOKENS = DEFAULT_MAX_SUBSCRIPTION_TOKENS;
const MAX_PEER_INTEREST_CHARS = 128 * 1024 * 1024;

/** A mesh peer in the subject index: delivering means forwarding one message to it. */
class PeerTarget implements Deliverer {
  readonly echo = true;
  readonly remote = true;
  closed = false;
  channel: Channel | undefined;
  readonly subs = new Map<string, Subscription>();
  /** Subject tokens and key characters of `subs` (MAX_PEER_INTEREST_*). */
  subsTokens = 0;
  subsChars = 0;
  /** The inbound stream whose interest is current (a reopened stream replaces an old one). */
  inbound: Channel | undefined;

  constructor(
    readonly peer: string,
    private readonly selfId: string,
  ) {}

  deliver(
    sub: Subscription,
    subject: string,
    reply: string | undefined,
    headers: Buffer | undefined,
    payload: Buffer,
  ): void {
    const ch = this.channel;
    if (ch === undefined || ch.closed) return; // core messages are at most once (C5.5)
    const data = joinBody(headers, payload);
    ch.event(
      'msg',
      { s: subject, r: reply, q: sub.queue, hl: headers?.length ?? -1, via: [this.selfId] },
      data,
    );
  }
}

export interface RoutesInit {
  router: Router;
  links: Links;
  selfId: string;
  /** Names of the destinations this node has, for the catalog snapshot. */
  localDestinations: () => Iterable<string>;
  /** A heartbeat a peer sent on its link (M2.2). */
  onHeartbeat: (peer: string, info: MemberInfo) => void;
  /** Called with destination names a peer announces; `snapshot` for the full list sent when a link opens. */
  onDestinations: (peer: string, names: string[], snapshot: boolean) => void;
}

export class Routes {
  private readonly peers = new Map<string, PeerTarget>();
  /** Core messages received from peers (for the metrics of the operations issue). */
  received = 0;
  private stopped = false;

  constructor(
    private readonly init: RoutesInit,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.init.router.onInterest = (subject, queue, added) => {
      for (const t of this.peers.values())
        t.channel?.event(added ? 'sub' : 'unsub', { s: subject, q: queue });
    };
    await this.init.links.handle(ROUTE_PROTOCOL, (peer) => this.inboundHandlers(peer));
  }

  /** A member came up (or restarted): open our stream to it and tell it our interest and catalog. */
  async peerUp(peer: string): Promise<void> {
    const t = this.target(peer);
    try {
      const ch = await this.init.links.channel(peer, ROUTE_PROTOCOL);
      if (t.channel === ch) return;
      t.channel = ch;
      ch.onClosed(() => {
        if (t.channel !== ch) return;
        t.channel = undefined;
        this.reopen(t);
      });
      ch.event('interest', { subs: this.init.router.localInterest() });
      ch.event('dests', { names: [...this.init.localDestinations()], snapshot: true });
    } catch (err) {
      this.log.debug({ peer, err: (err as Error).message }, 'route link not opened');
      this.reopen(t);
    }
  }

  /** A member's route link is opened again while it stays a member: its interest and catalog depend on it. */
  private reopen(t: PeerTarget): void {
    setTimeout(() => {
      if (!t.closed && !this.stopped && t.channel === undefined && this.peers.get(t.peer) === t) {
        void this.peerUp(t.peer);
      }
    }, ROUTE_REOPEN_MS).unref();
  }

  /** A member is gone: its interest goes. */
  peerDown(peer: string): void {
    const t = this.peers.get(peer);
    if (t === undefined) return;
    this.clearInterest(t);
    t.closed = true;
    t.channel = undefined;
    this.peers.delete(peer);
  }

  /** This node's heartbeat to every peer with an open link. */
  heartbeat(info: MemberInfo): void {
    for (const t of this.peers.values()) t.channel?.event('hb', { info });
  }

  /** Tells every peer about a new destination. */
  announceDestination(name: string): void {
    for (const t of this.peers.values()) t.channel?.event('dests', { names: [name] });
  }

  stop(): void {
    this.stopped = true;
    for (const t of [...this.peers.values()]) this.peerDown(t.peer);
    this.init.router.onInterest = undefined;
  }

  private target(peer: string): PeerTarget {
    let t = this.peers.get(peer);
    if (t === undefined) {
      t = new PeerTarget(peer, this.init.selfId);
      this.peers.set(peer, t);
    }
    return t;
  }

  private clearInterest(t: PeerTarget): void {
    for (const sub of t.subs.values()) this.init.router.remove(sub);
    t.subs.clear();
    t.subsTokens = 0;
    t.subsChars = 0;
  }

  private inboundHandlers(peer: string): {
    event: (m: string, h: Record<string, unknown>, d: Buffer) => void;
  } {
    const t = (): PeerTarget => this.target(peer);
    // Each head is checked before it is acted on; a malformed one is dropped by the channel (M4.6).
    return {
      event: (method, head, data) => {
        switch (method) {
          case 'interest': {
            const subs = routeInterest(head);
            const target = t();
            this.clearInterest(target);
            for (const s of subs) this.addInterest(target, s.subject, s.queue);
            return;
          }
          case 'sub': {
            const s = routeSub(head);
            this.addInterest(t(), s.subject, s.queue);
            return;
          }
          case 'unsub': {
            const s = routeSub(head);
            const target = t();
            const key = `${s.subject} ${s.queue ?? ''}`;
            const sub = target.subs.get(key);
            if (sub !== undefined) {
              target.subs.delete(key);
              target.subsTokens -= tokenCount(s.subject);
              target.subsChars -= key.length;
              this.init.router.remove(sub);
            }
            return;
          }
          case 'msg': {
            const m = routeMsg(head, data);
            this.received++;
            this.log.trace({ subject: m.subject, via: m.via }, 'core message from a peer');
            this.init.router.deliverFromPeer(m.subject, m.reply, m.headers, m.payload, m.queue);
            return;
          }
          case 'hb':
            this.init.onHeartbeat(peer, memberInfo(head.info));
            return;
          case 'dests': {
            const d = routeDests(head);
            this.init.onDestinations(peer, d.names, d.snapshot);
            return;
          }
        }
      },
    };
  }

  private addInterest(t: PeerTarget, subject: string, queue: string | undefined): void {
    const key = `${subject} ${queue ?? ''}`;
    if (t.subs.has(key)) return;
    const tokens = tokenCount(subject);
    if (
      t.subsTokens + tokens > MAX_PEER_INTEREST_TOKENS ||
      t.subsChars + key.length > MAX_PEER_INTEREST_CHARS
    ) {
      this.log.debug(
        { peer: t.peer, subject: subject.slice(0, 256) },
        'peer interest over its limit; dropped',
      );
      return;
    }
    t.subsTokens += tokens;
    t.subsChars += key.length;
    const sub = new Subscription(t, subject, queue, `peer:${key}`);
    t.subs.set(key, sub);
    this.init.router.add(sub);
  }
}

/** Tokens of a subject (C4.1): what an entry costs in the subject index. */
function tokenCount(subject: string): number {
  let n = 1;
  for (let i = subject.indexOf('.'); i >= 0; i = subject.indexOf('.', i + 1)) n++;
  return n;
}
