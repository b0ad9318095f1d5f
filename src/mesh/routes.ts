/**
 * Core pub/sub across the mesh (protocol/MESH.md section 6) on
 * `/swarmmq/route/1.0.0`. Each node tells every peer which subjects (and
 * queue groups) it has subscribers for; a peer's interest sits in the local
 * subject index as subscriptions whose owner is that peer, so a publish
 * forwards one copy per interested node, and a queue group spanning nodes
 * still gets each message once (the publishing node picks the member).
 * The same stream carries the destination catalog (M3.4).
 */
import type { Logger } from '../log.js';
import { Subscription, type Deliverer, type Router } from '../server/router.js';
import type { Channel } from './channel.js';
import type { Links } from './links.js';
import type { MemberInfo } from './membership.js';
import { joinBody, splitBody } from './bodies.js';

export const ROUTE_PROTOCOL = '/swarmmq/route/1.0.0';
/** A member's route link that failed to open or closed is tried again this often. */
const ROUTE_REOPEN_MS = 1000;

/** A mesh peer in the subject index: delivering means forwarding one message to it. */
class PeerTarget implements Deliverer {
  readonly echo = true;
  readonly remote = true;
  closed = false;
  channel: Channel | undefined;
  readonly subs = new Map<string, Subscription>();
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
  }

  private inboundHandlers(peer: string): {
    event: (m: string, h: Record<string, unknown>, d: Buffer) => void;
  } {
    const t = (): PeerTarget => this.target(peer);
    return {
      event: (method, head, data) => {
        switch (method) {
          case 'interest': {
            const target = t();
            this.clearInterest(target);
            for (const s of head.subs as { subject: string; queue?: string }[])
              this.addInterest(target, s.subject, s.queue);
            return;
          }
          case 'sub':
            this.addInterest(t(), String(head.s), head.q as string | undefined);
            return;
          case 'unsub': {
            const target = t();
            const key = `${String(head.s)} ${String(head.q ?? '')}`;
            const sub = target.subs.get(key);
            if (sub !== undefined) {
              target.subs.delete(key);
              this.init.router.remove(sub);
            }
            return;
          }
          case 'msg': {
            this.received++;
            this.log.trace({ subject: head.s, via: head.via }, 'core message from a peer');
            const { headers, payload } = splitBody(data, Number(head.hl));
            this.init.router.deliverFromPeer(
              String(head.s),
              head.r as string | undefined,
              headers,
              payload,
              head.q as string | undefined,
            );
            return;
          }
          case 'hb':
            this.init.onHeartbeat(peer, head.info as MemberInfo);
            return;
          case 'dests':
            this.init.onDestinations(peer, (head.names as unknown[]).map(String), head.snapshot === true);
            return;
        }
      },
    };
  }

  private addInterest(t: PeerTarget, subject: string, queue: string | undefined): void {
    const key = `${subject} ${queue ?? ''}`;
    if (t.subs.has(key)) return;
    const sub = new Subscription(t, subject, queue, `peer:${key}`);
    t.subs.set(key, sub);
    this.init.router.add(sub);
  }
}
