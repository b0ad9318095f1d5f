/**
 * A node's part in the mesh (protocol/MESH.md): its libp2p peer, discovery,
 * membership, the ring built over the live members, and the services that
 * run over peer links: core routes, durable routing, replication and
 * hand-off. On every membership change the ring is rebuilt, each stored
 * destination learns whether this node owns it or replicates it, links to
 * departed members are dropped, and clients get the new member list.
 */
import { EventEmitter } from 'node:events';
import type { NodeOptions } from '../config/options.js';
import { MESH_PORT_OFFSET } from '../config/defaults.js';
import type { DurableEngine } from '../durable/engine.js';
import type { Logger } from '../log.js';
import type { Router } from '../server/router.js';
import { VERSION } from '../version.js';
import { Discovery } from './discovery.js';
import { DurableRouting, type ForwardObserver } from './durable-routing.js';
import { Links } from './links.js';
import { Membership, type Member, type MemberInfo, type MemberStatus } from './membership.js';
import { Admission } from './admission.js';
import { createPeer, guardStreamErrors, type MeshLibp2p } from './peer.js';
import { Replicator, type ReplicaObserver } from './replication.js';
import { HashRing, placementKey } from './ring.js';
import { Routes } from './routes.js';
import { Handoff } from './handoff.js';
import { clientStreams, type ClientStreams, type StreamAcceptor } from './client-streams.js';
import type { ClusterView } from '../protocol/cluster-view.js';

export interface MeshInit {
  options: NodeOptions;
  engine: DurableEngine;
  router: Router;
  /** host:port of this node's client port. */
  clientAddress: string;
  name: string;
  load: () => MemberInfo['load'];
  log: Logger;
  /** The metrics' round-trip hooks (protocol/METRICS.md MT3.4); undefined when none are kept. */
  observer?: (ForwardObserver & ReplicaObserver) | undefined;
  /** The client server, which takes clients over libp2p when cluster.client_streams is on (SECURITY.md SEC6). */
  clients?: StreamAcceptor | undefined;
}

/** The mesh port: configured, else client port + 2000 (0 stays 0). */
export function meshPort(o: NodeOptions): number {
  if (o.meshPort !== undefined) return o.meshPort;
  if (o.port === 0) return 0;
  const p = o.port + MESH_PORT_OFFSET;
  return p <= 65535 ? p : 0;
}

/** Preference lists kept between view changes; past this many the cache starts over. */
const MAX_CACHED_PLACEMENTS = 65_536;
/** The shortest wait for members to appear before a node serves durable calls (M7.2). */
const JOIN_WINDOW_MIN_MS = 1500;
/**
 * Destination names learnt from peers (SECURITY.md SEC5.3): far above any
 * real cluster (each node holds at most max_destinations), yet a bound on
 * what a member's announcements can make this node keep.
 */
const MAX_CATALOG_DESTINATIONS = 1_000_000;

/**
 * A member's mesh addresses for the INFO view: each ends in `/p2p/<id>`
 * (added when missing; one ending in another peer's id is left out, it
 * could not reach this member), at most MAX_VIEW_ADDRS of them.
 */
function viewAddrs(id: string, addrs: readonly string[]): string[] {
  const out: string[] = [];
  for (const a of addrs) {
    if (out.length === MAX_VIEW_ADDRS) break;
    const parts = a.split('/');
    const endsInPeer = parts.length >= 2 && parts[parts.length - 2] === 'p2p';
    const full = !endsInPeer ? `${a}/p2p/${id}` : parts[parts.length - 1] === id ? a : undefined;
    if (full !== undefined && full.length <= MAX_VIEW_ADDR_CHARS) out.push(full);
  }
  return out;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host.startsWith('127.') || host === '::1';
}

/**
 * Mesh addresses per member in the INFO view (M2.5), and the longest address
 * kept (client or mesh): INFO is one line every client reads whole (the SDK
 * takes 2 MiB), so a member announcing many or long addresses (a heartbeat
 * may carry 64 of 1024 characters, schema.ts) must not make it grow past
 * that: a member costs at most about 850 bytes, 1024 members under 1 MiB.
 */
const MAX_VIEW_ADDRS = 2;
const MAX_VIEW_ADDR_CHARS = 256;

