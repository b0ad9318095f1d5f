/**
 * Node.js process metrics (prom-client's default set: CPU, memory, event-loop
 * lag, GC, handles) in a registry of their own, shared by every node of the
 * process (MT1.3). They describe the process, not a node; and
 * collectDefaultMetrics starts a GC observer and an event-loop monitor that
 * nothing can stop, so calling it per node would leak one set per node
 * started (tests start dozens in one process) and a second call on one
 * registry throws on the duplicate names. Never the global default registry.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';

let shared: Registry | undefined;

/** The process-wide registry of default metrics, made on first use. */
export function processRegistry(): Registry {
  if (shared === undefined) {
    shared = new Registry();
    collectDefaultMetrics({ register: shared });
  }
  return shared;
}
