/**
 * Structured logging (pino, JSON lines). Components take a child logger
 * (`component: 'server'`, then `cid` per connection); per-message events go
 * at trace. Secrets never reach a log call: options are logged through
 * `loggableOptions`, which lists what may be shown.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel, NodeOptions } from './config/options.js';

export type { Logger };

export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const opts = { level, base: { pid: process.pid } };
  // Synchronous writes to stdout: lines keep their order and none are lost at exit.
  return pino(opts, destination ?? pino.destination({ dest: 1, sync: true }));
}

/** The options worth a log line at startup; add here only values that are never secret. */
export function loggableOptions(o: NodeOptions): Record<string, unknown> {
  return {
    host: o.host,
    port: o.port,
    dataDir: o.dataDir,
    cluster: o.clusterName,
    maxPayloadBytes: o.maxPayloadBytes,
    maxConnections: o.maxConnections,
    maxPendingBytes: o.maxPendingBytes,
  };
}
