/**
 * A SwarmMQ node: options in, data dir checked, client server bound, and a
 * clean stop. The CLI and tests both start nodes through `startNode`.
 */
import { mkdirSync, statSync, accessSync, constants as fsc } from 'node:fs';
import path from 'node:path';
import { StartupError } from './errors.js';
import { createLogger, loggableOptions, setLogLevel, type Logger } from './log.js';
import type { NodeOptions } from './config/options.js';
import { ClientServer } from './server/server.js';
import { clientLimits, isLiveLimit, LIVE_LIMIT_KEYS } from './server/limits.js';
import { resolveMasterKey } from './crypto/master-key.js';
import { KeyRing } from './crypto/seal.js';
import { DurableEngine } from './durable/engine.js';
import { VERSION } from './version.js';
import { Mesh } from './mesh/mesh.js';
import { DRAIN_SENDS_TIMEOUT_MS, LEAVE_TIMEOUT_MS, MONITOR_PORT_OFFSET } from './config/defaults.js';
import { MonitorServer } from './monitor/server.js';
import { nodeEndpoints } from './monitor/endpoints.js';
import { NodeMetrics } from './metrics/registry.js';

export interface StartNodeInit {
  options: NodeOptions;
  /** A logger to use instead of one on stdout at the options' level. */
  logger?: Logger;
}

export interface SwarmNode {
  readonly options: NodeOptions;
  readonly server: ClientServer;
  readonly durable: DurableEngine;
  /** The node's mesh; undefined for a standalone node (cluster.enabled false). */
  readonly mesh: Mesh | undefined;
  readonly log: Logger;
  /** host:port of the client port. */
  readonly clientAddress: string;
  /** The monitoring endpoints; undefined when monitor.enabled is false. */
  readonly monitor: MonitorServer | undefined;
  /** The options in force: the start options, with what reloads changed (SECURITY.md SEC2.6). */
  readonly current: NodeOptions;
  /**
   * SEC2.6: applies what can change without a restart (keys, users and
   * permissions, the log level, the client limits of server/limits.ts) and
   * reports every other changed key as needing a restart.
   */
  reload(next: NodeOptions): ReloadResult;
  /**
   * Stops the node. With `graceful` (SIGTERM/SIGINT, OPS1.2-OPS1.4): stop
   * accepting clients, hand this node's destinations to the next members,
   * answer the sends already taken, then close clients, store and mesh.
   * Without it: close at once (what replicas hold covers what this node had).
   */
  stop(opts?: StopOptions): Promise<void>;
}

export interface StopOptions {
  readonly graceful?: boolean;
  /** @default LEAVE_TIMEOUT_MS */
  readonly leaveTimeoutMs?: number;
}

export interface ReloadResult {
  /** Option keys applied (never their values: some are secrets). */
  readonly applied: readonly string[];
  /** Option keys that changed but take a restart. */
  readonly needRestart: readonly string[];
  /** Connections closed because their key or user is gone. */
  readonly closed: number;
}

/** Options a reload applies (SEC2.6); everything else takes a restart. */
const RELOADABLE: ReadonlySet<keyof NodeOptions> = new Set<keyof NodeOptions>([
  'auth',
  'logLevel',
  ...LIVE_LIMIT_KEYS,
]);
/** Reloadable options whose values stay out of the log: only their key is named. */
const SECRET_RELOADABLE: ReadonlySet<keyof NodeOptions> = new Set<keyof NodeOptions>(['auth']);

