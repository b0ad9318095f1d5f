/**
 * `/meshz` (protocol/MONITORING.md section 6): this node's view of the
 * mesh. The members as their heartbeats describe them (protocol/MESH.md
 * M2.1) with how long ago each was heard, the link and circuit breaker to
 * each (M5.6), the ring (M3.2) with each member's share of it, and who owns
 * and replicates every destination this node knows of (M3.3, M3.4), paged.
 * With `stats=1` each listed destination also carries the depth and group
 * progress its owner reports (the fan-out DESTS makes, M4.5).
 */
import type { DestinationInfo } from '../durable/types.js';
import type { Mesh } from '../mesh/mesh.js';
import type { MemberInfo } from '../mesh/membership.js';
import { MAX_DEPARTED_LISTED } from './constants.js';
import type { NodeView } from './endpoints.js';
import type { Query } from './query.js';
import type { EndpointReply } from './server.js';

export const MESHZ_PARAMS = ['offset', 'limit', 'dest', 'stats'] as const;

export async function meshz(view: NodeView, q: Query): Promise<EndpointReply> {
  const page = q.page();
  const dest = q.text('dest');
  const stats = q.flag('stats');
  const now = Date.now();
  const head = {
    server_id: view.server.serverId,
    name: view.server.name,
    now: new Date(now).toISOString(),
  };
  const mesh = view.mesh;
  if (mesh === undefined) return { json: { ...head, mesh_enabled: false } };
  const ring = mesh.ring;
  // Every name this node knows: its own destinations and the catalog other members announced (M3.4).
  const names =
    dest !== undefined ? [dest] : [...new Set([...view.durable.dests.keys(), ...mesh.catalog])].sort();
  const chosen = names.slice(page.offset, page.offset + page.limit);
  const reported = stats ? await ownerReports(mesh) : undefined;
  return {
    json: {
      ...head,
      mesh_enabled: true,
      peer_id: mesh.selfId,
      cluster: view.options.clusterName,
      joined: mesh.hasJoined,
      replication_factor: mesh.replicationFactor,
      write_quorum: view.options.writeQuorum,
      ring: { members: ring.size, vnodes_per_member: ring.vnodes, points: ring.size * ring.vnodes },
      members: members(mesh, now),
      departed: departed(mesh, now),
      total: names.length,
      offset: page.offset,
      limit: page.limit,
      destinations: chosen.map((name) => placement(view, mesh, name, reported)),
    },
  };
}

/** Every member in the view and those leaving, this node included, by name. */
function members(mesh: Mesh, now: number): Record<string, unknown>[] {
  const ring = mesh.ring;
  const self = mesh.memberInfo()[0]!;
  const rows = [
    member(self, { self: true, seenAtMs: now }),
    ...mesh.peerMembers().live.map((m) => member(m, { self: false, seenAtMs: m.seenAtMs })),
  ];
  function member(m: MemberInfo, at: { self: boolean; seenAtMs: number }): Record<string, unknown> {
    const inRing = ring.members.includes(m.id);
    const link = at.self ? undefined : mesh.linkState(m.id);
    return {
      peer_id: m.id,
      name: m.name,
      self: at.self,
      client: m.client,
      mesh: m.mesh,
      status: m.status,
      version: m.version,
      started: new Date(m.startedAtMs).toISOString(),
      last_seen: new Date(at.seenAtMs).toISOString(),
      heartbeat_age_ms: Math.max(0, now - at.seenAtMs),
      in_ring: inRing,
      vnodes: inRing ? ring.vnodes : 0,
      ring_share: round(ring.share(m.id)),
      load: {
        connections: m.load.connections,
        destinations: m.load.destinations,
        rss_bytes: m.load.rssBytes,
      },
      link:
        link === undefined
          ? null
          : {
              connected: link.connected,
              streams: link.protocols,
              breaker: {
                state: link.breaker.open ? 'open' : 'closed',
                failures: link.breaker.failures,
                open_for_ms: link.breaker.openForMs,
              },
            },
    };
  }
  return rows.sort(
    (a, b) => cmp(String(a.name), String(b.name)) || cmp(String(a.peer_id), String(b.peer_id)),
  );
}

/** Members seen before that are gone from the view, most recent first (kept for re-dials, M1.6). */
function departed(mesh: Mesh, now: number): Record<string, unknown>[] {
  return mesh
    .peerMembers()
    .departed.sort((a, b) => b.lastSeenMs - a.lastSeenMs)
    .slice(0, MAX_DEPARTED_LISTED)
    .map((d) => ({
      peer_id: d.id,
      mesh: d.mesh,
      last_seen: new Date(d.lastSeenMs).toISOString(),
      gone_for_ms: Math.max(0, now - d.lastSeenMs),
    }));
}

/** Owner and replicas in this node's view (what OWNER answers, M3.3), and this node's role. */
function placement(
  view: NodeView,
  mesh: Mesh,
  name: string,
  reported: Map<string, DestinationInfo> | undefined,
): Record<string, unknown> {
  const [owner, ...replicas] = mesh.preferenceOf(name);
  const here = view.durable.dests.get(name)?.role ?? null;
  const out: Record<string, unknown> = {
    name,
    known: here !== null || mesh.catalog.has(name),
    owner: owner ?? null,
    replicas,
    here,
  };
  if (reported !== undefined) {
    const d = reported.get(name);
    out.stats =
      d === undefined
        ? null
        : {
            depth: d.depth,
            bytes: d.bytes,
            last_seq: d.lastSeq,
            groups: d.groups.map((g) => ({
              name: g.name,
              lag: g.pending,
              in_flight: g.inFlight,
              acked: g.acked,
            })),
          };
  }
  return out;
}

/**
 * What each destination's owner reports of it: every member lists the
 * destinations it owns (DESTS, M4.5; each member bounded by the link's
 * request timeout). A member that does not answer leaves its destinations
 * without stats.
 */
async function ownerReports(mesh: Mesh): Promise<Map<string, DestinationInfo>> {
  const list = await mesh.durable.list();
  return new Map(list.map((d) => [d.name, d]));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function round(x: number): number {
  return Math.round(x * 1_000_000) / 1_000_000;
}