/** How often a leaving node checks whether its copies have been taken over. */
const LEAVE_POLL_MS = 100;
/** A long hand-over logs its progress this often. */
const LEAVE_PROGRESS_MS = 2000;

export interface LeaveResult {
  /** Every destination this node held was merged by its new owner and released here. */
  readonly handedOver: boolean;
  /** Destinations still held when the leave ended. */
  readonly remaining: number;
  readonly ms: number;
  readonly why: string;
}

/** Emits 'view' (ring, members) after each membership change. */
export class Mesh extends EventEmitter {
  readonly selfId: string;
  /** Who may join; its counts of refused connections (SECURITY.md SEC1.3). */
  admission: Admission | undefined;
  ring: HashRing;
  readonly catalog = new Set<string>();
  readonly durable: DurableRouting;
  private readonly membership: Membership;
  private readonly discovery: Discovery;
  private readonly links: Links;
  private readonly routes: Routes;
  private readonly replicator: Replicator;
  private readonly handoff: Handoff;
  /** Clients over libp2p (SEC6); undefined when cluster.client_streams is off. */
  private clientStreams: ClientStreams | undefined;
  private status: MemberStatus = 'joining';
  private readonly startedAtMs = Date.now();
  private readonly viewWaiters: (() => void)[] = [];
  private readonly peerUpSeen = new Set<string>();
  private readonly restarted = new Set<string>();
  private readonly placements = new Map<string, string[]>();
  private readonly rf: number;
  /** Peers whose destination list has come (M7.2: a joining node serves nothing before it knows them). */
  private readonly catalogFrom = new Set<string>();
  private joined = false;
  private resolveJoining!: () => void;
  private readonly joining = new Promise<void>((r) => (this.resolveJoining = r));
  private readonly mdnsOn: boolean;

  private constructor(
    readonly p2p: MeshLibp2p,
    private readonly init: MeshInit,
    mdns: boolean,
  ) {
    super();
    this.mdnsOn = mdns;
    const o = init.options;
    const log = init.log;
    this.selfId = p2p.peerId.toString();
    this.rf = o.replicationFactor;
    this.ring = new HashRing([this.selfId]);
    this.links = new Links(p2p, log.child({ part: 'links' }));
    this.membership = new Membership(
      p2p,
      {
        cluster: o.clusterName,
        heartbeatIntervalMs: o.heartbeatIntervalMs,
        memberTimeoutMs: o.memberTimeoutMs,
        self: () => this.selfInfo(),
      },
      log.child({ part: 'membership' }),
    );
    this.discovery = new Discovery(
      p2p,
      this.membership,
      { cluster: o.clusterName, localDiscovery: o.localDiscovery, registryDir: o.registryDir, join: o.join },
      log.child({ part: 'discovery' }),
    );
    this.routes = new Routes(
      {
        router: init.router,
        links: this.links,
        selfId: this.selfId,
        localDestinations: () => init.engine.dests.keys(),
        onHeartbeat: (peer, info) => this.membership.onHeartbeat(peer, info),
        onDestinations: (peer, names, snapshot) => {
          for (const n of names) {
            if (this.catalog.has(n)) continue;
            if (this.catalog.size >= MAX_CATALOG_DESTINATIONS) {
              this.init.log.warn(
                { peer, max: MAX_CATALOG_DESTINATIONS },
                'destination catalog full; name ignored',
              );
              break;
            }
            this.catalog.add(n);
            this.handoff.discovered(n, this.ring.owner(placementKey(n)) === this.selfId);
          }
          if (snapshot) {
            this.catalogFrom.add(peer);
            this.checkJoined();
          }
        },
      },
      log.child({ part: 'routes' }),
    );
    this.replicator = new Replicator(
      {
        engine: init.engine,
        links: this.links,
        replicasOf: (d) => this.replicasOf(d),
        writeQuorum: o.writeQuorum,
        observer: init.observer,
      },
      log.child({ part: 'replication' }),
    );
    this.handoff = new Handoff(
      {
        engine: init.engine,
        links: this.links,
        selfId: this.selfId,
        preferenceOf: (d: string) => this.preferenceOf(d),
        peers: () => this.peers(),
        replicationFactor: this.rf,
      },
      log.child({ part: 'handoff' }),
    );
    this.durable = new DurableRouting(
      {
        engine: init.engine,
        links: this.links,
        selfId: this.selfId,
        ownerOf: (d) => this.preferenceOf(d)[0],
        peers: () => this.peers(),
        catalog: this.catalog,
        viewChange: (ms) => this.nextView(ms),
        ready: (d) => (this.joined ? this.handoff.ready(d) : this.joining.then(() => this.handoff.ready(d))),
        placement: (d) => {
          const byId = new Map(this.memberInfo().map((m) => [m.id, m.client]));
          return this.preferenceOf(d).map((id) => ({ id, client: byId.get(id) ?? '' }));
        },
        observer: init.observer,
      },
      log.child({ part: 'durable' }),
    );
  }

