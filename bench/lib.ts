/**
 * Helpers shared by the benchmark scripts (core.ts, durable.ts, cluster.ts,
 * sdk.ts): timing, percentiles, CPU and memory read from /proc, ports, child
 * processes and their cleanup, a SwarmMQ cluster of child processes and the
 * OWNER answers of its nodes, and a description of the machine.
 *
 * Every loop is bounded in count and time; only loopback is used.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

// ---------------------------------------------------------------- timing

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// Limits the cluster benches (cluster.ts, sdk.ts) share; every phase is capped by count and by these.
/** Payload of every measured message. */
export const PAYLOAD_BYTES = 128;
/** Hard cap on one phase. */
export const PHASE_DEADLINE_MS = 60_000;
/** A phase that makes no progress for this long ends and reports what it got. */
export const STALL_MS = 10_000;
/** A node may take this long to log "node started" (2 cores, other work running). */
export const NODE_START_MS = 60_000;
/** From the last spawn until the cluster has formed. */
export const FORM_DEADLINE_MS = 60_000;
/** Until a destination created on one node is known on every node. */
export const PROBE_DEADLINE_MS = 30_000;
/** Each child gets this long after SIGTERM before SIGKILL. */
export const STOP_MS = 20_000;

export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------- statistics

/** Nearest-rank percentiles of the first `n` samples (NaN samples, failed ones, are left out). */
export function percentiles(samples: Float64Array, n: number, ps: readonly number[]): number[] {
  const sorted = samples
    .slice(0, n)
    .filter((x) => !Number.isNaN(x))
    .sort();
  if (sorted.length === 0) return ps.map(() => NaN);
  return ps.map((p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!);
}

// ---------------------------------------------------------------- CPU and memory (/proc)

const CLK_TCK = 100;
/** How one bounded run of calls (runCalls) goes. */
export interface CallRun {
  /** Calls in all. */
  n: number;
  /**
   * Whether another call may start now (the window, a rate): `inflight`
   * calls are started and not yet answered, `started` in all.
   */
  canStart: (inflight: number, started: number) => boolean;
  /**
   * Starts call `i` and settles once it is answered, either way: the caller
   * counts its own outcomes, so the promise should not reject.
   */
  call: (i: number) => Promise<unknown>;
  /** Every 200 ms with the answers so far (a progress bar). */
  tick?: (settled: number) => void;
  /** With a `canStart` that opens with time (a rate), also tries to start calls this often. */
  pacerMs?: number;
  /** Ends the run early (Ctrl-C). */
  interrupted?: () => boolean;
}

/** What runCalls did: calls started and answered, and why it stopped early if it did. */
export interface CallRunResult {
  started: number;
  settled: number;
  /** Set when the run ended before every call was answered (stall, deadline, interrupted). */
  stopped: string | undefined;
}

/**
 * n calls, each started as soon as `canStart` allows and another one
 * started as each is answered. Bounded: the run ends after PHASE_DEADLINE_MS,
 * or once nothing has been answered for STALL_MS, and says so.
 */
export function runCalls(run: CallRun): Promise<CallRunResult> {
  const { n, canStart, call } = run;
  const t0 = performance.now();
  let next = 0;
  let settled = 0;
  let progressAt = t0;
  let stopped: string | undefined;
  let done = false;
  return new Promise((resolve) => {
    const finish = (why?: string): void => {
      if (done) return;
      done = true;
      stopped = why;
      clearInterval(watchdog);
      if (pacer !== undefined) clearInterval(pacer);
      resolve({ started: next, settled, stopped });
    };
    const launch = (): void => {
      while (!done && next < n && canStart(next - settled, next)) {
        void call(next++).finally(() => {
          settled++;
          progressAt = performance.now();
          if (settled === n) finish();
          else launch();
        });
      }
    };
    const pacer = run.pacerMs === undefined ? undefined : setInterval(launch, run.pacerMs);
    const watchdog = setInterval(() => {
      const now = performance.now();
      run.tick?.(settled);
      if (now - t0 > PHASE_DEADLINE_MS || now - progressAt > STALL_MS || run.interrupted?.() === true) {
        finish(`stopped after ${settled} of ${n} answers (stalled, deadline or interrupted)`);
      }
    }, 200);
    if (n === 0) finish();
    else launch();
  });
}

/** --wait-quiet: the machine counts as quiet below this (% of one core, over 1 s). */
const QUIET_PCT = 10;

/** utime + stime of a process, in ms; NaN if it cannot be read. */
export function procCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** VmRSS and VmHWM of a process in KiB (NaN if unreadable). */
export function procMemKb(pid: number): { rssKb: number; hwmKb: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const get = (k: string): number => {
      const m = new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status);
      return m === null ? NaN : Number(m[1]);
    };
    return { rssKb: get('VmRSS'), hwmKb: get('VmHWM') };
  } catch {
    return { rssKb: NaN, hwmKb: NaN };
  }
}

