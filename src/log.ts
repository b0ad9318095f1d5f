/**
 * Structured logging (pino). Components take a child logger
 * (`component: 'server'`, then `cid` per connection); per-message events go
 * at trace. Secrets never reach a log call: options are logged through
 * `loggableOptions`, which lists what may be shown.
 *
 * Lines are JSON, or human-readable for a terminal (`node.log_format`).
 * Either way they are written synchronously in-process, so they keep their
 * order and none is lost when the process exits right after logging.
 *
 * The level can change while the node runs (SEC2.6): `setLogLevel` sets it on
 * the root and on every child made from it so far, connections included.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import PinoPretty from 'pino-pretty';
import type { LogFormat, LogLevel, NodeOptions } from './config/options.js';

export type { Logger };

/** The live children of each root made by createLogger, so a level change reaches them. */
const childrenOf = new WeakMap<Logger, Set<WeakRef<Logger>>>();
/** Drops a child's entry once its logger (a closed connection's, say) is collected. */
const forget = new FinalizationRegistry<{ set: Set<WeakRef<Logger>>; ref: WeakRef<Logger> }>(({ set, ref }) =>
  set.delete(ref),
);

/**
 * A root logger on stdout, or on `destination` (tests). `auto` is pretty
 * only on stdout that is a terminal.
 */
export function createLogger(
  level: LogLevel,
  destination?: DestinationStream,
  format: LogFormat = 'json',
): Logger {
  const children = new Set<WeakRef<Logger>>();
  const opts = {
    level,
    base: { pid: process.pid },
    // pino calls this for children of children too (the hook is inherited).
    onChild: (child: Logger): void => {
      const ref = new WeakRef(child);
      children.add(ref);
      forget.register(child, { set: children, ref });
    },
  };
  const pretty = resolveLogFormat(format, destination === undefined && process.stdout.isTTY) === 'pretty';
  const root = pino(
    opts,
    pretty ? prettyStream(destination) : (destination ?? pino.destination({ dest: 1, sync: true })),
  );
  childrenOf.set(root, children);
  return root;
}

/** `auto` becomes pretty on a terminal and JSON anywhere else (a pipe, a file, `swarmmq cluster`). */
export function resolveLogFormat(format: LogFormat, isTty: boolean): 'json' | 'pretty' {
  return format === 'auto' ? (isTty ? 'pretty' : 'json') : format;
}

/**
 * SEC2.6: a new level for a root logger and every child made from it,
 * including connections opened before the change. A child pino made with
 * its own level would otherwise keep it for life.
 */
export function setLogLevel(root: Logger, level: LogLevel): void {
  root.level = level;
  for (const ref of childrenOf.get(root) ?? []) {
    const child = ref.deref();
    if (child !== undefined) child.level = level;
  }
}

/**
 * One line per event: time, level, `component:` and the message, then the
 * other fields as compact JSON. A synchronous stream in this process rather
 * than a worker transport, so lines written just before exit are not lost.
 */
function prettyStream(destination: DestinationStream | undefined): DestinationStream {
  return PinoPretty({
    sync: true,
    destination: destination ?? 1,
    singleLine: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,component',
    messageFormat: '{if component}{component}: {end}{msg}',
  });
}

/** The options worth a log line at startup; add here only values that are never secret. */
export function loggableOptions(o: NodeOptions): Record<string, unknown> {
  return {
    host: o.host,
    port: o.port,
    dataDir: o.dataDir,
    cluster: o.clusterName,
    logLevel: o.logLevel,
    maxPayloadBytes: o.maxPayloadBytes,
    maxConnections: o.maxConnections,
    maxPendingBytes: o.maxPendingBytes,
  };
}