/** Starts a node; rejects with StartupError when the data dir or port is unusable. */
export async function startNode(init: StartNodeInit): Promise<SwarmNode> {
  const options = init.options;
  const log = init.logger ?? createLogger(options.logLevel, undefined, options.logFormat);
  prepareDataDir(options.dataDir);
  const ring = new KeyRing(
    resolveMasterKey(options.masterKey, options.dataDir, log.child({ component: 'crypto' })),
  );
  const durable = await openEngine(options, ring, log.child({ component: 'durable' }));
  const server = new ClientServer(options, log.child({ component: 'server' }), durable);
  // Made before any client or peer can arrive: the parts report their timings to it (METRICS.md MT1.1).
  // Without a monitoring port nobody reads them, so the parts keep none (no clock reads per message).
  const metrics = options.monitorEnabled ? new NodeMetrics() : undefined;
  server.observer = metrics?.timings;
  durable.observer = metrics?.timings;
  let mesh: Mesh | undefined;
  let monitor: MonitorServer | undefined;
  const startedAt = new Date();
  try {
    await server.listen();
    if (options.meshEnabled) mesh = await startMesh(options, server, durable, log, metrics);
    if (metrics !== undefined) {
      metrics.attach({ server, durable, mesh, maxDiskBytes: options.maxDiskBytes });
      const view = { options, server, durable, mesh, metrics, startedAt, monitorPort: () => monitor?.port };
      monitor = new MonitorServer({
        host: options.monitorHost ?? options.host,
        port: monitorPort(options, server.port),
        log: log.child({ component: 'monitor' }),
        endpoints: nodeEndpoints(view),
      });
      await monitor.listen();
    }
  } catch (err) {
    await mesh?.stop();
    await server.close();
    await durable.close();
    throw err;
  }
  const clientAddress = `${server.host}:${server.port}`;
  log.info(
    {
      version: VERSION,
      name: server.name,
      client: clientAddress,
      host: server.host,
      port: server.port,
      ...(monitor === undefined ? {} : { monitor: `${options.monitorHost ?? server.host}:${monitor.port}` }),
      options: loggableOptions(options),
    },
    'node started',
  );
  let stopping: Promise<void> | undefined;
  let current = options;
  return {
    options,
    get current() {
      return current;
    },
    reload(next) {
      const changed = (Object.keys(next) as (keyof NodeOptions)[]).filter(
        (k) => !sameValue(current[k], next[k]),
      );
      const applied = changed.filter((k) => RELOADABLE.has(k));
      const needRestart = changed.filter((k) => !RELOADABLE.has(k));
      const before = current;
      current = Object.freeze({ ...current, ...Object.fromEntries(applied.map((k) => [k, next[k]])) });
      let closed = 0;
      if (applied.includes('auth')) closed = server.reloadAuth(current.auth).closed;
      if (applied.some(isLiveLimit)) server.setLimits(clientLimits(current));
      if (applied.includes('maxPendingBytes')) durable.maxPullBytes = pullBytes(current.maxPendingBytes);
      const changes = Object.fromEntries(
        applied.filter((k) => !SECRET_RELOADABLE.has(k)).map((k) => [k, { from: before[k], to: current[k] }]),
      );
      const report = (): void =>
        log.info({ applied, needRestart, changes, closedConnections: closed }, 'configuration reloaded');
      // The line is logged on whichever side of a level change lets an info line through.
      if (!applied.includes('logLevel')) report();
      else if (log.isLevelEnabled('info')) {
        report();
        setLogLevel(log, current.logLevel);
      } else {
        setLogLevel(log, current.logLevel);
        report();
      }
      return { applied, needRestart, closed };
    },
    server,
    durable,
    mesh,
    log,
    clientAddress,
    monitor,
    stop(opts = {}) {
      stopping ??= (async () => {
        const started = Date.now();
        log.info({ connections: server.connections.size, graceful: opts.graceful === true }, 'node stopping');
        if (opts.graceful === true)
          await leaveGracefully(server, mesh, opts.leaveTimeoutMs ?? LEAVE_TIMEOUT_MS, log);
        await monitor?.close();
        await server.close();
        await mesh?.stop();
        await durable.close();
        log.info({ ms: Date.now() - started }, 'node stopped');
      })();
      return stopping;
    },
  };
}

