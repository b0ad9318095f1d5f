/**
 * Membership (protocol/MESH.md section 2): every member announces itself on
 * its cluster's gossipsub topic each heartbeat; a member is dropped when its
 * heartbeats stop (M2.3) or when its connection is lost and a re-dial fails
 * (M2.4). The live set, this node included, is what the ring is built from.
 */
import { EventEmitter } from 'node:events';
import type { PeerId } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import type { Logger } from '../log.js';
import type { MeshLibp2p } from './peer.js';
import { memberInfo } from './schema.js';

/** How long the re-dial after a lost connection may take (M2.4). */
const REDIAL_TIMEOUT_MS = 1000;

export type MemberStatus = 'joining' | 'ready' | 'leaving';

/** What a member announces (M2.1). */
export interface MemberInfo {
  id: string;
  cluster: string;
  name: string;
  /** host:port of its client port. */
  client: string;
  /** Its mesh multiaddrs (with /p2p/<id>). */
  mesh: string[];
  version: string;
  status: MemberStatus;
  /** When this incarnation started: a restarted node is a new incarnation. */
  startedAtMs: number;
  load: { connections: number; destinations: number; rssBytes: number };
}

export interface Member extends MemberInfo {
  /** Local time of the last heartbeat. */
  seenAtMs: number;
}

export interface MembershipInit {
  cluster: string;
  heartbeatIntervalMs: number;
  memberTimeoutMs: number;
  self: () => MemberInfo;
}

export function membersTopic(cluster: string): string {
  return `/swarmmq/${cluster}/members/1`;
}

/** Emits 'change' (live ids changed), 'up' (member, restarted) and 'down' (id, why). */
export class Membership extends EventEmitter {
  readonly members = new Map<string, Member>();
  /** Addresses of members seen before, kept for re-dialling after they drop (M1.6). */
  readonly known = new Map<string, { mesh: string[]; lastSeenMs: number }>();
  private timer: NodeJS.Timeout | undefined;
  /** Also sends each heartbeat directly to connected members (M2.2). */
  onBeat: ((info: MemberInfo) => void) | undefined;
  private readonly topic: string;
  private readonly selfId: string;

  constructor(
    private readonly p2p: MeshLibp2p,
    private readonly init: MembershipInit,
    private readonly log: Logger,
  ) {
    super();
    this.topic = membersTopic(init.cluster);
    this.selfId = p2p.peerId.toString();
  }

  start(): void {
    const pubsub = this.p2p.services.pubsub;
    pubsub.subscribe(this.topic);
    pubsub.addEventListener('message', (evt) => {
      try {
        const msg = evt.detail;
        if (msg.topic !== this.topic || msg.type !== 'signed') return;
        // Checked before it is kept: its addresses are dialled and its client address reaches clients (M4.6).
        this.onHeartbeat(msg.from.toString(), memberInfo(JSON.parse(Buffer.from(msg.data).toString('utf8'))));
      } catch (err) {
        this.log.debug({ err: (err as Error).message }, 'bad membership message dropped');
      }
    });
    this.p2p.addEventListener('peer:disconnect', (evt) => this.onDisconnect(evt.detail));
    this.beat();
    this.timer = setInterval(() => this.beat(), this.init.heartbeatIntervalMs);
    this.timer.unref();
  }

  /**
   * This node is leaving (OPS1.3): it is out of its own ring, so what it
   * owned moves to the next members while it still answers their merges.
   */
  leaving = false;

  /**
   * Live member ids, this node included unless it is leaving, sorted. A
   * member that announces `leaving` is out of the ring but stays a peer (it
   * is still merged from) until its heartbeats stop (OPS1.3).
   */
  liveIds(): string[] {
    const ids = this.leaving ? [] : [this.selfId];
    for (const [id, m] of this.members) if (m.status !== 'leaving') ids.push(id);
    return ids.sort();
  }

  /** Announces now (status changes should not wait a heartbeat). */
  beat(): void {
    const info = this.init.self();
    this.onBeat?.(info);
    this.p2p.services.pubsub.publish(this.topic, Buffer.from(JSON.stringify(info))).catch((err: unknown) => {
      this.log.debug({ err: String(err) }, 'heartbeat not published');
    });
    this.expire();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * A heartbeat from `id`: signed on the topic, or sent on a noise-
   * authenticated link (M2.2: both, so a gossip hiccup alone does not drop a
   * member that is still connected). `info` has been checked (schema.ts memberInfo).
   */
  onHeartbeat(id: string, info: MemberInfo): void {
    if (id === this.selfId || info === null || typeof info !== 'object') return;
    // The sender is the member: nobody announces for someone else.
    if (info.id !== id || info.cluster !== this.init.cluster || !Array.isArray(info.mesh)) return;
    const now = Date.now();
    const prev = this.members.get(id);
    this.members.set(id, { ...info, seenAtMs: now });
    this.known.set(id, { mesh: info.mesh, lastSeenMs: now });
    if (prev === undefined) {
      this.log.info({ member: id, name: info.name, client: info.client }, 'member up');
      this.emit('up', id, false);
      this.emit('change');
    } else if (prev.startedAtMs !== info.startedAtMs) {
      this.log.info({ member: id, name: info.name }, 'member restarted');
      this.emit('up', id, true);
      this.emit('change');
    } else if (prev.status !== info.status) {
      this.emit('status', id, info.status);
      // In or out of the ring (OPS1.3): a leaving member's destinations move now, not when it is gone.
      if (prev.status === 'leaving' || info.status === 'leaving') {
        this.log.info({ member: id, name: info.name, status: info.status }, 'member status changed');
        this.emit('change');
      }
    } else if (prev.client !== info.client || prev.mesh.join(' ') !== info.mesh.join(' ')) {
      // M2.5: clients route by these addresses (CLIENT.md C2.9), so a new one is a new view.
      this.log.info({ member: id, name: info.name, client: info.client }, 'member addresses changed');
      this.emit('change');
    }
  }

  private onDisconnect(peer: PeerId): void {
    const id = peer.toString();
    if (!this.members.has(id)) return;
    // A lost connection alone may be one broken link while the member lives:
    // it is dropped only if it cannot be dialled again (M2.4).
    const addrs = this.members.get(id)!.mesh;
    void this.redial(id, addrs);
  }

  private async redial(id: string, addrs: string[]): Promise<void> {
    let refused = false;
    for (const a of addrs) {
      try {
        await this.p2p.dial(multiaddr(a), { signal: AbortSignal.timeout(REDIAL_TIMEOUT_MS) });
        return;
      } catch (err) {
        refused ||= /ECONNREFUSED|connection refused/i.test(`${String(err)} ${String((err as Error).cause)}`);
      }
    }
    // Refused: nothing listens there any more (a killed process), so it goes
    // now. A slow dial on a busy machine proves nothing: the heartbeat
    // timeout decides (M2.3, M2.4).
    if (refused) this.drop(id, 'connection lost');
  }

  private expire(): void {
    const now = Date.now();
    for (const [id, m] of this.members) {
      if (now - m.seenAtMs > this.init.memberTimeoutMs) this.drop(id, 'heartbeat timeout');
    }
  }

  private drop(id: string, why: string): void {
    const m = this.members.get(id);
    if (m === undefined) return;
    this.members.delete(id);
    this.log.warn({ member: id, name: m.name, why, silentMs: Date.now() - m.seenAtMs }, 'member down');
    this.emit('down', id, why);
    this.emit('change');
  }
}
