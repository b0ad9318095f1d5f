/**
 * Core benchmark: the same three workloads through the stock NATS client
 * (@nats-io/transport-node) against a SwarmMQ node and a nats-server, both
 * started here as child processes, and a table of SwarmMQ/nats-server ratios.
 *
 *   node dist/bench/core.js [--quick] [--json out.json] [--runs N]
 *                           [--workloads flood,paced,rr] [--window N]
 *                           [--wait-quiet SECONDS] [--profile DIR]
 *                           [--tls] [--token]
 *
 * Workloads (128-byte payloads, publisher and subscriber in this process so
 * one clock timestamps both ends):
 *   flood  one publisher, one subscriber, N messages as fast as the client
 *          allows (flush every 10k; the publisher waits while more than
 *          --window, default 50k, are unreceived); msgs/s at the subscriber,
 *          latency.
 *   paced  a fixed rate in small batches per 1 ms timer tick; latency.
 *   rr     sequential request/reply through a responder connection.
 *
 * Each workload runs `--runs` times per system (default 2) in ABBA order
 * (run 1: SwarmMQ then nats-server, run 2: nats-server then SwarmMQ, ...);
 * the table shows each system's best run (flood: highest msgs/s, paced:
 * lowest p99, rr: highest req/s), all runs go to --json.
 *
 * Every run also measures the CPU that other processes took meanwhile (from
 * /proc/stat); above 25% of a core the run is marked disturbed. With
 * --wait-quiet S each run first waits (at most S seconds) for an idle
 * second, and a disturbed run is repeated, at most 3 tries; the table
 * prefers undisturbed runs.
 *
 * --tls and --token secure both servers alike (security.ts): --tls gives
 * both the same development certificate (`swarmmq gen certs`) and the client
 * trusts its CA; --token makes both require one API key (`swarmmq gen key`;
 * SwarmMQ through a config file with its hash, nats-server through --auth).
 * Before measuring, a raw connection checks each server's INFO for the mode
 * and records the TLS version and cipher it negotiates.
 *
 * --profile DIR starts only SwarmMQ, under `node --cpu-prof
 * --cpu-prof-dir=DIR`, runs only the flood, and stops the node with SIGINT
 * so that V8 writes the profile (read it with dist/bench/profile-summary.js).
 *
 * Every loop is bounded in count and time; only loopback is used.
 */
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { connect, type Msg, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import {
  type Child,
  Cleanup,
  CpuMeter,
  type CpuUse,
  machineInfo,
  packageVersion,
  percentiles,
  procMemKb,
  quiet,
  REPO_ROOT,
  sleep,
  spawnNatsServer,
  spawnSwarm,
  tryExec,
  withTimeout,
  readFlags,
} from './lib.js';
import {
  type BenchSecurity,
  clientOptions,
  natsServerArgs,
  prepareSecurity,
  probeServer,
  swarmArgs,
  type WireSecurity,
} from './security.js';

// ---------------------------------------------------------------- options

const PAYLOAD_BYTES = 128;
const FLUSH_EVERY = 10_000;
/**
 * Flood: most messages published and not yet received before the publisher
 * waits (--window). 50,000 MSGs of 128 bytes are about 9 MB queued at the
 * server, well under SwarmMQ's 16 MiB and nats-server's 64 MiB per-connection
 * slow-consumer limits, so the flood measures throughput, not those limits.
 */
const DEFAULT_FLOOD_WINDOW = 50_000;
/** A run waiting for messages gives up after this long without progress. */
const STALL_MS = 5_000;
/** Hard cap on any one measured run. */
const RUN_DEADLINE_MS = 120_000;
const REQUEST_TIMEOUT_MS = 5_000;
const MAX_REQUEST_ERRORS = 10;
/** Other processes using more than this (% of one core) during a run mark it disturbed. */
const DISTURBED_PCT = 25;
/** --wait-quiet: tries per run while runs come out disturbed. */
const MAX_ATTEMPTS = 3;
/** Pause between runs so the previous run's sockets and garbage settle. */
const SETTLE_MS = 300;
/** The INFO / TLS handshake probe of each server before the runs. */
const PROBE_TIMEOUT_MS = 5_000;

type WorkloadName = 'flood' | 'paced' | 'rr';
const ALL_WORKLOADS: readonly WorkloadName[] = ['flood', 'paced', 'rr'];

interface Config {
  quick: boolean;
  runs: number;
  json: string | undefined;
  waitQuietMs: number;
  profileDir: string | undefined;
  workloads: WorkloadName[];
  floodMsgs: number;
  /** Most flood messages published and not yet received; 0 = no limit. */
  floodWindow: number;
  pacedRate: number;
  pacedMs: number;
  rrRequests: number;
  warmupFloodMsgs: number;
  warmupRequests: number;
  /** --tls: TLS on both servers' client port, the same development certificate. */
  tls: boolean;
  /** --token: both servers require the same API key (the stock client's `token`). */
  token: boolean;
}

function parseArgs(argv: string[]): Config {
  const f = readFlags(
    argv,
    {
      quick: { type: 'boolean' },
      tls: { type: 'boolean' },
      token: { type: 'boolean' },
      json: { type: 'string' },
      profile: { type: 'string' },
      'wait-quiet': { type: 'number', min: 0, max: 600, integer: false },
      window: { type: 'number', min: 0, max: Number.MAX_SAFE_INTEGER },
      runs: { type: 'number', min: 1, max: 10 },
      workloads: { type: 'string' },
    },
    usage,
  );
  const quick = f.quick === true;
  const runs = f.runs;
  const json = f.json;
  const waitQuietMs = (f['wait-quiet'] ?? 0) * 1000;
  const profileDir = f.profile;
  const floodWindow = f.window ?? DEFAULT_FLOOD_WINDOW;
  const useTls = f.tls === true;
  const useToken = f.token === true;
  let workloads: WorkloadName[] | undefined;
  if (f.workloads !== undefined) {
    const list = f.workloads.split(',');
    for (const w of list) if (!ALL_WORKLOADS.includes(w as WorkloadName)) usage(`unknown workload ${w}`);
    workloads = list as WorkloadName[];
  }
  return {
    quick,
    runs: runs ?? (profileDir !== undefined ? 1 : 2),
    json,
    waitQuietMs,
    profileDir,
    workloads: profileDir !== undefined ? ['flood'] : (workloads ?? [...ALL_WORKLOADS]),
    floodMsgs: quick ? 50_000 : 500_000,
    floodWindow,
    pacedRate: 20_000,
    pacedMs: quick ? 1_000 : 3_000,
    rrRequests: quick ? 2_000 : 20_000,
    warmupFloodMsgs: quick ? 5_000 : 20_000,
    warmupRequests: quick ? 200 : 1_000,
    tls: useTls,
    token: useToken,
  };
}

function usage(err?: string): never {
  if (err !== undefined) console.error(`core: ${err}`);
  console.error(
    'usage: node dist/bench/core.js [--quick] [--json out.json] [--runs N] ' +
      '[--workloads flood,paced,rr] [--window N] [--wait-quiet SECONDS] [--profile DIR] [--tls] [--token]',
  );
  process.exit(err === undefined ? 0 : 2);
}

// ---------------------------------------------------------------- helpers

function maxOf(samples: Float64Array, n: number): number {
  let m = n === 0 ? NaN : -Infinity;
  for (let i = 0; i < n; i++) if (samples[i]! > m) m = samples[i]!;
  return m;
}

/** Waits until `done()` or no progress for STALL_MS or the deadline; all bounded. */
async function waitFor(done: () => boolean, progress: () => number, deadline: number): Promise<void> {
  let last = progress();
  let lastChange = performance.now();
  while (!done()) {
    const now = performance.now();
    if (now > deadline) return;
    const p = progress();
    if (p !== last) {
      last = p;
      lastChange = now;
    } else if (now - lastChange > STALL_MS) return;
    await sleep(20);
  }
}

// ---------------------------------------------------------------- child processes

/** The node to benchmark: this build, or another (SWARMMQ_MAIN=/path/to/dist/src/cli/main.js) for A/B runs. */
const SWARM_MAIN = process.env.SWARMMQ_MAIN ?? fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

/** Everything to undo on exit, however we exit. */
const cleanup = new Cleanup(10_000);

interface Target {
  key: 'swarmmq' | 'nats-server';
  label: string;
  port: number;
  child: Child;
  /** TLS and token options of the mode, for every client connection. */
  clientOptions: NodeConnectionOptions;
}

async function startSwarm(nodeFlags: string[], sec: BenchSecurity): Promise<Target> {
  const dir = cleanup.newTempDir('swarmmq-bench-');
  const { port, child } = await spawnSwarm(
    cleanup,
    [
      ...nodeFlags,
      SWARM_MAIN,
      'start',
      '--port',
      '0',
      '--data-dir',
      dir,
      '--log-level',
      'info',
      ...swarmArgs(sec),
    ],
    { cwd: dir },
    15_000,
  );
  return { key: 'swarmmq', label: 'SwarmMQ', port, child, clientOptions: clientOptions(sec) };
}

async function startNatsServer(sec: BenchSecurity): Promise<Target> {
  const { port, child } = await spawnNatsServer(
    cleanup,
    (port) => ['-a', '127.0.0.1', '-p', String(port), ...natsServerArgs(sec)],
    10_000,
  );
  return { key: 'nats-server', label: 'nats-server', port, child, clientOptions: clientOptions(sec) };
}

async function conn(t: Target, name: string): Promise<NatsConnection> {
  return withTimeout(
    connect({ servers: `127.0.0.1:${t.port}`, name, reconnect: false, ...t.clientOptions }),
    10_000,
    `connect to ${t.label}`,
  );
}

async function closeAll(...ncs: NatsConnection[]): Promise<void> {
  await Promise.all(ncs.map((nc) => withTimeout(nc.close(), 5_000, 'close').catch(() => undefined)));
}

let subjectSeq = 0;
const uniqueSubject = (w: string): string => `bench.${w}.${process.pid}.${++subjectSeq}`;

// ---------------------------------------------------------------- payloads

/** A fresh 128-byte payload with the send time (performance.now(), float64 LE) in bytes 0-7. */
function stampedPayload(seq: number): Buffer {
  // Fresh each time: the client queues payloads by reference until its next write.
  const b = Buffer.allocUnsafe(PAYLOAD_BYTES);
  b.writeUInt32LE(seq, 8);
  b.fill(0x61, 12);
  b.writeDoubleLE(performance.now(), 0);
  return b;
}

const stampScratch = new Float64Array(1);
const stampBytes = new Uint8Array(stampScratch.buffer);
function readStamp(data: Uint8Array): number {
  stampBytes.set(data.subarray(0, 8));
  return stampScratch[0]!;
}

// ---------------------------------------------------------------- workloads

/** Why a run lost messages, as far as we can tell: the subscriber's state and the server's log. */
function lossReason(subNc: NatsConnection, t: Target, logMark: number): string {
  const state = subNc.isClosed() ? 'subscriber connection closed' : 'subscriber connection open';
  const log = t.child
    .linesSince(logMark)
    .filter((l) => /slow|warn|"level":[4-6]0|\[(WRN|ERR)\]/i.test(l))
    .slice(-3)
    .map((l) => l.slice(0, 300));
  return `messages lost, ${state}; server log: ${log.length > 0 ? log.join(' | ') : '(nothing)'}`;
}

interface LatencyStats {
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

function latencyStats(samples: Float64Array, n: number): LatencyStats {
  const [p50, p99, p999] = percentiles(samples, n, [0.5, 0.99, 0.999]) as [number, number, number];
  return { p50, p99, p999, max: maxOf(samples, n) };
}

interface FloodResult extends LatencyStats, CpuUse {
  sent: number;
  received: number;
  lost: number;
  /** Subscriber rate: first to last message received. */
  msgsPerSec: number;
  /** Publisher rate: first publish to the last flush's PONG. */
  pubPerSec: number;
  /** Most messages published and not yet received, seen after a flush. */
  maxInFlight: number;
  /** How often the publisher waited for the subscriber (--window). */
  windowWaits: number;
  rssKb: number;
  hwmKb: number;
  error: string | undefined;
}

async function flood(t: Target, n: number, window: number): Promise<FloodResult> {
  const subNc = await conn(t, 'bench-flood-sub');
  const pubNc = await conn(t, 'bench-flood-pub');
  try {
    const subject = uniqueSubject('flood');
    const lat = new Float64Array(n);
    let received = 0;
    let first = 0;
    let last = 0;
    subNc.subscribe(subject, {
      callback: (_err, msg: Msg) => {
        const now = performance.now();
        if (received >= n) return;
        if (received === 0) first = now;
        last = now;
        lat[received++] = now - readStamp(msg.data);
      },
    });
    await withTimeout(subNc.flush(), 10_000, 'subscribe');
    let error: string | undefined;
    void subNc.closed().then((e) => {
      if (e) error ??= `subscriber closed: ${e.message}`;
    });
    const deadline = performance.now() + RUN_DEADLINE_MS;
    const logMark = t.child.mark();
    const cpu = new CpuMeter(t.child.pid);
    const pubStart = performance.now();
    let sent = 0;
    let maxInFlight = 0;
    let windowWaits = 0;
    try {
      while (sent < n && performance.now() < deadline) {
        const end = Math.min(n, sent + FLUSH_EVERY);
        for (; sent < end; sent++) pubNc.publish(subject, stampedPayload(sent));
        await withTimeout(pubNc.flush(), STALL_MS * 2, 'publisher flush');
        maxInFlight = Math.max(maxInFlight, sent - received);
        // The flush's PONG says the server has the messages, not that the subscriber
        // does: without a window the server's queue to a slower subscriber only grows.
        if (window > 0 && sent - received > window) {
          windowWaits++;
          await waitFor(
            () => sent - received <= window,
            () => received,
            deadline,
          );
        }
      }
    } catch (err) {
      error ??= `publisher: ${(err as Error).message}`;
    }
    const pubEnd = performance.now();
    await waitFor(
      () => received >= sent,
      () => received,
      deadline,
    );
    const usage = cpu.stop();
    const mem = procMemKb(t.child.pid);
    if (received < sent) error ??= lossReason(subNc, t, logMark);
    return {
      sent,
      maxInFlight,
      windowWaits,
      received,
      lost: sent - received,
      msgsPerSec: received > 1 ? ((received - 1) * 1000) / (last - first) : 0,
      pubPerSec: (sent * 1000) / (pubEnd - pubStart),
      ...latencyStats(lat, received),
      ...usage,
      rssKb: mem.rssKb,
      hwmKb: mem.hwmKb,
      error,
    };
  } finally {
    await closeAll(pubNc, subNc);
  }
}

interface PacedResult extends LatencyStats, CpuUse {
  targetRate: number;
  sent: number;
  received: number;
  lost: number;
  achievedRate: number;
  error: string | undefined;
}

async function paced(t: Target, rate: number, durationMs: number): Promise<PacedResult> {
  const subNc = await conn(t, 'bench-paced-sub');
  const pubNc = await conn(t, 'bench-paced-pub');
  try {
    const subject = uniqueSubject('paced');
    const total = Math.round((rate * durationMs) / 1000);
    const lat = new Float64Array(total);
    let received = 0;
    subNc.subscribe(subject, {
      callback: (_err, msg: Msg) => {
        if (received < total) lat[received++] = performance.now() - readStamp(msg.data);
      },
    });
    await withTimeout(subNc.flush(), 10_000, 'subscribe');
    let error: string | undefined;
    void subNc.closed().then((e) => {
      if (e) error ??= `subscriber closed: ${e.message}`;
    });
    // Never more than 10 ms worth in one tick, so a late timer does not turn into a burst.
    const maxBatch = Math.max(1, Math.ceil(rate / 100));
    const logMark = t.child.mark();
    const cpu = new CpuMeter(t.child.pid);
    const start = performance.now();
    let sent = 0;
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const elapsed = performance.now() - start;
        const due = Math.min(total, Math.floor((elapsed * rate) / 1000) + 1);
        for (let k = 0; sent < due && k < maxBatch; k++) pubNc.publish(subject, stampedPayload(sent++));
        if (sent >= total || elapsed > durationMs * 2) resolve();
        else setTimeout(tick, 1);
      };
      tick();
    });
    const sendEnd = performance.now();
    await withTimeout(pubNc.flush(), STALL_MS * 2, 'publisher flush').catch((err: Error) => {
      error ??= `publisher: ${err.message}`;
    });
    await waitFor(
      () => received >= sent,
      () => received,
      performance.now() + RUN_DEADLINE_MS,
    );
    const usage = cpu.stop();
    if (received < sent) error ??= lossReason(subNc, t, logMark);
    return {
      targetRate: rate,
      sent,
      received,
      lost: sent - received,
      achievedRate: (sent * 1000) / (sendEnd - start),
      ...latencyStats(lat, received),
      ...usage,
      error,
    };
  } finally {
    await closeAll(pubNc, subNc);
  }
}