/** CPU time all CPUs spent busy (or stolen by the hypervisor) since boot, in ms; NaN if unreadable. */
export function machineBusyMs(): number {
  try {
    const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0]!;
    // cpu user nice system idle iowait irq softirq steal ...
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!;
    return (busy * 1000) / CLK_TCK;
  } catch {
    return NaN;
  }
}

export interface CpuUse {
  /** Server process CPU time (user + system) over the window; 10 ms resolution. */
  serverCpuMs: number;
  /** The same in % of one core over the wall time of the window. */
  serverCpuPct: number;
  /** This process (the bench client) in % of one core. */
  clientCpuPct: number;
  /**
   * Everything else on the machine (other processes, steal) in % of one
   * core: a run with much of it was disturbed. Tick resolution, so +-10%.
   */
  backgroundCpuPct: number;
}

/** CPU use of several server processes (a cluster), of this process and of everything else over a window. */
export interface ClusterCpuUse {
  /** Wall time of the window, in ms. */
  wallMs: number;
  /** Each server's CPU time (user + system) over the window, in ms, in the order of the pids; 10 ms resolution. */
  serverCpuMs: number[];
  /** The same in % of one core over the wall time. */
  serverCpuPct: number[];
  /** This process (the bench client) in % of one core. */
  clientCpuPct: number;
  /** Everything else on the machine (other processes, steal) in % of one core; tick resolution. */
  backgroundCpuPct: number;
  /** The whole machine busy, in % of one core (at most 100 x cores). */
  machineCpuPct: number;
}

/** CpuMeter for a cluster: one CPU figure per server process, plus the client and the rest of the machine. */
export class ClusterCpuMeter {
  private readonly t0 = performance.now();
  private readonly self0 = process.cpuUsage();
  private readonly srv0: number[];
  private readonly machine0 = machineBusyMs();
  constructor(private readonly pids: readonly number[]) {
    this.srv0 = pids.map(procCpuMs);
  }
  stop(): ClusterCpuUse {
    const wallMs = performance.now() - this.t0;
    const self = process.cpuUsage(this.self0);
    const serverCpuMs = this.pids.map((pid, i) => procCpuMs(pid) - this.srv0[i]!);
    const clientCpuMs = (self.user + self.system) / 1000;
    const machineMs = machineBusyMs() - this.machine0;
    const otherMs = machineMs - serverCpuMs.reduce((a, b) => a + b, 0) - clientCpuMs;
    return {
      wallMs,
      serverCpuMs,
      serverCpuPct: serverCpuMs.map((ms) => (ms / wallMs) * 100),
      clientCpuPct: (clientCpuMs / wallMs) * 100,
      backgroundCpuPct: Math.max(0, (otherMs / wallMs) * 100),
      machineCpuPct: (machineMs / wallMs) * 100,
    };
  }
}

