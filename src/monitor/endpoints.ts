/**
 * What the monitoring port shows (the HTTP side is src/monitor/server.ts;
 * protocol/MONITORING.md documents each): `/healthz` (the process serves),
 * `/readyz` (it can serve what it owns: listening and, in a cluster, joined
 * the mesh), `/varz` (the node's counters and limits), and the NATS-style
 * lists `/connz`, `/subsz`, `/meshz` and `/destz`, each built in its own
 * file. Every document is plain data built from the node's parts at request
 * time, and never holds a secret (MON1.2).
 */
import type { NodeOptions } from '../config/options.js';
import type { DurableEngine } from '../durable/engine.js';
import type { Mesh } from '../mesh/mesh.js';
import type { NodeMetrics } from '../metrics/registry.js';
import type { ClientServer } from '../server/server.js';
import { VERSION } from '../version.js';
import { CONNZ_PARAMS, connz } from './connz.js';
import { DESTZ_PARAMS, destz } from './destz.js';
import { MESHZ_PARAMS, meshz } from './meshz.js';
import { withQuery } from './query.js';
import type { Endpoint } from './server.js';
import { SUBSZ_PARAMS, subsz } from './subsz.js';

/** The parts of a node the endpoints read. */
export interface NodeView {
  readonly options: NodeOptions;
  readonly server: ClientServer;
  readonly durable: DurableEngine;
  readonly mesh: Mesh | undefined;
  readonly startedAt: Date;
  readonly monitorPort: () => number | undefined;
  /** Prometheus metrics (protocol/METRICS.md). */
  readonly metrics: NodeMetrics;
}

/** Every endpoint of a node, in the order a 404 lists them. */
export function nodeEndpoints(view: NodeView): Map<string, Endpoint> {
  return new Map<string, Endpoint>([
    ['/healthz', () => ({ json: { status: 'ok' } })],
    ['/readyz', () => readyz(view)],
    ['/varz', () => ({ json: varz(view) })],
    ['/metrics', () => view.metrics.reply()],
    ['/connz', withQuery(CONNZ_PARAMS, (q) => connz(view, q))],
    ['/subsz', withQuery(SUBSZ_PARAMS, (q) => subsz(view, q))],
    ['/meshz', withQuery(MESHZ_PARAMS, (q) => meshz(view, q))],
    ['/destz', withQuery(DESTZ_PARAMS, (q) => destz(view, q))],
  ]);
}

function readyz(view: NodeView): { status: number; json: unknown } {
  const m = view.mesh;
  // Stopping: the client port is closed, so balancers must send nobody here (OPS1.2).
  if (view.server.stopping) return { status: 503, json: { status: 'not ready', why: 'stopping' } };
  if (m === undefined || m.hasJoined) return { status: 200, json: { status: 'ready' } };
  return { status: 503, json: { status: 'not ready', why: 'joining the mesh' } };
}

/** The `/varz` document: counters and settings, never a secret. */
function varz(view: NodeView): Record<string, unknown> {
  const { options: o, server, durable, mesh } = view;
  const s = server.stats();
  const l = server.limits;
  const mem = process.memoryUsage();
  return {
    server_id: server.serverId,
    server_name: server.name,
    version: VERSION,
    cluster: o.clusterName,
    host: server.host,
    port: server.port,
    monitor_port: view.monitorPort(),
    start: view.startedAt.toISOString(),
    now: new Date().toISOString(),
    uptime_s: Math.round((Date.now() - view.startedAt.getTime()) / 1000),
    auth_required: server.auth !== undefined,
    tls_required: o.tlsCertFile !== undefined,
    connections: s.connections,
    total_connections: s.totalConnections,
    subscriptions: s.subscriptions,
    in_bytes: s.bytesIn,
    out_bytes: s.bytesOut,
    closes: s.closes,
    durable: { destinations: durable.dests.size, ...durable.stats },
    mesh:
      mesh === undefined
        ? null
        : {
            peer_id: mesh.selfId,
            members: mesh.memberCount,
            joined: mesh.hasJoined,
            refused_connections: mesh.admission?.refused ?? {},
          },
    // The limits in force: a reload may have changed them since the start (OPS2.2).
    limits: {
      max_payload: l.maxPayloadBytes,
      max_control_line: l.maxControlLineBytes,
      max_connections: l.maxConnections,
      max_connection_rate: l.maxConnectionRate,
      max_subscriptions: l.maxSubscriptions,
      max_subscription_tokens: l.maxSubscriptionTokens,
      max_pending: l.maxPendingBytes,
      max_total_pending: l.maxTotalPendingBytes,
    },
    mem: { rss_bytes: mem.rss, heap_used_bytes: mem.heapUsed },
  };
}