interface RrResult extends LatencyStats, CpuUse {
  requests: number;
  completed: number;
  errors: number;
  reqPerSec: number;
  error: string | undefined;
}

async function requestReply(t: Target, n: number): Promise<RrResult> {
  const respNc = await conn(t, 'bench-rr-responder');
  const reqNc = await conn(t, 'bench-rr-requester');
  try {
    const subject = uniqueSubject('rr');
    respNc.subscribe(subject, { callback: (_err, msg: Msg) => void msg.respond(msg.data) });
    await withTimeout(respNc.flush(), 10_000, 'subscribe');
    const payload = Buffer.alloc(PAYLOAD_BYTES, 0x62);
    const lat = new Float64Array(n);
    let completed = 0;
    let errors = 0;
    let error: string | undefined;
    const deadline = performance.now() + RUN_DEADLINE_MS;
    const cpu = new CpuMeter(t.child.pid);
    const start = performance.now();
    for (let i = 0; i < n && errors < MAX_REQUEST_ERRORS && performance.now() < deadline; i++) {
      const t0 = performance.now();
      try {
        await reqNc.request(subject, payload, { timeout: REQUEST_TIMEOUT_MS });
        lat[completed++] = performance.now() - t0;
      } catch (err) {
        errors++;
        error ??= `request: ${(err as Error).message}`;
      }
    }
    const elapsed = performance.now() - start;
    const usage = cpu.stop();
    return {
      requests: n,
      completed,
      errors,
      reqPerSec: (completed * 1000) / elapsed,
      ...latencyStats(lat, completed),
      ...usage,
      error,
    };
  } finally {
    await closeAll(reqNc, respNc);
  }
}