  static async start(init: MeshInit): Promise<Mesh> {
    const o = init.options;
    const host = o.meshHost ?? o.host;
    const mdns = o.mdns === 'on' || (o.mdns === 'auto' && !isLoopback(host));
    const admission = new Admission({
      clusterKey: o.clusterKey,
      allowedPeers: o.allowedPeers,
      log: init.log.child({ part: 'admission' }),
    });
    const p2p = await createPeer({
      admission,
      dataDir: o.dataDir,
      host,
      port: meshPort(o),
      cluster: o.clusterName,
      mdns,
      heartbeatIntervalMs: o.heartbeatIntervalMs,
      maxClientConnections: o.clientStreams ? o.maxConnections : 0,
    });
    guardStreamErrors(init.log);
    const mesh = new Mesh(p2p, init, mdns);
    await p2p.start();
    await mesh.routes.start();
    await mesh.replicator.start();
    await mesh.durable.start();
    await mesh.handoff.start();
    if (o.clientStreams && init.clients !== undefined) {
      // SEC6.6: per libp2p connection, no more streams than the node takes clients.
      mesh.clientStreams = clientStreams(
        { maxInboundStreams: o.maxConnections },
        { registrar: p2p, clients: init.clients, log: init.log.child({ part: 'clients' }) },
      );
      await mesh.clientStreams.start();
    }
    init.engine.onCreated = (name) => {
      const owned = mesh.preferenceOf(name)[0] === mesh.selfId;
      // A destination takes the role the current view gives it, however it was created.
      init.engine.setRole(name, owned ? 'owner' : 'replica');
      if (owned) mesh.handoff.created(name);
      mesh.catalog.add(name);
      mesh.routes.announceDestination(name);
    };
    mesh.membership.onBeat = (info) => mesh.routes.heartbeat(info);
    mesh.membership.on('change', () => mesh.onViewChange());
    mesh.membership.on('up', (id: string, restarted: boolean) => {
      mesh.peerUpSeen.delete(id);
      mesh.links.reset(id);
      // A restarted member may have missed changes: it is brought up to date like a new one.
      if (restarted) mesh.restarted.add(id);
    });
    mesh.membership.start();
    mesh.discovery.start();
    mesh.onViewChange();
    // Joining ends once the members this node can expect are in its view and
    // have sent their destination lists, or after a window (M7.2).
    const windowMs = Math.max(JOIN_WINDOW_MIN_MS, 2 * o.heartbeatIntervalMs);
    setTimeout(() => mesh.finishJoin('window'), windowMs).unref();
    mesh.checkJoined();
    mesh.status = 'ready';
    mesh.membership.beat();
    init.log.info(
      {
        peerId: mesh.selfId,
        mesh: p2p.getMultiaddrs().map((a) => a.toString()),
        cluster: o.clusterName,
        mdns,
        clusterKey: o.clusterKey !== undefined,
        allowedPeers: o.allowedPeers.length,
        clientStreams: mesh.clientStreams !== undefined,
        localDiscovery: o.localDiscovery,
        join: o.join,
        replicationFactor: o.replicationFactor,
      },
      'mesh started',
    );
    if (o.clusterKey === undefined) {
      // SEC1.4: said once at start, louder when the mesh is reachable from other machines.
      const level = isLoopback(host) ? 'info' : 'warn';
      init.log[level](
        { host },
        'the mesh has no cluster key: any node that reaches the mesh port can join (set security.cluster_key)',
      );
    }
    mesh.admission = admission;
    return mesh;
  }