/** CPU use of this process, of one server and of everything else over a measured window. */
export class CpuMeter {
  private readonly meter: ClusterCpuMeter;
  constructor(pid: number) {
    this.meter = new ClusterCpuMeter([pid]);
  }
  stop(): CpuUse {
    const u = this.meter.stop();
    return {
      serverCpuMs: u.serverCpuMs[0]!,
      serverCpuPct: u.serverCpuPct[0]!,
      clientCpuPct: u.clientCpuPct,
      backgroundCpuPct: u.backgroundCpuPct,
    };
  }
}

/**
 * Waits up to `maxMs` for a second in which the whole machine is nearly idle
 * (< 10% of one core); stops early when `stop()` says so.
 */
export async function waitQuiet(maxMs: number, stop: () => boolean = () => false): Promise<boolean> {
  const deadline = performance.now() + maxMs;
  while (performance.now() < deadline && !stop()) {
    const busy0 = machineBusyMs();
    const t0 = performance.now();
    await sleep(1000);
    const pct = ((machineBusyMs() - busy0) / (performance.now() - t0)) * 100;
    if (!(pct >= QUIET_PCT)) return true; // NaN (no /proc) counts as quiet
  }
  return false;
}

/** --wait-quiet: with `waitQuietMs` > 0, waits for a quiet machine and warns when it does not come. */
export async function quiet(waitQuietMs: number, stop?: () => boolean): Promise<void> {
  if (waitQuietMs > 0 && !(await waitQuiet(waitQuietMs, stop))) {
    console.error(`  machine not quiet after ${waitQuietMs / 1000} s; running anyway`);
  }
}