// ---------------------------------------------------------------- reporting

interface RunRecord {
  workload: WorkloadName;
  system: Target['key'];
  run: number;
  /** Repeats of a disturbed run (--wait-quiet) count up from 1. */
  attempt: number;
  /** Other processes used more than DISTURBED_PCT of a core during the run. */
  disturbed: boolean;
  result: FloodResult | PacedResult | RrResult;
}

/** The run shown in the table: no losses/errors first, then the workload's main metric. */
function best(records: RunRecord[], workload: WorkloadName, system: Target['key']): RunRecord | undefined {
  const rs = records.filter((r) => r.workload === workload && r.system === system);
  const score = (r: RunRecord): number => {
    const x = r.result;
    const clean =
      (('lost' in x ? x.lost : (x as RrResult).errors) === 0 ? 2e12 : 0) + (r.disturbed ? 0 : 1e12);
    if (workload === 'flood') return clean + (x as FloodResult).msgsPerSec;
    if (workload === 'paced') return clean - (x as PacedResult).p99;
    return clean + (x as RrResult).reqPerSec;
  };
  return rs.reduce<RunRecord | undefined>(
    (b, r) => (b === undefined || score(r) > score(b) ? r : b),
    undefined,
  );
}

interface Row {
  workload: string;
  metric: string;
  values: (number | undefined)[];
  fmt: (v: number) => string;
  ratio: boolean;
}

