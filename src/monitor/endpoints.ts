/**
 * What the monitoring port shows (the HTTP side is src/monitor/server.ts):
 * `/healthz` (the process serves), `/readyz` (it can serve what it owns:
 * listening and, in a cluster, joined the mesh) and `/varz` (the node's
 * counters and limits). Every document is plain data built from the node's
 * parts at request time, and never holds a secret.
 */
import type { NodeOptions } from '../config/options.js';
import type { DurableEngine } from '../durable/engine.js';
import type { Mesh } from '../mesh/mesh.js';
import type { ClientServer } from '../server/server.js';
import { VERSION } from '../version.js';
import type { Endpoint } from './server.js';

/** The parts of a node the endpoints read. */
export interface NodeView {
  readonly options: NodeOptions;
  readonly server: ClientServer;
  readonly durable: DurableEngine;
  readonly mesh: Mesh | undefined;
  readonly startedAt: Date;
  readonly monitorPort: () => number | undefined;
}

/** Every endpoint of a node, in the order a 404 lists them. */
export function nodeEndpoints(view: NodeView): Map<string, Endpoint> {
  return new Map<string, Endpoint>([
    ['/healthz', () => ({ json: { status: 'ok' } })],
    ['/readyz', () => readyz(view)],
    ['/varz', () => ({ json: varz(view) })],
  ]);
}

function readyz(view: NodeView): { status: number; json: unknown } {
  const m = view.mesh;
  if (m === undefined || m.hasJoined) return { status: 200, json: { status: 'ready' } };
  return { status: 503, json: { status: 'not ready', why: 'joining the mesh' } };
}

/** The `/varz` document: counters and settings, never a secret. */
function varz(view: NodeView): Record<string, unknown> {
  const { options: o, server, durable, mesh } = view;
  const s = server.stats();
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
    limits: {
      max_payload: o.maxPayloadBytes,
      max_control_line: o.maxControlLineBytes,
      max_connections: o.maxConnections,
      max_connection_rate: o.maxConnectionRate,
      max_subscriptions: o.maxSubscriptions,
      max_subscription_tokens: o.maxSubscriptionTokens,
      max_pending: o.maxPendingBytes,
      max_total_pending: o.maxTotalPendingBytes,
    },
    mem: { rss_bytes: mem.rss, heap_used_bytes: mem.heapUsed },
  };
}