/** OPS1.2-OPS1.3: no new clients, destinations handed over, taken sends answered; every step bounded. */
async function leaveGracefully(
  server: ClientServer,
  mesh: Mesh | undefined,
  leaveTimeoutMs: number,
  log: Logger,
): Promise<void> {
  server.stopAccepting();
  if (mesh !== undefined) {
    const r = await mesh.leave(leaveTimeoutMs);
    const level = r.handedOver || r.remaining === 0 ? 'info' : 'warn';
    log[level]({ ...r }, 'left the mesh');
  }
  server.drainInput();
  const deadline = Date.now() + DRAIN_SENDS_TIMEOUT_MS;
  while (server.unansweredSends() > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const unanswered = server.unansweredSends();
  if (unanswered > 0) log.warn({ unanswered }, 'closing clients with sends still unanswered');
}

/** A pull's frames go out in one burst: a quarter of the pending limit leaves room for the rest. */
function pullBytes(maxPendingBytes: number): number {
  return Math.max(1, Math.floor(maxPendingBytes / 4));
}

/** The monitoring port: as configured, else the client port + 4000 (8222), or a free one beside port 0. */
function monitorPort(o: NodeOptions, clientPort: number): number {
  if (o.monitorPort !== undefined) return o.monitorPort;
  if (o.port === 0) return 0;
  const p = clientPort + MONITOR_PORT_OFFSET;
  return p <= 65535 ? p : 0;
}

/** Structural equality for option values (frozen plain data, Buffers for keys). */
function sameValue(a: unknown, b: unknown): boolean {
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Joins the mesh; from then on durable calls go through its routing (protocol/MESH.md). */
async function startMesh(
  options: NodeOptions,
  server: ClientServer,
  durable: DurableEngine,
  log: Logger,
  metrics: NodeMetrics | undefined,
): Promise<Mesh> {
  let mesh: Mesh;
  try {
    mesh = await Mesh.start({
      options,
      engine: durable,
      router: server.router,
      clientAddress: `${server.host}:${server.port}`,
      name: server.name,
      load: () => ({
        connections: server.connections.size,
        destinations: durable.dests.size,
        rssBytes: process.memoryUsage.rss(),
      }),
      log: log.child({ component: 'mesh' }),
      observer: metrics?.timings,
      clients: server,
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === 'EADDRINUSE' ? 'is already in use (set cluster.port / --mesh-port)' : `: ${e.message}`;
    throw new StartupError(
      'MESH_FAILED',
      `cannot start the mesh on ${options.meshHost ?? options.host} ${why}`,
    );
  }
  server.durable = mesh.durable;
  // M2.5: clients learn the view at once and again on every change.
  const publishView = (): void =>
    server.setClusterView({ connectUrls: mesh.clientUrls(), view: mesh.clusterView() });
  publishView();
  mesh.on('view', publishView);
  return mesh;
}

async function openEngine(options: NodeOptions, ring: KeyRing, log: Logger): Promise<DurableEngine> {
  try {
    return await DurableEngine.open(
      {
        dataDir: options.dataDir,
        maxDestinations: options.maxDestinations,
        maxDiskBytes: options.maxDiskBytes,
        dedupWindowMs: options.dedupWindowMs,
        maxGroupsPerDestination: options.maxGroupsPerDestination,
        maxPullBytes: pullBytes(options.maxPendingBytes),
        defaults: {
          defaultTtlMs: 0,
          maxMsgs: options.maxMsgsPerDestination,
          maxBytes: options.maxBytesPerDestination,
          deadLetterExpired: false,
          maxDeliveries: options.maxDeliveries,
          ackTimeoutMs: options.ackTimeoutMs,
        },
        destinations: options.destinations,
      },
      ring,
      log,
    );
  } catch (err) {
    if (err instanceof StartupError) throw err;
    // LevelDB's own reason (locked by another node, no space, corruption) is in the cause.
    const e = err as NodeJS.ErrnoException & { cause?: { code?: string; message?: string } };
    const why = [e.code, e.cause?.code, e.cause?.message ?? e.message]
      .filter((x) => x !== undefined)
      .join(': ');
    const hint = e.cause?.code === 'LEVEL_LOCKED' ? '; is another node using this data dir?' : '';
    throw new StartupError(
      'DATA_DIR_UNUSABLE',
      `cannot open the store in ${path.resolve(options.dataDir)} (${why})${hint}`,
    );
  }
}

/** Creates the data dir if needed and checks that it is a writable directory. */
function prepareDataDir(dir: string): void {
  const abs = path.resolve(dir);
  try {
    mkdirSync(abs, { recursive: true });
    if (!statSync(abs).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    accessSync(abs, fsc.W_OK | fsc.R_OK | fsc.X_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new StartupError(
      'DATA_DIR_UNUSABLE',
      `data dir ${abs} is unusable (${code}); set storage.data_dir / --data-dir`,
    );
  }
}