const fInt = (v: number): string => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : 'n/a');
const fMs = (v: number): string => (Number.isFinite(v) ? v.toFixed(3) : 'n/a');
const fPct = (v: number): string => (Number.isFinite(v) ? `${v.toFixed(0)}%` : 'n/a');
const fUs = (v: number): string => (Number.isFinite(v) ? v.toFixed(2) : 'n/a');
const perUnitUs = (cpuMs: number, units: number): number => (units > 0 ? (cpuMs * 1000) / units : NaN);
const fMiB = (kb: number): string => (Number.isFinite(kb) ? (kb / 1024).toFixed(1) : 'n/a');

/** One table row: its label, how to read it off a run, how to print it, whether a ratio makes sense. */
type MetricSpec<T> = [metric: string, get: (r: T) => number, fmt: Row['fmt'], ratio?: boolean];

const FLOOD_METRICS: MetricSpec<FloodResult>[] = [
  ['msgs/s at subscriber (higher=better)', (r) => r.msgsPerSec, fInt],
  ['publish msgs/s (higher=better)', (r) => r.pubPerSec, fInt],
  ['latency p50 ms', (r) => r.p50, fMs],
  ['latency p99 ms', (r) => r.p99, fMs],
  ['lost msgs', (r) => r.lost, fInt, false],
  ['max in flight (pub - recv) msgs', (r) => r.maxInFlight, fInt, false],
  ['server CPU (% of 1 core)', (r) => r.serverCpuPct, fPct],
  ['server CPU us per msg', (r) => perUnitUs(r.serverCpuMs, r.received), fUs],
  ['bench client CPU', (r) => r.clientCpuPct, fPct],
  ['background CPU (others)', (r) => r.backgroundCpuPct, fPct, false],
  ['server RSS after flood MiB', (r) => r.rssKb, fMiB],
  ['server peak RSS (VmHWM) MiB', (r) => r.hwmKb, fMiB],
];

