/**
 * Mesh metrics (MT2.5), read at scrape time: the live members, this node's
 * share of the ring, and replication toward each peer. A standalone node
 * reports itself: one member owning the whole ring, nothing to replicate.
 */
import type { Registry } from 'prom-client';
import type { Mesh } from '../mesh/mesh.js';
import { counterFrom, gaugeFrom, gaugeRowsFrom, PerScrape, type Scrape } from './collect.js';
import type { Timings } from './timings.js';

export function registerMeshMetrics(
  registry: Registry,
  scrape: Scrape,
  mesh: Mesh | undefined,
  timings: Timings,
): void {
  const view = new PerScrape(scrape, () => {
    if (mesh === undefined) return undefined;
    // MT3.4: series of peers that left go with them.
    timings.prunePeers(new Set(mesh.memberInfo().map((m) => m.id)));
    return mesh.replicationState();
  });
  gaugeFrom(
    registry,
    'swarmmq_mesh_members',
    "Live members in this node's view, this node included (1 for a standalone node).",
    () => (mesh === undefined ? 1 : mesh.memberCount),
  );
  gaugeFrom(
    registry,
    'swarmmq_mesh_ring_share_ratio',
    'Fraction (0-1) of the hash ring this node owns as first choice (M3.2); the members of one view sum to 1.',
    () => (mesh === undefined ? 1 : mesh.ring.share(mesh.selfId)),
  );
  gaugeRowsFrom(
    registry,
    'swarmmq_mesh_replication_backlog_messages',
    'Stored messages sent to a replica and not yet confirmed synced by it, by replica peer id.',
    ['peer'],
    () => [...(view.get()?.backlog ?? [])].map(([peer, n]) => [{ peer }, n] as const),
  );
  counterFrom(
    registry,
    'swarmmq_mesh_replicated_total',
    'Stored messages this node, as owner, copied to its replicas (M5.2).',
    () => view.get()?.replicated ?? 0,
  );
  counterFrom(
    registry,
    'swarmmq_mesh_replication_failures_total',
    'Copies of a message a replica did not confirm (failed, timed out, or its circuit was open).',
    () => view.get()?.failures ?? 0,
  );
  counterFrom(
    registry,
    'swarmmq_mesh_forwarded_total',
    "Durable calls this node forwarded to a destination's owner (M4.5), retries included.",
    () => mesh?.durable.forwarded ?? 0,
  );
}
