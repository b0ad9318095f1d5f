/**
 * A node's Prometheus metrics (protocol/METRICS.md), served as `/metrics` on
 * the monitoring port. Each node has a registry of its own (several nodes
 * run in one test process; the global default registry is never used); the
 * process metrics come from one registry shared by the process (process.ts).
 *
 * The node makes this object first, hands `timings` to its parts as their
 * observer hooks, and attaches the parts once they run; everything else is
 * read from the parts when Prometheus scrapes (MT1.2).
 */
import { Gauge, Registry } from 'prom-client';
import type { DurableEngine } from '../durable/engine.js';
import type { Mesh } from '../mesh/mesh.js';
import type { ClientServer } from '../server/server.js';
import type { Scrape } from './collect.js';
import { MEMORY_BUDGET_BYTES } from './constants.js';
import { registerDurableMetrics } from './durable.js';
import { registerMeshMetrics } from './mesh.js';
import { processRegistry } from './process.js';
import { registerServerMetrics } from './server.js';
import { Timings } from './timings.js';

/** What the scrape-time metrics read. */
export interface MetricsParts {
  readonly server: ClientServer;
  readonly durable: DurableEngine;
  readonly mesh: Mesh | undefined;
  /** storage.max_disk_usage, exported so an alert can divide by it (MT4.1). */
  readonly maxDiskBytes: number;
}

export class NodeMetrics {
  readonly registry = new Registry();
  /** The latency hooks the session, the engine and the mesh call (timings.ts). */
  readonly timings = new Timings(this.registry);
  private readonly scrape: Scrape = { generation: 0 };
  private attached = false;

  constructor() {
    new Gauge({
      name: 'swarmmq_process_memory_budget_bytes',
      help: 'Resident memory a node is meant to stay under (the architecture: 512 MB); the alert divides process_resident_memory_bytes by it.',
      registers: [this.registry],
    }).set(MEMORY_BUDGET_BYTES);
  }

  /** Registers the scrape-time metrics of the running parts; once. */
  attach(parts: MetricsParts): void {
    if (this.attached) throw new Error('NodeMetrics.attach: already attached');
    this.attached = true;
    registerServerMetrics(this.registry, this.scrape, parts.server);
    registerDurableMetrics(this.registry, this.scrape, parts.durable, parts.maxDiskBytes);
    registerMeshMetrics(this.registry, this.scrape, parts.mesh, this.timings);
  }

  /** The exposition text (Prometheus 0.0.4 format): this node's metrics, then the process's. */
  async reply(): Promise<{ text: string; contentType: string }> {
    this.scrape.generation++;
    const [node, proc] = await Promise.all([this.registry.metrics(), processRegistry().metrics()]);
    return { text: node + proc, contentType: this.registry.contentType };
  }
}