  /** Replication toward each replica, for metrics (METRICS.md MT2.5): unconfirmed messages per peer, totals. */
  replicationState(): { backlog: ReadonlyMap<string, number>; replicated: number; failures: number } {
    const r = this.replicator;
    return { backlog: r.backlog, replicated: r.replicated, failures: r.failures };
  }

  /** Live member ids, this node included. */
  members(): string[] {
    return this.membership.liveIds();
  }

  /** Client addresses of the live members, this node first; leaving members (this one too) are left out. */
  clientUrls(): string[] {
    const others = [...this.membership.members.values()].filter((m) => m.status !== 'leaving');
    return [...(this.membership.leaving ? [] : [this.init.clientAddress]), ...others.map((m) => m.client)];
  }

  /** M2.5: the ring this node computes owners with, and how to reach its members. */
  clusterView(): ClusterView {
    const ring = this.ring;
    const known = new Map(this.memberInfo().map((m) => [m.id, m]));
    return {
      self: this.selfId,
      rf: Math.min(this.rf, ring.size),
      vnodes: ring.vnodes,
      // ring.members is sorted: every node lists the same view in the same order.
      members: ring.members.map((id) => {
        const m = known.get(id);
        const client = m?.client ?? '';
        return {
          id,
          client: client.length <= MAX_VIEW_ADDR_CHARS ? client : '',
          mesh: viewAddrs(id, m?.mesh ?? []),
        };
      }),
    };
  }

  memberInfo(): MemberInfo[] {
    return [this.selfInfo(), ...this.membership.members.values()];
  }

  /** For /meshz: the other members as last heard, and those seen before that are gone (kept for re-dials, M1.6). */
  peerMembers(): { live: Member[]; departed: { id: string; mesh: string[]; lastSeenMs: number }[] } {
    const live = [...this.membership.members.values()];
    const departed = [...this.membership.known]
      .filter(([id]) => !this.membership.members.has(id))
      .map(([id, k]) => ({ id, mesh: k.mesh, lastSeenMs: k.lastSeenMs }));
    return { live, departed };
  }

  /** For /meshz: whether a libp2p connection to `peer` is open, its open streams, its circuit (M5.6). */
  linkState(peer: string): { connected: boolean } & ReturnType<Links['state']> {
    const connected = this.p2p.getConnections().some((c) => c.remotePeer.toString() === peer);
    return { connected, ...this.links.state(peer) };
  }

  /** cluster.replication_factor as configured (a preference list is capped at the view's size, M3.1). */
  get replicationFactor(): number {
    return this.rf;
  }

  /** The destination's preference list in the current view (cached until the view changes: it is asked per message). */
  preferenceOf(destination: string): string[] {
    let list = this.placements.get(destination);
    if (list === undefined) {
      if (this.placements.size >= MAX_CACHED_PLACEMENTS) this.placements.clear();
      list = this.ring.preferenceList(placementKey(destination), this.rf);
      this.placements.set(destination, list);
    }
    return list;
  }

  private peers(): string[] {
    return [...this.membership.members.keys()];
  }

  private replicasOf(destination: string): string[] {
    return this.preferenceOf(destination).filter((id) => id !== this.selfId && !this.links.isOpen(id));
  }

  private selfInfo(): MemberInfo {
    return {
      id: this.selfId,
      cluster: this.init.options.clusterName,
      name: this.init.name,
      client: this.init.clientAddress,
      mesh: this.p2p.getMultiaddrs().map((a) => a.toString()),
      version: VERSION,
      status: this.status,
      startedAtMs: this.startedAtMs,
      load: this.init.load(),
    };
  }

  private checkJoined(): void {
    if (this.joined) return;
    const members = this.membership.members;
    const expectMore = this.mdnsOn || this.discovery.searching;
    for (const id of this.discovery.registered) if (!members.has(id)) return;
    for (const id of members.keys()) if (!this.catalogFrom.has(id)) return;
    if (expectMore && members.size === 0) return;
    this.finishJoin('view complete');
  }

  /** Whether this node has joined (M7.2): it serves what it owns from then on. */
  get hasJoined(): boolean {
    return this.joined;
  }