// ---------------------------------------------------------------- ports and commands

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on the port (bounded). */
export async function waitForPort(port: number, child: Child, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    if (child.exited) throw new Error(`${child.name} exited during startup:\n${child.tail()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const sock = net.connect({ host: '127.0.0.1', port }, () => {
        sock.destroy();
        resolve(true);
      });
      sock.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`${child.name} did not accept connections on ${port} within ${ms} ms:\n${child.tail()}`);
}

/** A command's trimmed stdout, or 'unknown' if it fails. */
export function tryExec(cmd: string, args: string[], cwd?: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    return 'unknown';
  }
}

// ---------------------------------------------------------------- child processes

/** The checkout the scripts run from (dist/bench/.. /..). */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const NATS_SERVER =
  process.env.NATS_SERVER ?? (existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server');

/** A child process we started: its output tail (for errors) and a bounded stop. */
export class Child {
  exited = false;
  exitCode: number | null = null;
  private readonly lines: string[] = [];
  /** Lines seen so far, including those dropped from `lines`. */
  private lineCount = 0;
  /** Settles when the process has exited (or failed to spawn). */
  readonly exitPromise: Promise<void>;

  constructor(
    readonly name: string,
    readonly proc: ChildProcess,
    onLine?: (line: string) => void,
  ) {
    this.exitPromise = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        this.exited = true;
        this.exitCode = code ?? (signal !== null ? 128 + (os.constants.signals[signal] ?? 0) : null);
        resolve();
      });
      proc.once('error', (err) => {
        this.lines.push(`spawn error: ${err.message}`);
        this.exited = true;
        resolve();
      });
    });
    for (const stream of [proc.stdout, proc.stderr]) {
      if (stream === null) continue;
      createInterface({ input: stream }).on('line', (line) => {
        this.lines.push(line);
        this.lineCount++;
        if (this.lines.length > 50) this.lines.shift();
        onLine?.(line);
      });
    }
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  tail(): string {
    return this.lines.join('\n');
  }

  /** A mark for `linesSince`. */
  mark(): number {
    return this.lineCount;
  }

  /** The output lines since `mark` (at most the last 50 kept), e.g. a slow-consumer warning. */
  linesSince(mark: number): string[] {
    const n = Math.min(this.lineCount - mark, this.lines.length);
    return n > 0 ? this.lines.slice(-n) : [];
  }

  /** Sends `signal`, waits up to `ms`, then SIGKILL. Returns the exit code. */
  async stop(signal: NodeJS.Signals, ms: number): Promise<number | null> {
    if (!this.exited) {
      this.proc.kill(signal);
      await Promise.race([this.exitPromise, sleep(ms)]);
      if (!this.exited) {
        this.proc.kill('SIGKILL');
        await Promise.race([this.exitPromise, sleep(2_000)]);
      }
    }
    return this.exitCode;
  }
}

/**
 * Everything to undo on exit, however the script exits: the children it
 * started and its temp dirs. Creating one installs the process 'exit'
 * (last resort SIGKILL and rm) and SIGINT (stop the servers, exit 130) handlers.
 */
export class Cleanup {
  readonly children = new Set<Child>();
  readonly tempDirs = new Set<string>();
  /** Set by the first Ctrl-C; loops check it to stop early. */
  interrupted = false;
  private cleaning: Promise<void> | undefined;

  /** `stopMs`: how long each child gets after the stop signal before SIGKILL. */
  constructor(private readonly stopMs = STOP_MS) {
    process.on('exit', () => {
      // Last resort when something skipped the finally blocks.
      for (const c of this.children) if (!c.exited) c.proc.kill('SIGKILL');
      for (const d of this.tempDirs) rmSync(d, { recursive: true, force: true });
    });
    process.on('SIGINT', () => {
      if (this.interrupted) process.exit(130);
      this.interrupted = true;
      console.error('\ninterrupted: stopping servers');
      void this.run().finally(() => process.exit(130));
    });
  }

  /**
   * Runs a bench's `main`: exits with process.exitCode (0) when it ends, and
   * with 1, after stopping the children and removing the temp dirs, when it throws.
   */
  exitWith(name: string, main: () => Promise<void>): void {
    main().then(
      () => process.exit(process.exitCode ?? 0),
      async (err: unknown) => {
        console.error(`${name}: ${(err as Error).stack ?? String(err)}`);
        await this.run();
        process.exit(1);
      },
    );
  }

  /** Stops all children and removes the temp dirs; runs once, later calls get the same promise. */
  run(stopSignal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    this.cleaning ??= (async () => {
      await Promise.all([...this.children].map((c) => c.stop(stopSignal, this.stopMs)));
      this.children.clear();
      for (const d of this.tempDirs) rmSync(d, { recursive: true, force: true });
      this.tempDirs.clear();
    })();
    return this.cleaning;
  }

  /** A new temp dir, removed on exit. */
  newTempDir(prefix: string): string {
    const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
    this.tempDirs.add(dir);
    return dir;
  }
}

/**
 * Starts a SwarmMQ node (`node <args>`; the args include its main.js and
 * `--port 0`) and resolves with the port from its "node started" log line.
 * `onLine` sees every output line first.
 */
export async function spawnSwarm(
  cleanup: Cleanup,
  args: string[],
  options: SpawnOptions,
  startupMs: number,
  onLine?: (line: string) => void,
): Promise<{ port: number; child: Child }> {
  let resolvePort: (port: number) => void = () => {};
  const portPromise = new Promise<number>((r) => (resolvePort = r));
  const proc = spawn(process.execPath, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  const child = new Child('swarmmq', proc, (line) => {
    onLine?.(line);
    if (!line.includes('node started')) return;
    try {
      const rec = JSON.parse(line) as { msg?: string; port?: number };
      if (rec.msg === 'node started' && typeof rec.port === 'number') resolvePort(rec.port);
    } catch {
      // not a JSON log line
    }
  });
  cleanup.children.add(child);
  const exited = child.exitPromise.then((): never => {
    throw new Error(`swarmmq exited during startup (code ${child.exitCode}):\n${child.tail()}`);
  });
  const port = await withTimeout(Promise.race([portPromise, exited]), startupMs, 'swarmmq startup');
  return { port, child };
}

/** Starts nats-server with `args(port)` on a free port and waits until it accepts connections (3 tries). */
export async function spawnNatsServer(
  cleanup: Cleanup,
  args: (port: number) => string[],
  startupMs: number,
): Promise<{ port: number; child: Child }> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const proc = spawn(NATS_SERVER, args(port), { stdio: ['ignore', 'pipe', 'pipe'] });
    const child = new Child('nats-server', proc);
    cleanup.children.add(child);
    try {
      await waitForPort(port, child, startupMs);
      return { port, child };
    } catch (err) {
      // The port may have been taken between freePort and the bind: try another.
      lastErr = err;
      await child.stop('SIGKILL', 2_000);
      cleanup.children.delete(child);
    }
  }
  throw lastErr;
}

// ---------------------------------------------------------------- machine and versions

/** The installed version of a package in this checkout's node_modules, or 'unknown'. */
export function packageVersion(pkg: string): string {
  try {
    const file = path.join(REPO_ROOT, 'node_modules', pkg, 'package.json');
    return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  memory: string;
  os: string;
  node: string;
  natsServer: string;
}

/** CPU, memory, OS, node and nats-server versions, for the report header and --json. */
export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    natsServer: tryExec(NATS_SERVER, ['--version']).replace(/^nats-server:\s*/, ''),
  };
}

// ---------------------------------------------------------------- command line

/** A benchmark flag: a switch, a text, or a number in a range (`integer` unless said otherwise). */
export type FlagSpec =
  { type: 'boolean' } | { type: 'string' } | { type: 'number'; min: number; max: number; integer?: boolean };

type FlagValues<S extends Record<string, FlagSpec>> = {
  [K in keyof S]?: S[K] extends { type: 'boolean' }
    ? boolean
    : S[K] extends { type: 'number' }
      ? number
      : string;
};

/**
 * Reads `--flag [value]` arguments with node's parseArgs (unknown flags and
 * missing values are errors) and checks numbers against their range; every
 * refusal goes to `usage` with the flag named. `--help`/`-h` calls usage().
 */
export function readFlags<S extends Record<string, FlagSpec>>(
  argv: string[],
  spec: S,
  usage: (err?: string) => never,
): FlagValues<S> {
  const options: Record<string, { type: 'boolean' | 'string'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, f] of Object.entries(spec))
    options[name] = { type: f.type === 'boolean' ? 'boolean' : 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as Record<
      string,
      string | boolean | undefined
    >;
  } catch (err) {
    return usage((err as Error).message);
  }
  if (values.help === true) usage();
  const out: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(spec)) {
    const v = values[name];
    if (v === undefined) continue;
    if (f.type !== 'number') {
      out[name] = v;
      continue;
    }
    const n = Number(v);
    const integer = f.integer ?? true;
    if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < f.min || n > f.max) {
      usage(`--${name}: ${f.min}..${f.max}${integer ? '' : ' (a number)'}, got ${JSON.stringify(v)}`);
    }
    out[name] = n;
  }
  return out as FlagValues<S>;
}

// ---------------------------------------------------------------- SwarmMQ clusters (cluster.ts, sdk.ts)

/**
 * Retries `fn` until it resolves or `deadlineMs` passes (then throws its
 * last error), 200 ms apart; `stop()` (e.g. a Ctrl-C) ends it early.
 */
export async function retry<T>(
  what: string,
  deadlineMs: number,
  fn: () => Promise<T>,
  stop: () => boolean = () => false,
): Promise<{ v: T; tries: number }> {
  const deadline = performance.now() + deadlineMs;
  for (let tries = 1; ; tries++) {
    try {
      return { v: await fn(), tries };
    } catch (err) {
      if (performance.now() > deadline || stop()) {
        throw new Error(
          `${what}: still failing after ${tries} tries: ${(err as Error).message ?? String(err)}`,
        );
      }
      await sleep(200);
    }
  }
}

/**
 * A node's start-up warning that every run without a configured master key
 * logs (the key is generated); not a sign of trouble in a benchmark.
 */
const EXPECTED_WARNING = /no master key configured/;

/** Keeps the first warning lines of a set of servers, and counts them all. */
export class WarningLog {
  count = 0;
  readonly first: string[] = [];
  add(line: string): void {
    if (EXPECTED_WARNING.test(line)) return;
    this.count++;
    if (this.first.length < 20) this.first.push(line.length > 400 ? `${line.slice(0, 400)}...` : line);
  }
}

/** One server process of a benchmarked cluster. */
export interface ServerNode {
  port: number;
  child: Child;
}

export interface SwarmClusterOptions {
  /** The SwarmMQ CLI (main.js) to start. */
  main: string;
  nodes: number;
  rf: number;
  /** For messages: e.g. "SwarmMQ 5x3". */
  label: string;
  /** Prefix of the temp dir (data dirs and registry) under $TMPDIR. */
  tempPrefix: string;
  /** How long each node may take to log "node started" (default NODE_START_MS). */
  startMs?: number;
  /** From the last "node started" until every node logged a view of all N (default FORM_DEADLINE_MS). */
  formMs?: number;
}

/** A SwarmMQ cluster of child processes, formed (every node sees all N). */
export interface SwarmCluster {
  readonly dir: string;
  readonly nodes: ServerNode[];
  /** Warning and error lines (pino level >= 40) of every node. */
  readonly log: WarningLog;
  /** performance.now() at the first spawn. */
  readonly t0: number;
  /** First spawn until every node logged "node started", in ms. */
  readonly startedMs: number;
  /** First spawn until every node's view had all N members, in ms. */
  readonly viewMs: number;
  /** From now on, a view change counts as one after the cluster was ready. */
  markReady(): void;
  /** Views logged after markReady() (0: the membership was stable). */
  viewChangesAfterReady(): number;
  /** Stops the nodes (SIGTERM, then SIGKILL after `stopMs`, default STOP_MS) and removes the temp dir. */
  stop(stopMs?: number): Promise<void>;
}

/**
 * Starts N SwarmMQ nodes that find each other through a registry dir of
 * this run only (MESH.md M1.3):
 *   node <main> start --host 127.0.0.1 --port 0 --data-dir <tmp>/n<i> --cluster bench-<rand>
 *        --registry-dir <tmp>/registry --replication-factor RF --log-level info
 * and resolves once every node logged a `cluster view changed` with N members
 * (a lone node may log no view at all).
 */
export async function startSwarmCluster(cleanup: Cleanup, o: SwarmClusterOptions): Promise<SwarmCluster> {
  const dir = cleanup.newTempDir(o.tempPrefix);
  const cluster = `bench-${randomBytes(4).toString('hex')}`;
  const registry = path.join(dir, 'registry');
  const log = new WarningLog();
  const views: number[] = new Array<number>(o.nodes).fill(0);
  let viewLines = 0;
  let ready = false;
  const t0 = performance.now();
  const nodes = await Promise.all(
    Array.from({ length: o.nodes }, (_, i) => {
      const dataDir = path.join(dir, `n${i}`);
      mkdirSync(dataDir, { recursive: true });
      const args = [o.main, 'start', '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir];
      args.push('--cluster', cluster, '--registry-dir', registry);
      args.push('--replication-factor', String(o.rf), '--log-level', 'info');
      return spawnSwarm(cleanup, args, {}, o.startMs ?? NODE_START_MS, (line) => {
        if (line.includes('"cluster view changed"')) {
          if (ready) viewLines++;
          try {
            views[i] = Number((JSON.parse(line) as { members?: number }).members ?? 0);
          } catch {
            // not a JSON log line
          }
        } else if (/"level":[4-6]\d/.test(line)) log.add(`n${i} ${ready ? '' : '(starting) '}${line}`);
      });
    }),
  );
  const startedMs = performance.now() - t0;
  const formMs = o.formMs ?? FORM_DEADLINE_MS;
  const deadline = performance.now() + formMs;
  while (o.nodes > 1 && !views.every((v) => v === o.nodes)) {
    if (performance.now() > deadline || cleanup.interrupted) {
      throw new Error(`${o.label}: views not complete after ${formMs / 1000} s: ${views.join(',')}`);
    }
    await sleep(50);
  }
  const viewMs = performance.now() - t0;
  return {
    dir,
    nodes,
    log,
    t0,
    startedMs,
    viewMs,
    markReady: () => {
      ready = true;
    },
    viewChangesAfterReady: () => viewLines,
    stop: async (stopMs = STOP_MS) => {
      await stopChildren(cleanup, nodes, 'SIGTERM', stopMs);
      rmSync(dir, { recursive: true, force: true });
      cleanup.tempDirs.delete(dir);
    },
  };
}

/** Stops the nodes with `signal` (SIGKILL after `stopMs`, default STOP_MS) and forgets them. */
export async function stopChildren(
  cleanup: Cleanup,
  nodes: readonly ServerNode[],
  signal: NodeJS.Signals,
  stopMs = STOP_MS,
): Promise<void> {
  await Promise.all(
    nodes.map(async (n) => {
      await n.child.stop(signal, stopMs);
      cleanup.children.delete(n.child);
    }),
  );
}

/** One `+OWNER <destination> <owner-id> <owner-client-address> <replicas>` answer (MESH.md M3.3). */
export interface OwnerAnswer {
  owner: string;
  client: string;
  replicas: string;
}

/**
 * What `ownerAnswers` needs of a raw protocol connection
 * (test/helpers/durable-client.ts's DurableClient has it).
 */
export interface LineClient {
  /** Every line that was not an answer it routed (here: the `+OWNER` lines). */
  readonly other: string[];
  readonly errors: string[];
  write(data: string): boolean;
  ping(timeoutMs?: number): Promise<void>;
}

/** OWNER of every destination in `names`, as the node behind `c` answers it (M3.3). */
export async function ownerAnswers(c: LineClient, names: readonly string[]): Promise<OwnerAnswer[]> {
  const start = c.other.length;
  c.write(names.map((n) => `OWNER ${n}\r\n`).join(''));
  await c.ping(10_000);
  const byDest = new Map<string, OwnerAnswer>();
  for (const l of c.other.slice(start)) {
    const f = l.split(' ');
    if (f[0] === '+OWNER' && f.length === 5)
      byDest.set(f[1]!, { owner: f[2]!, client: f[3]!, replicas: f[4]! });
  }
  return names.map((n) => {
    const a = byDest.get(n);
    if (a === undefined) throw new Error(`no +OWNER for ${n} (errors: ${c.errors.slice(-3).join('; ')})`);
    return a;
  });
}

/**
 * Throws unless every node (one answer list each, in the order of `names`)
 * names the same owner and the same `wantReplicas` replicas for every
 * destination (M3.2, M3.3).
 */
export function checkOwnerAgreement(
  answers: readonly OwnerAnswer[][],
  names: readonly string[],
  wantReplicas: number,
): void {
  names.forEach((name, k) => {
    const first = answers[0]![k]!;
    const replicas = first.replicas === '-' ? 0 : first.replicas.split(',').length;
    if (first.owner !== 'local' && replicas !== wantReplicas)
      throw new Error(`${name}: ${replicas} replicas`);
    if (answers.some((a) => a[k]!.owner !== first.owner || a[k]!.replicas !== first.replicas)) {
      throw new Error(`${name}: nodes disagree on its owner`);
    }
  });
}