const PACED_METRICS: MetricSpec<PacedResult>[] = [
  ['achieved msgs/s', (r) => r.achievedRate, fInt],
  ['latency p50 ms', (r) => r.p50, fMs],
  ['latency p99 ms', (r) => r.p99, fMs],
  ['latency p99.9 ms', (r) => r.p999, fMs],
  ['latency max ms', (r) => r.max, fMs],
  ['lost msgs', (r) => r.lost, fInt, false],
  ['server CPU (% of 1 core)', (r) => r.serverCpuPct, fPct],
  ['server CPU us per msg', (r) => perUnitUs(r.serverCpuMs, r.received), fUs],
  ['background CPU (others)', (r) => r.backgroundCpuPct, fPct, false],
];

const RR_METRICS: MetricSpec<RrResult>[] = [
  ['req/s (higher=better)', (r) => r.reqPerSec, fInt],
  ['latency p50 ms', (r) => r.p50, fMs],
  ['latency p99 ms', (r) => r.p99, fMs],
  ['latency p99.9 ms', (r) => r.p999, fMs],
  ['errors', (r) => r.errors, fInt, false],
  ['server CPU (% of 1 core)', (r) => r.serverCpuPct, fPct],
  ['server CPU us per request', (r) => perUnitUs(r.serverCpuMs, r.completed), fUs],
  ['background CPU (others)', (r) => r.backgroundCpuPct, fPct, false],
];