  /** Live members, this node included. */
  get memberCount(): number {
    return this.membership.liveIds().length;
  }

  private finishJoin(why: string): void {
    if (this.joined) return;
    this.joined = true;
    this.resolveJoining();
    this.init.log.info({ members: this.membership.liveIds().length, why }, 'joined the mesh');
  }

  private nextView(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.viewWaiters.push(done);
    });
  }

  private onViewChange(): void {
    const live = this.membership.liveIds();
    const ring = new HashRing(live);
    const changed = !ring.equals(this.ring);
    const before = this.ring;
    this.ring = ring;
    this.placements.clear();
    // Links and core routes follow the members, leaving ones included: a
    // leaving member still serves its clients and is merged from (OPS1.3).
    const present = this.membership.members;
    for (const id of this.peerUpSeen) {
      if (!present.has(id)) {
        this.routes.peerDown(id);
        this.links.forget(id);
        this.peerUpSeen.delete(id);
      }
    }
    for (const id of present.keys()) {
      if (this.peerUpSeen.has(id)) continue;
      this.peerUpSeen.add(id);
      void this.routes.peerUp(id);
    }
    // Each stored destination: owned here, or a replica (M5.1, M5.5).
    for (const name of this.init.engine.dests.keys()) {
      const owner = ring.owner(placementKey(name));
      this.init.engine.setRole(name, owner === this.selfId ? 'owner' : 'replica');
    }
    if (changed) this.init.log.info({ members: live.length, ids: live }, 'cluster view changed');
    if (changed || this.restarted.size > 0) {
      const seen =
        this.restarted.size === 0
          ? before
          : new HashRing(before.members.filter((id) => !this.restarted.has(id)));
      this.restarted.clear();
      this.handoff.viewChanged(seen, ring, new Set([...this.init.engine.dests.keys(), ...this.catalog]));
    }
    this.checkJoined();
    for (const w of this.viewWaiters.splice(0)) w();
    this.emit('view', ring);
  }

  /**
   * OPS1.3: leaves the ring but stays a peer, so the next members take over
   * what this node owned or replicated and merge its copies; each releases
   * its copy here once merged ('forget'). Resolves once this node holds no
   * destination, no other member is left to take over, or at the deadline.
   */
  async leave(timeoutMs: number): Promise<LeaveResult> {
    const started = Date.now();
    const others = () => [...this.membership.members.values()].filter((m) => m.status !== 'leaving').length;
    if (others() === 0)
      return {
        handedOver: false,
        remaining: this.init.engine.dests.size,
        ms: 0,
        why: 'no member to take over',
      };
    this.status = 'leaving';
    this.membership.leaving = true;
    this.membership.beat();
    this.onViewChange();
    const held = this.init.engine.dests.size;
    this.init.log.info(
      { destinations: held, members: others() },
      'leaving the mesh: handing destinations over',
    );
    let lastLogMs = started;
    while (this.init.engine.dests.size > 0 && others() > 0 && Date.now() - started < timeoutMs) {
      await new Promise((r) => setTimeout(r, LEAVE_POLL_MS));
      if (Date.now() - lastLogMs >= LEAVE_PROGRESS_MS) {
        lastLogMs = Date.now();
        this.init.log.info({ remaining: this.init.engine.dests.size, of: held }, 'handing over');
      }
    }
    const remaining = this.init.engine.dests.size;
    if (remaining > 0) {
      const held = [...this.init.engine.dests.values()].slice(0, 10);
      this.init.log.warn(
        { destinations: held.map((d) => `${d.name}:${d.msgs.size}`) },
        'leaving with destinations not handed over',
      );
    }
    const why = remaining === 0 ? 'handed over' : others() === 0 ? 'no member left to take over' : 'deadline';
    return { handedOver: remaining === 0, remaining, ms: Date.now() - started, why };
  }

  async stop(): Promise<void> {
    this.status = 'leaving';
    this.membership.beat();
    this.membership.stop();
    this.discovery.stop();
    this.routes.stop();
    this.replicator.stop();
    this.handoff.stop();
    await this.clientStreams?.stop();
    await this.links.stop();
    await this.p2p.stop();
  }
}