function buildRows(
  records: RunRecord[],
  systems: Target['key'][],
  cfg: Config,
  idleRssKb: Map<Target['key'], number>,
): Row[] {
  const rows: Row[] = [];
  const addAll = <T>(w: WorkloadName, label: string, specs: MetricSpec<T>[]): void => {
    if (!cfg.workloads.includes(w)) return;
    const bests = systems.map((s) => best(records, w, s)?.result as T | undefined);
    for (const [metric, get, fmt, ratio = true] of specs) {
      const values = bests.map((r) => (r === undefined ? undefined : get(r)));
      rows.push({ workload: label, metric, values, fmt, ratio });
    }
  };
  addAll('flood', `flood ${fInt(cfg.floodMsgs)}`, FLOOD_METRICS);
  rows.push({
    workload: 'idle',
    metric: 'server RSS at start (idle) MiB',
    values: systems.map((s) => idleRssKb.get(s)),
    fmt: fMiB,
    ratio: true,
  });
  addAll('paced', `paced ${fInt(cfg.pacedRate)}/s ${cfg.pacedMs / 1000}s`, PACED_METRICS);
  addAll('rr', `req/reply ${fInt(cfg.rrRequests)}`, RR_METRICS);
  return rows;
}

function renderTable(rows: Row[], labels: string[]): string {
  const twoSystems = labels.length === 2;
  const header = ['workload', 'metric', ...labels, ...(twoSystems ? ['ratio S/N'] : [])];
  const body = rows.map((r) => {
    const cells = r.values.map((v) => (v === undefined ? '-' : r.fmt(v)));
    if (twoSystems) {
      const [a, b] = r.values;
      const ratio =
        r.ratio && a !== undefined && b !== undefined && Number.isFinite(a / b) && b !== 0
          ? (a / b).toFixed(2)
          : '';
      cells.push(ratio);
    }
    return [r.workload, r.metric, ...cells];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  let prev = '';
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const row of body) {
    const shown = [...row];
    if (row[0] === prev) shown[0] = '';
    else prev = row[0]!;
    out.push(line(shown));
  }
  return out.join('\n');
}

function environment(): Record<string, string | number> {
  // The commit of the SwarmMQ build under test: this checkout, or the one SWARMMQ_MAIN points into.
  const root = process.env.SWARMMQ_MAIN === undefined ? REPO_ROOT : path.dirname(SWARM_MAIN);
  const commit = tryExec('git', ['rev-parse', '--short', 'HEAD'], root);
  const srcDirty = tryExec('git', ['status', '--porcelain', '--', 'src'], root);
  const label =
    commit === 'unknown'
      ? 'unknown (not a git checkout)'
      : srcDirty !== '' && srcDirty !== 'unknown'
        ? `${commit} (src/ modified)`
        : commit;
  return {
    ...machineInfo(),
    natsClient: `@nats-io/transport-node ${packageVersion('@nats-io/transport-node')}`,
    commit: label,
    swarmMain: SWARM_MAIN,
    date: new Date().toISOString(),
  };
}

/** The header's security line: what both servers required and what each negotiated. */
function describeSecurity(
  sec: BenchSecurity,
  targets: Target[],
  wire: Map<Target['key'], WireSecurity>,
): string {
  const parts: string[] = [];
  if (sec.tls === undefined) parts.push('plain TCP');
  else {
    const each = targets
      .map((t) => `${t.label} ${wire.get(t.key)?.tlsProtocol ?? '?'} ${wire.get(t.key)?.tlsCipher ?? '?'}`)
      .join(', ');
    parts.push(`TLS after INFO, one development certificate (gen certs) for both (${each})`);
  }
  parts.push(
    sec.token === undefined
      ? 'no authentication'
      : 'token authentication, one API key (SwarmMQ authorization.keys hash, nats-server --auth)',
  );
  return parts.join('; ');
}

// ---------------------------------------------------------------- main

async function runWorkload(w: WorkloadName, t: Target, cfg: Config): Promise<RunRecord['result']> {
  if (w === 'flood') return flood(t, cfg.floodMsgs, cfg.floodWindow);
  if (w === 'paced') return paced(t, cfg.pacedRate, cfg.pacedMs);
  return requestReply(t, cfg.rrRequests);
}

function describe(w: WorkloadName, r: RunRecord['result']): string {
  const err = r.error !== undefined ? `  ERROR: ${r.error}` : '';
  if (w === 'flood') {
    const x = r as FloodResult;
    return `${fInt(x.msgsPerSec)} msgs/s, p50 ${fMs(x.p50)} ms, p99 ${fMs(x.p99)} ms, lost ${x.lost}${err}`;
  }
  if (w === 'paced') {
    const x = r as PacedResult;
    return `${fInt(x.achievedRate)} msgs/s, p50 ${fMs(x.p50)} p99 ${fMs(x.p99)} p99.9 ${fMs(x.p999)} ms, lost ${x.lost}${err}`;
  }
  const x = r as RrResult;
  return `${fInt(x.reqPerSec)} req/s, p50 ${fMs(x.p50)} p99 ${fMs(x.p99)} ms, errors ${x.errors}${err}`;
}

async function main(): Promise<void> {
  const cfg = parseArgs(process.argv.slice(2));
  const gc = (globalThis as { gc?: () => void }).gc;
  const env = environment();
  const records: RunRecord[] = [];
  const targets: Target[] = [];
  let swarm: Target | undefined;
  try {
    // The certificate, key and SwarmMQ config live in a temp dir that cleanup removes.
    const sec: BenchSecurity =
      cfg.tls || cfg.token
        ? prepareSecurity(cfg.tls, cfg.token, SWARM_MAIN, cleanup.newTempDir('swarmmq-bench-sec-'))
        : { mode: 'plain', tls: undefined, token: undefined, swarmConfigFile: undefined };
    const swarmFlags =
      cfg.profileDir !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(cfg.profileDir)}`] : [];
    swarm = await startSwarm(swarmFlags, sec);
    targets.push(swarm);
    if (cfg.profileDir === undefined) targets.push(await startNatsServer(sec));
    await sleep(500);
    const idleRssKb = new Map<Target['key'], number>();
    for (const t of targets) idleRssKb.set(t.key, procMemKb(t.child.pid).rssKb);
    // After the idle RSS, so the probe's connection is not in it.
    const wire = new Map<Target['key'], WireSecurity>();
    for (const t of targets) {
      const w = await probeServer(t.port, sec, t.label, PROBE_TIMEOUT_MS);
      wire.set(t.key, w);
      const tlsText = w.tlsProtocol !== undefined ? `, ${w.tlsProtocol} ${w.tlsCipher}` : '';
      console.error(`${t.label}: pid ${t.child.pid}, port ${t.port}, mode ${sec.mode}${tlsText}`);
    }

    // Warm-up (not recorded): JIT the node and the client, open the inbox paths.
    for (const t of targets) {
      await flood(t, cfg.warmupFloodMsgs, cfg.floodWindow);
      await requestReply(t, cfg.warmupRequests);
    }

    for (const w of cfg.workloads) {
      for (let run = 1; run <= cfg.runs; run++) {
        const order = run % 2 === 1 ? targets : [...targets].reverse();
        for (const t of order) {
          if (cleanup.interrupted) return;
          // With --wait-quiet a run disturbed by other processes is repeated (bounded).
          for (let attempt = 1; attempt <= (cfg.waitQuietMs > 0 ? MAX_ATTEMPTS : 1); attempt++) {
            gc?.();
            await sleep(SETTLE_MS);
            await quiet(cfg.waitQuietMs);
            const result = await runWorkload(w, t, cfg);
            const disturbed = result.backgroundCpuPct > DISTURBED_PCT;
            records.push({ workload: w, system: t.key, run, attempt, disturbed, result });
            console.error(
              `  ${w} run ${run}${attempt > 1 ? `.${attempt}` : ''} ${t.label.padEnd(11)} ${describe(w, result)}` +
                ` [cpu: server ${fPct(result.serverCpuPct)}, client ${fPct(result.clientCpuPct)},` +
                ` others ${fPct(result.backgroundCpuPct)}${disturbed ? ', DISTURBED' : ''}]`,
            );
            if (!disturbed) break;
          }
        }
      }
    }

    const systems = targets.map((t) => t.key);
    const rows = buildRows(records, systems, cfg, idleRssKb);
    const out: string[] = [];
    out.push(`SwarmMQ core benchmark, mode ${sec.mode}`);
    out.push(`  security: ${describeSecurity(sec, targets, wire)}`);
    out.push(
      `  measured: stock NATS client (${env.natsClient}) against each server, ${PAYLOAD_BYTES}-byte payloads,` +
        ` loopback, client and servers on the same machine`,
    );
    out.push(
      `  workloads: flood ${fInt(cfg.floodMsgs)} msgs (flush every ${fInt(FLUSH_EVERY)},` +
        ` at most ${cfg.floodWindow > 0 ? fInt(cfg.floodWindow) : 'unlimited'} in flight),` +
        ` paced ${fInt(cfg.pacedRate)} msgs/s for ${cfg.pacedMs / 1000} s,` +
        ` request/reply ${fInt(cfg.rrRequests)} sequential requests${cfg.quick ? ' (--quick)' : ''}`,
    );
    out.push(
      `  runs: ${cfg.runs} per system and workload in ABBA order after a warm-up;` +
        ' table shows each system’s best run (flood: msgs/s, paced: p99, rr: req/s)',
    );
    out.push(`  cpu: ${env.cpu}, ${env.cores} cores, ${env.memory}; ${env.os}`);
    out.push(`  node ${env.node}; nats-server ${env.natsServer}; SwarmMQ commit ${env.commit}; ${env.date}`);
    if (process.env.SWARMMQ_MAIN !== undefined) out.push(`  SwarmMQ build: SWARMMQ_MAIN=${SWARM_MAIN}`);
    if (cfg.profileDir !== undefined) out.push(`  PROFILE RUN: SwarmMQ under --cpu-prof, numbers are slowed`);
    out.push('');
    out.push(
      renderTable(
        rows,
        targets.map((t) => t.label),
      ),
    );
    if (targets.length === 2)
      out.push('\nratio S/N = SwarmMQ / nats-server (latency and CPU: lower is better)');
    const failures = records.filter((r) => r.result.error !== undefined);
    for (const f of failures) out.push(`WARNING: ${f.workload} run ${f.run} ${f.system}: ${f.result.error}`);
    console.log(out.join('\n'));

    if (cfg.json !== undefined) {
      const bestRuns = Object.fromEntries(
        cfg.workloads.map((w) => [w, Object.fromEntries(systems.map((s) => [s, best(records, w, s)?.run]))]),
      );
      writeFileSync(
        cfg.json,
        JSON.stringify(
          {
            env,
            mode: sec.mode,
            config: { ...cfg, mode: sec.mode, payloadBytes: PAYLOAD_BYTES, flushEvery: FLUSH_EVERY },
            security: Object.fromEntries(wire),
            idleRssKb: Object.fromEntries(idleRssKb),
            records,
            bestRuns,
          },
          null,
          2,
        ) + '\n',
      );
      console.error(`wrote ${cfg.json}`);
    }
  } finally {
    if (cfg.profileDir !== undefined && swarm !== undefined) {
      // SIGINT: the node shuts down cleanly and exits, so V8 writes the profile.
      const started = Date.now();
      const code = await swarm.child.stop('SIGINT', 30_000);
      cleanup.children.delete(swarm.child);
      const dir = path.resolve(cfg.profileDir);
      const profiles = existsSync(dir)
        ? readdirSync(dir)
            .filter((f) => f.endsWith('.cpuprofile'))
            .map((f) => path.join(dir, f))
            .filter((f) => statSync(f).mtimeMs >= started - 60_000)
        : [];
      console.error(`swarmmq exited with code ${code}; profile: ${profiles.join(', ') || 'none written'}`);
    }
    await cleanup.run();
  }
}

cleanup.exitWith('core', main);
