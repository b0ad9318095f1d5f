/**
 * Durable benchmark: SwarmMQ destinations against nats-server JetStream, the
 * same workload through the stock client, and a disk-footprint mode.
 *
 *   node dist/bench/durable.js [--quick] [--json out.json]      # throughput, latency, RSS, disk
 *   node dist/bench/durable.js --disk [--disk-msgs N] [--json f] # bytes on disk per message
 *
 * Both servers are started here as child processes on temp dirs:
 *   SwarmMQ:   node dist/src/cli/main.js start --port 0 --data-dir <tmp>
 *   JetStream: nats-server -js -sd <tmp> -a 127.0.0.1 -p <free port>
 *
 * Workload (128-byte payloads, client and servers on one machine, loopback):
 *   send     N confirmed sends, pipelined with a window of 256 outstanding.
 *            SwarmMQ: nc.request(destination) with the stock client (a PUB
 *            with a reply to an existing destination is stored and answered
 *            with a JetStream-shaped ack, DURABLE.md D3.7). JetStream:
 *            js.publish() to a file-backed, 1-replica work-queue stream.
 *   pull+ack the same N messages, batches of 100, every message acked.
 *            SwarmMQ: raw PULL <dest> <group> 100 + ACK over TCP.
 *            JetStream: consumer.fetch({max_messages: 100}) + m.ack().
 *   e2e      M messages sent (window 256) while a consumer pulls and acks:
 *            send call to receipt at the consumer.
 * Durability differs: a SwarmMQ +STORED/ack is sent after fdatasync of the
 * batch holding the message; nats-server 2.9 acknowledges once the message
 * is written to its block file (page cache) and fsyncs on a timer
 * (filestore defaultSyncInterval, 2 min; sync_interval/sync_always are
 * configurable from 2.10 on).
 *
 * --disk stores 1,000,000 messages (--disk-msgs) of 128 random bytes in
 * each system (pipelined, window 1024; SwarmMQ through raw SEND with
 * assigned ids), stops each server gracefully, and reports the bytes its
 * data dir takes per message beyond the payload; for SwarmMQ also the
 * logical bytes per LevelDB record kind and the time to load the store at
 * the next start.
 *
 * Every loop is bounded in count and time; children and temp dirs are
 * removed on exit, error or Ctrl-C.
 */
import { randomBytes } from 'node:crypto';
import { lstatSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Level } from 'level';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  AckPolicy,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type Consumer,
  type JetStreamClient,
} from '@nats-io/jetstream';
import { DurableClient } from '../test/helpers/durable-client.js';
import {
  type Child,
  Cleanup,
  CpuMeter,
  percentiles,
  procCpuMs,
  procMemKb,
  quiet,
  runCalls,
  sleep,
  spawnNatsServer,
  spawnSwarm,
  withTimeout,
  readFlags,
} from './lib.js';
import {
  environment,
  fMiB,
  fMs,
  natsConnect,
  renderComparison,
  stampedPayload,
  SWARM_MAIN,
  type CompareRow,
} from './compare.js';

// ---------------------------------------------------------------- options

const PAYLOAD_BYTES = 128;
const COMPARE_HEAD = ['metric', 'SwarmMQ', 'JetStream', 'ratio S/J'];
const PULL_BATCH = 100;
/** A phase that stops making progress for this long ends and reports what it got. */
const STALL_MS = 10_000;
/** Hard cap on one phase. */
const PHASE_DEADLINE_MS = 180_000;
const REQUEST_TIMEOUT_MS = 10_000;

interface Config {
  quick: boolean;
  runs: number;
  waitQuietMs: number;
  json: string | undefined;
  disk: boolean;
  msgs: number;
  e2eMsgs: number;
  e2eRate: number;
  window: number;
  warmupMsgs: number;
  diskMsgs: number;
  diskWindow: number;
}

function parseArgs(argv: string[]): Config {
  const f = readFlags(
    argv,
    {
      quick: { type: 'boolean' },
      json: { type: 'string' },
      disk: { type: 'boolean' },
      'disk-msgs': { type: 'number', min: 1000, max: 5_000_000 },
      msgs: { type: 'number', min: 1000, max: 2_000_000 },
      runs: { type: 'number', min: 1, max: 10 },
      'wait-quiet': { type: 'number', min: 0, max: 600, integer: false },
    },
    usage,
  );
  const quick = f.quick === true;
  const json = f.json;
  const disk = f.disk === true;
  const diskMsgs = f['disk-msgs'] ?? 1_000_000;
  const msgs = f.msgs;
  const runs = f.runs;
  const waitQuietMs = (f['wait-quiet'] ?? 0) * 1000;
  return {
    quick,
    runs: runs ?? (quick ? 1 : 2),
    waitQuietMs,
    json,
    disk,
    msgs: msgs ?? (quick ? 10_000 : 100_000),
    e2eMsgs: quick ? 5_000 : 20_000,
    e2eRate: 2_000,
    window: 256,
    warmupMsgs: quick ? 1_000 : 5_000,
    diskMsgs,
    diskWindow: 1024,
  };
}

function usage(err?: string): never {
  if (err !== undefined) console.error(`durable: ${err}`);
  console.error(
    'usage: node dist/bench/durable.js [--quick] [--msgs N] [--runs N] [--wait-quiet S] [--json out.json]\n' +
      '       node dist/bench/durable.js --disk [--disk-msgs N] [--json out.json]',
  );
  process.exit(err === undefined ? 0 : 2);
}

// ---------------------------------------------------------------- helpers

interface DirSize {
  /** Sum of file sizes (what `du -sb` says). */
  apparent: number;
  /** Blocks allocated (what `du -s` says), in bytes. */
  allocated: number;
  files: number;
}

function dirSize(dir: string): DirSize {
  const out: DirSize = { apparent: 0, allocated: 0, files: 0 };
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const name of names) {
      const p = path.join(d, name);
      try {
        const st = lstatSync(p);
        if (st.isDirectory()) walk(p);
        else {
          out.apparent += st.size;
          out.allocated += st.blocks * 512;
          out.files++;
        }
      } catch {
        // removed while we looked (LevelDB compaction, JetStream block rotation)
      }
    }
  };
  walk(dir);
  return out;
}

const fInt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');

// ---------------------------------------------------------------- child processes

/** The node to measure: this checkout's build, or SWARMMQ_CLI (e.g. a `git archive` export built elsewhere). */

/** Children and temp dirs, removed on exit, error or Ctrl-C. */
const cleanup = new Cleanup(20_000);

interface Server {
  key: 'swarmmq' | 'jetstream';
  label: string;
  port: number;
  child: Child;
  /** The data dir (SwarmMQ) or the JetStream store dir. */
  dir: string;
  /** Log lines of interest (SwarmMQ: JSON lines). */
  logs: string[];
}

async function startSwarm(dir: string): Promise<Server> {
  const logs: string[] = [];
  const { port, child } = await spawnSwarm(
    cleanup,
    [SWARM_MAIN, 'start', '--host', '127.0.0.1', '--port', '0', '--data-dir', dir, '--log-level', 'info'],
    {},
    120_000,
    (line) => {
      if (line.includes('"durable store loaded"') || line.includes('"level":50')) logs.push(line);
    },
  );
  return { key: 'swarmmq', label: 'SwarmMQ', port, child, dir, logs };
}

async function startJetStream(dir: string): Promise<Server> {
  const { port, child } = await spawnNatsServer(
    cleanup,
    (port) => ['-js', '-sd', dir, '-a', '127.0.0.1', '-p', String(port)],
    15_000,
  );
  return { key: 'jetstream', label: 'JetStream', port, child, dir, logs: [] };
}

/** A graceful stop: SIGTERM for SwarmMQ, SIGINT for nats-server (its clean shutdown exits 0). */
async function stopServer(s: Server): Promise<number | null> {
  const code = await s.child.stop(s.key === 'swarmmq' ? 'SIGTERM' : 'SIGINT', 60_000);
  cleanup.children.delete(s.child);
  return code;
}

// ---------------------------------------------------------------- the two systems behind one interface

interface Pulled {
  /** Each message's payload. */
  payloads: Uint8Array[];
  /** performance.now() when each arrived. */
  at: number[];
}

interface Driver {
  readonly server: Server;
  /** Creates the destination/stream and the group/consumer. */
  prepare(name: string): Promise<void>;
  /** A confirmed send; rejects when refused. */
  send(payload: Uint8Array): Promise<void>;
  /** Up to `max` messages (waiting up to `waitMs` for the first), each acked. */
  pullAndAck(max: number, waitMs: number): Promise<Pulled>;
  /** Waits until the acks sent so far reached the server; returns messages still stored. */
  settle(): Promise<number>;
  close(): Promise<void>;
}

class SwarmDriver implements Driver {
  private dest = '';
  private readonly group = 'bench';
  private constructor(
    readonly server: Server,
    private readonly nc: NatsConnection,
    private readonly raw: DurableClient,
  ) {}

  static async open(server: Server): Promise<SwarmDriver> {
    const nc = await natsConnect(server.port, 'bench-durable-pub', server.label);
    const raw = await DurableClient.connect(server.port, '127.0.0.1', 'bench-durable-pull');
    return new SwarmDriver(server, nc, raw);
  }

  async prepare(name: string): Promise<void> {
    this.dest = name;
    await this.raw.create(name);
    // The group exists before the first message, like the JetStream consumer.
    await this.raw.pull(name, this.group, 1);
  }

  async send(payload: Uint8Array): Promise<void> {
    const reply = await this.nc.request(this.dest, payload, { timeout: REQUEST_TIMEOUT_MS });
    const ack = reply.json<{ seq?: number; error?: { description: string } }>();
    if (ack.error !== undefined || typeof ack.seq !== 'number') {
      throw new Error(`refused: ${JSON.stringify(ack)}`);
    }
  }

  async pullAndAck(max: number, waitMs: number): Promise<Pulled> {
    const msgs = await this.raw.pull(this.dest, this.group, max, `${waitMs}ms`);
    this.raw.ack(...msgs.map((m) => m.handle));
    return { payloads: msgs.map((m) => m.payload), at: msgs.map((m) => m.receivedAt) };
  }

  async settle(): Promise<number> {
    await this.raw.ping(30_000);
    const line = (await this.raw.dests()).find((l) => l.startsWith(`DEST ${this.dest} `)) ?? '';
    return Number(/depth=(\d+)/.exec(line)?.[1] ?? NaN);
  }

  async close(): Promise<void> {
    this.raw.close();
    await withTimeout(this.nc.close(), 5_000, 'close').catch(() => undefined);
  }
}

class JetStreamDriver implements Driver {
  private subject = '';
  private stream = '';
  private consumer: Consumer | undefined;
  private constructor(
    readonly server: Server,
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
  ) {}

  static async open(server: Server): Promise<JetStreamDriver> {
    const nc = await natsConnect(server.port, 'bench-durable', server.label);
    return new JetStreamDriver(server, nc, jetstream(nc));
  }

  async prepare(name: string): Promise<void> {
    this.subject = name;
    this.stream = name.replace(/\./g, '_').toUpperCase();
    const jsm = await jetstreamManager(this.nc);
    await jsm.streams.add({
      name: this.stream,
      subjects: [name],
      storage: StorageType.File,
      num_replicas: 1,
      // Acked messages are removed, as in a SwarmMQ destination with one group.
      retention: RetentionPolicy.Workqueue,
    });
    await jsm.consumers.add(this.stream, { durable_name: 'bench', ack_policy: AckPolicy.Explicit });
    this.consumer = await this.js.consumers.get(this.stream, 'bench');
  }

  async send(payload: Uint8Array): Promise<void> {
    await this.js.publish(this.subject, payload, { timeout: REQUEST_TIMEOUT_MS });
  }

  async pullAndAck(max: number, waitMs: number): Promise<Pulled> {
    const out: Pulled = { payloads: [], at: [] };
    const iter = await this.consumer!.fetch({ max_messages: max, expires: Math.max(1000, waitMs) });
    for await (const m of iter) {
      out.at.push(performance.now());
      out.payloads.push(m.data);
      m.ack();
    }
    return out;
  }

  async settle(): Promise<number> {
    await this.nc.flush();
    const jsm = await jetstreamManager(this.nc);
    // Acks are applied asynchronously: give the server a moment (bounded).
    for (let i = 0; i < 50; i++) {
      const info = await jsm.streams.info(this.stream);
      if (info.state.messages === 0 || i === 49) return info.state.messages;
      await sleep(100);
    }
    return NaN;
  }

  async close(): Promise<void> {
    await withTimeout(this.nc.close(), 5_000, 'close').catch(() => undefined);
  }
}

// ---------------------------------------------------------------- payloads

/** A fresh payload: performance.now() (float64 LE) in bytes 0-7, the index in 8-11. */

const readStamp = (p: Uint8Array): number => Buffer.from(p.buffer, p.byteOffset, 8).readDoubleLE(0);
const readIndex = (p: Uint8Array): number => Buffer.from(p.buffer, p.byteOffset + 8, 4).readUInt32LE(0);

// ---------------------------------------------------------------- phases

interface SendResult {
  sent: number;
  confirmed: number;
  errors: number;
  firstError: string | undefined;
  msgsPerSec: number;
  p50: number;
  p99: number;
  serverCpuMsPerMsg: number;
  /** CPU other processes used meanwhile (% of one core): above ~25 the run was disturbed. */
  othersPct: number;
}

/** n confirmed sends, at most `window` outstanding; with `rate`, at most that many per second. */
async function sendPhase(
  d: Driver,
  n: number,
  window: number,
  make = (i: number): Buffer => stampedPayload(i, PAYLOAD_BYTES),
  rate = Infinity,
): Promise<SendResult> {
  const lat = new Float64Array(n).fill(NaN);
  let confirmed = 0;
  let errors = 0;
  let firstError: string | undefined;
  const cpu0 = procCpuMs(d.server.child.pid);
  const others = new CpuMeter(d.server.child.pid);
  const t0 = performance.now();
  /** How many sends are due by now (all of them without a rate). */
  const due = (): number =>
    rate === Infinity ? n : Math.min(n, Math.floor(((performance.now() - t0) * rate) / 1000) + 1);
  const run = await runCalls({
    n,
    canStart: (inflight, started) => inflight < window && started < due(),
    call: (i) => {
      const start = performance.now();
      return d.send(make(i)).then(
        () => {
          lat[i] = performance.now() - start;
          confirmed++;
        },
        (err: unknown) => {
          errors++;
          firstError ??= (err as Error).message;
        },
      );
    },
    pacerMs: rate === Infinity ? undefined : 1,
    interrupted: () => cleanup.interrupted,
  });
  firstError ??= run.stopped;
  const ms = performance.now() - t0;
  const [p50, p99] = percentiles(lat, n, [0.5, 0.99]) as [number, number];
  return {
    sent: run.started,
    confirmed,
    errors,
    firstError,
    msgsPerSec: (confirmed * 1000) / ms,
    p50,
    p99,
    serverCpuMsPerMsg: (procCpuMs(d.server.child.pid) - cpu0) / Math.max(1, confirmed),
    othersPct: others.stop().backgroundCpuPct,
  };
}

interface PullResult {
  received: number;
  duplicates: number;
  msgsPerSec: number;
  left: number;
  serverCpuMsPerMsg: number;
  othersPct: number;
}

/** Pulls and acks until `n` distinct messages arrived (bounded by stall and deadline). */
async function pullPhase(d: Driver, n: number): Promise<PullResult> {
  const seen = new Uint8Array(n);
  let received = 0;
  let duplicates = 0;
  const cpu0 = procCpuMs(d.server.child.pid);
  const others = new CpuMeter(d.server.child.pid);
  const t0 = performance.now();
  let progressAt = t0;
  while (received < n && !cleanup.interrupted) {
    const now = performance.now();
    if (now - t0 > PHASE_DEADLINE_MS || now - progressAt > STALL_MS) break;
    const got = await withTimeout(d.pullAndAck(PULL_BATCH, 1000), 30_000, 'pull');
    for (const p of got.payloads) {
      const i = readIndex(p);
      if (i < n && seen[i] === 0) {
        seen[i] = 1;
        received++;
      } else duplicates++;
    }
    if (got.payloads.length > 0) progressAt = performance.now();
  }
  const ms = performance.now() - t0;
  const othersPct = others.stop().backgroundCpuPct;
  const left = await d.settle();
  return {
    received,
    duplicates,
    msgsPerSec: (received * 1000) / ms,
    left,
    serverCpuMsPerMsg: (procCpuMs(d.server.child.pid) - cpu0) / Math.max(1, received),
    othersPct,
  };
}

interface E2eResult {
  sent: number;
  received: number;
  p50: number;
  p99: number;
  max: number;
  msgsPerSec: number;
}

/** Sends m messages at `rate` per second while a consumer pulls and acks; latency from send call to receipt. */
async function e2ePhase(d: Driver, m: number, window: number, rate: number): Promise<E2eResult> {
  const lat = new Float64Array(m).fill(NaN);
  const seen = new Uint8Array(m);
  let received = 0;
  let sending = true;
  const t0 = performance.now();
  const consumer = (async () => {
    let progressAt = performance.now();
    while (received < m && !cleanup.interrupted) {
      const now = performance.now();
      if (now - t0 > PHASE_DEADLINE_MS || (!sending && now - progressAt > STALL_MS)) break;
      const got = await withTimeout(d.pullAndAck(PULL_BATCH, 1000), 30_000, 'pull');
      got.payloads.forEach((p, k) => {
        const i = readIndex(p);
        if (i < m && seen[i] === 0) {
          seen[i] = 1;
          lat[received++] = got.at[k]! - readStamp(p);
        }
      });
      if (got.payloads.length > 0) progressAt = performance.now();
    }
  })();
  const sent = await sendPhase(d, m, window, undefined, rate);
  sending = false;
  await consumer;
  const ms = performance.now() - t0;
  await d.settle();
  const [p50, p99, max] = percentiles(lat, received, [0.5, 0.99, 1]) as [number, number, number];
  return { sent: sent.confirmed, received, p50, p99, max, msgsPerSec: (received * 1000) / ms };
}

// ---------------------------------------------------------------- full mode

interface SystemResult {
  system: Server['key'];
  run: number;
  idleRssKb: number;
  send: SendResult;
  rssAfterSendKb: number;
  diskBefore: DirSize;
  diskAfterSend: DirSize;
  /** (allocated after - before) / confirmed - payload. */
  diskOverheadPerMsg: number;
  diskApparentOverheadPerMsg: number;
  pull: PullResult;
  rssAfterPullKb: number;
  e2e: E2eResult;
  hwmKb: number;
}

async function runSystem(s: Server, cfg: Config, run: number): Promise<SystemResult> {
  const d: Driver = s.key === 'swarmmq' ? await SwarmDriver.open(s) : await JetStreamDriver.open(s);
  try {
    // Warm-up (not recorded).
    await d.prepare('bench.warm');
    await sendPhase(d, cfg.warmupMsgs, cfg.window);
    await pullPhase(d, cfg.warmupMsgs);
    const idleRssKb = procMemKb(s.child.pid).rssKb;

    await d.prepare(`bench.durable.r${run}`);
    await sleep(300);
    const diskBefore = dirSize(s.dir);
    await quiet(cfg.waitQuietMs, () => cleanup.interrupted);
    const send = await sendPhase(d, cfg.msgs, cfg.window);
    const rssAfterSendKb = procMemKb(s.child.pid).rssKb;
    await sleep(200);
    const diskAfterSend = dirSize(s.dir);
    const per = (a: number, b: number): number => (a - b) / Math.max(1, send.confirmed) - PAYLOAD_BYTES;
    console.error(
      `  ${s.label.padEnd(9)} send     ${fInt(send.msgsPerSec)} msgs/s, confirm p50 ${fMs(send.p50)} ms p99 ${fMs(send.p99)} ms` +
        `${send.errors > 0 ? `, ${send.errors} errors (${send.firstError})` : ''}`,
    );
    await quiet(cfg.waitQuietMs, () => cleanup.interrupted);
    const pull = await pullPhase(d, send.confirmed);
    const rssAfterPullKb = procMemKb(s.child.pid).rssKb;
    console.error(
      `  ${s.label.padEnd(9)} pull+ack ${fInt(pull.msgsPerSec)} msgs/s, ${pull.received} received, ` +
        `${pull.duplicates} duplicates, ${pull.left} left stored`,
    );
    await d.prepare(`bench.e2e.r${run}`);
    await quiet(cfg.waitQuietMs, () => cleanup.interrupted);
    const e2e = await e2ePhase(d, cfg.e2eMsgs, cfg.window, cfg.e2eRate);
    console.error(
      `  ${s.label.padEnd(9)} e2e      p50 ${fMs(e2e.p50)} ms p99 ${fMs(e2e.p99)} ms, ${e2e.received}/${e2e.sent} received`,
    );
    return {
      system: s.key,
      run,
      idleRssKb,
      send,
      rssAfterSendKb,
      diskBefore,
      diskAfterSend,
      diskOverheadPerMsg: per(diskAfterSend.allocated, diskBefore.allocated),
      diskApparentOverheadPerMsg: per(diskAfterSend.apparent, diskBefore.apparent),
      pull,
      rssAfterPullKb,
      e2e,
      hwmKb: procMemKb(s.child.pid).hwmKb,
    };
  } finally {
    await d.close();
  }
}

function buildRows(s: SystemResult, j: SystemResult): CompareRow[] {
  const n = fInt;
  return [
    {
      metric: 'send: confirmed msgs/s (window 256)',
      s: s.send.msgsPerSec,
      j: j.send.msgsPerSec,
      fmt: n,
      ratio: true,
    },
    { metric: 'send: confirm latency p50 (ms)', s: s.send.p50, j: j.send.p50, fmt: fMs, ratio: true },
    { metric: 'send: confirm latency p99 (ms)', s: s.send.p99, j: j.send.p99, fmt: fMs, ratio: true },
    { metric: 'send: errors', s: s.send.errors, j: j.send.errors, fmt: n, ratio: false },
    {
      metric: 'send: server CPU us/msg',
      s: s.send.serverCpuMsPerMsg * 1000,
      j: j.send.serverCpuMsPerMsg * 1000,
      fmt: fMs,
      ratio: true,
    },
    {
      metric: "send: other processes' CPU (% of a core)",
      s: s.send.othersPct,
      j: j.send.othersPct,
      fmt: fInt,
      ratio: false,
    },
    {
      metric: 'pull+ack: msgs/s (batch 100)',
      s: s.pull.msgsPerSec,
      j: j.pull.msgsPerSec,
      fmt: n,
      ratio: true,
    },
    {
      metric: 'pull+ack: server CPU us/msg',
      s: s.pull.serverCpuMsPerMsg * 1000,
      j: j.pull.serverCpuMsPerMsg * 1000,
      fmt: fMs,
      ratio: true,
    },
    {
      metric: "pull+ack: other processes' CPU (% of a core)",
      s: s.pull.othersPct,
      j: j.pull.othersPct,
      fmt: fInt,
      ratio: false,
    },
    {
      metric: 'pull+ack: missing / duplicates',
      s: s.send.confirmed - s.pull.received + s.pull.duplicates,
      j: j.send.confirmed - j.pull.received + j.pull.duplicates,
      fmt: n,
      ratio: false,
    },
    { metric: 'pull+ack: still stored after acks', s: s.pull.left, j: j.pull.left, fmt: n, ratio: false },
    { metric: 'e2e: latency p50 (ms)', s: s.e2e.p50, j: j.e2e.p50, fmt: fMs, ratio: true },
    { metric: 'e2e: latency p99 (ms)', s: s.e2e.p99, j: j.e2e.p99, fmt: fMs, ratio: true },
    {
      metric: 'e2e: received / sent',
      s: s.e2e.received / s.e2e.sent,
      j: j.e2e.received / j.e2e.sent,
      fmt: (x) => x.toFixed(3),
      ratio: false,
    },
    { metric: 'RSS idle after warm-up (MiB)', s: s.idleRssKb, j: j.idleRssKb, fmt: fMiB, ratio: true },
    {
      metric: 'RSS after send phase (MiB)',
      s: s.rssAfterSendKb,
      j: j.rssAfterSendKb,
      fmt: fMiB,
      ratio: true,
    },
    {
      metric: 'RSS after pull phase (MiB)',
      s: s.rssAfterPullKb,
      j: j.rssAfterPullKb,
      fmt: fMiB,
      ratio: true,
    },
    { metric: 'peak RSS, VmHWM (MiB)', s: s.hwmKb, j: j.hwmKb, fmt: fMiB, ratio: true },
    {
      metric: 'disk bytes/msg beyond payload (du)',
      s: s.diskOverheadPerMsg,
      j: j.diskOverheadPerMsg,
      fmt: n,
      ratio: true,
    },
    {
      metric: 'disk bytes/msg beyond payload (file sizes)',
      s: s.diskApparentOverheadPerMsg,
      j: j.diskApparentOverheadPerMsg,
      fmt: n,
      ratio: true,
    },
  ];
}

const DURABILITY_NOTE =
  'Durability differs: SwarmMQ confirms a send after fdatasync of the LevelDB batch holding it; ' +
  'nats-server 2.9 confirms once the message is in its block file (page cache) and fsyncs on a timer ' +
  '(filestore defaultSyncInterval = 2 min; sync_interval / sync_always exist only from 2.10). ' +
  'A JetStream ack survives a process crash, not a power loss within that interval.';

/** A system's best run: undisturbed first (others < 25% of a core in send and pull), then the highest send rate. */
function best(runs: SystemResult[]): SystemResult {
  const disturbed = (r: SystemResult): boolean => Math.max(r.send.othersPct, r.pull.othersPct) >= 25;
  return [...runs].sort(
    (a, b) => Number(disturbed(a)) - Number(disturbed(b)) || b.send.msgsPerSec - a.send.msgsPerSec,
  )[0]!;
}

async function fullMode(cfg: Config, env: Record<string, string | number>): Promise<unknown> {
  const all: SystemResult[] = [];
  for (let run = 1; run <= cfg.runs && !cleanup.interrupted; run++) {
    // Fresh servers on empty dirs for every run: each run has the same history
    // (warm-up, then the measured phases), and the disk delta of a run is not
    // mixed with the compaction of an earlier run's removed messages.
    const swarmDir = cleanup.newTempDir('swarmmq-durable-bench-');
    const jsDir = cleanup.newTempDir('jetstream-durable-bench-');
    const swarm = await startSwarm(swarmDir);
    const js = await startJetStream(jsDir);
    console.error(
      `run ${run}: SwarmMQ pid ${swarm.child.pid} port ${swarm.port}; nats-server pid ${js.child.pid} port ${js.port}`,
    );
    await sleep(500);
    // ABBA: run 1 SwarmMQ first, run 2 JetStream first, ...
    for (const server of run % 2 === 1 ? [swarm, js] : [js, swarm]) {
      console.error(`run ${run} ${server.label}`);
      all.push(await runSystem(server, cfg, run));
    }
    for (const server of [swarm, js]) await stopServer(server);
    for (const dir of [swarmDir, jsDir]) {
      rmSync(dir, { recursive: true, force: true });
      cleanup.tempDirs.delete(dir);
    }
  }
  const s = best(all.filter((r) => r.system === 'swarmmq'));
  const j = best(all.filter((r) => r.system === 'jetstream'));
  const out: string[] = [];
  out.push('SwarmMQ durable benchmark');
  out.push(
    `  ${fInt(cfg.msgs)} msgs of ${PAYLOAD_BYTES} B: confirmed sends (window ${cfg.window}), then pull+ack ` +
      `(batch ${PULL_BATCH}); e2e: ${fInt(cfg.e2eMsgs)} msgs at ${fInt(cfg.e2eRate)} msgs/s sent while pulled` +
      `${cfg.quick ? ' (--quick)' : ''}`,
  );
  out.push(
    `  stock client ${env.natsClient} for sends; pulls: SwarmMQ raw PULL/ACK, JetStream consumer.fetch`,
  );
  out.push(
    `  ${cfg.runs} run(s) per system in ABBA order, fresh servers and a warm-up each; the table shows each system's best run ` +
      `(undisturbed first, then highest send msgs/s): SwarmMQ run ${s.run}, JetStream run ${j.run}`,
  );
  out.push(`  cpu: ${env.cpu}, ${env.cores} cores, ${env.memory}; ${env.os}`);
  out.push(`  node ${env.node}; nats-server ${env.natsServer}; commit ${env.commit}; ${env.date}`);
  out.push(`  SwarmMQ node: ${env.swarmmq}`);
  out.push('');
  out.push(renderComparison(COMPARE_HEAD, buildRows(s, j)));
  out.push('');
  out.push(
    'ratio S/J = SwarmMQ / JetStream (msgs/s: higher is better; latency, CPU, RSS, disk: lower is better)',
  );
  out.push(DURABILITY_NOTE);
  console.log(out.join('\n'));
  return { mode: 'full', env, config: cfg, best: { swarmmq: s.run, jetstream: j.run }, runs: all };
}

// ---------------------------------------------------------------- disk mode

interface RecordKinds {
  [prefix: string]: { count: number; keyBytes: number; valueBytes: number };
}

/** Counts a stopped SwarmMQ store's records by prefix byte. */
async function storeRecords(storeDir: string): Promise<RecordKinds> {
  const db = new Level<Buffer, Buffer>(storeDir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  const kinds: RecordKinds = {};
  try {
    for await (const [k, v] of db.iterator()) {
      const p = String.fromCharCode(k[0]!);
      const e = (kinds[p] ??= { count: 0, keyBytes: 0, valueBytes: 0 });
      e.count++;
      e.keyBytes += k.length;
      e.valueBytes += v.length;
    }
  } finally {
    await db.close();
  }
  return kinds;
}

/** Random payloads from a pre-filled pool (128 random bytes each, never repeated within a run). */
function randomPayloads(): (i: number) => Buffer {
  let pool = randomBytes(PAYLOAD_BYTES * 8192);
  let pos = 0;
  return () => {
    if (pos + PAYLOAD_BYTES > pool.length) {
      pool = randomBytes(PAYLOAD_BYTES * 8192);
      pos = 0;
    }
    const b = pool.subarray(pos, pos + PAYLOAD_BYTES);
    pos += PAYLOAD_BYTES;
    return b;
  };
}

interface DiskResult {
  system: Server['key'];
  msgs: number;
  errors: number;
  firstError: string | undefined;
  sendSeconds: number;
  msgsPerSec: number;
  rssKb: number;
  live: DirSize;
  stopped: DirSize;
  exitCode: number | null;
  /** Per message beyond the payload, after the graceful stop. */
  overheadAllocated: number;
  overheadApparent: number;
  records?: RecordKinds;
  reload?: { loadMs: number; startMs: number; rssKb: number };
}

/** SwarmMQ: 1M raw SENDs (assigned ids), window `diskWindow`. */
async function swarmDisk(cfg: Config): Promise<DiskResult> {
  const dir = cleanup.newTempDir('swarmmq-durable-disk-');
  const s = await startSwarm(dir);
  // No CONNECT name: the node stores the name as each message's producer (D3.2).
  const c = await DurableClient.connect(s.port, '127.0.0.1', null);
  const make = randomPayloads();
  const n = cfg.diskMsgs;
  let sent = 0;
  let ok = 0;
  let errors = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  let progressAt = t0;
  let wake: (() => void) | undefined;
  c.onSendReply = (r) => {
    if (r.ok) ok++;
    else {
      errors++;
      firstError ??= r.error;
    }
    progressAt = performance.now();
    wake?.();
  };
  let reported = 0;
  while (ok + errors < n && !c.closed && !cleanup.interrupted) {
    while (sent < n && c.pendingSends < cfg.diskWindow) {
      c.send('bench.disk', make(sent++)).catch(() => undefined);
    }
    await new Promise<void>((resolve) => {
      wake = resolve;
      setTimeout(resolve, 100);
    });
    const now = performance.now();
    if (now - progressAt > STALL_MS || now - t0 > 20 * 60_000) {
      firstError ??= `stalled after ${ok + errors} answers`;
      break;
    }
    if (ok - reported >= 100_000) {
      reported = ok;
      console.error(`  SwarmMQ   ${fInt(ok)} stored, ${fInt((ok * 1000) / (now - t0))} msgs/s`);
    }
  }
  const sendMs = performance.now() - t0;
  const rssKb = procMemKb(s.child.pid).rssKb;
  const live = dirSize(dir);
  c.close();
  const exitCode = await stopServer(s);
  const stopped = dirSize(dir);
  const records = await storeRecords(path.join(dir, 'store'));
  // The next start: time to load the store back into memory, and the RSS it takes.
  const t1 = performance.now();
  const again = await startSwarm(dir);
  const startMs = performance.now() - t1;
  const loaded = again.logs.find((l) => l.includes('"durable store loaded"'));
  const loadMs = loaded === undefined ? NaN : Number((JSON.parse(loaded) as { ms?: number }).ms);
  await sleep(500);
  const reload = { loadMs, startMs, rssKb: procMemKb(again.child.pid).rssKb };
  await stopServer(again);
  return {
    system: 'swarmmq',
    msgs: ok,
    errors,
    firstError,
    sendSeconds: sendMs / 1000,
    msgsPerSec: (ok * 1000) / sendMs,
    rssKb,
    live,
    stopped,
    exitCode,
    overheadAllocated: stopped.allocated / ok - PAYLOAD_BYTES,
    overheadApparent: stopped.apparent / ok - PAYLOAD_BYTES,
    records,
    reload,
  };
}

async function jetStreamDisk(cfg: Config): Promise<DiskResult> {
  const dir = cleanup.newTempDir('jetstream-durable-disk-');
  const s = await startJetStream(dir);
  const d = await JetStreamDriver.open(s);
  await d.prepare('bench.disk');
  const make = randomPayloads();
  const base = dirSize(dir);
  const t0 = performance.now();
  const r = await sendPhase(d, cfg.diskMsgs, cfg.diskWindow, make);
  const sendMs = performance.now() - t0;
  const rssKb = procMemKb(s.child.pid).rssKb;
  const live = dirSize(dir);
  await d.close();
  const exitCode = await stopServer(s);
  const stopped = dirSize(dir);
  console.error(`  JetStream ${fInt(r.confirmed)} stored, ${fInt(r.msgsPerSec)} msgs/s`);
  return {
    system: 'jetstream',
    msgs: r.confirmed,
    errors: r.errors,
    firstError: r.firstError,
    sendSeconds: sendMs / 1000,
    msgsPerSec: r.msgsPerSec,
    rssKb,
    live,
    stopped,
    exitCode,
    overheadAllocated: (stopped.allocated - base.allocated) / r.confirmed - PAYLOAD_BYTES,
    overheadApparent: (stopped.apparent - base.apparent) / r.confirmed - PAYLOAD_BYTES,
  };
}

async function diskMode(cfg: Config, env: Record<string, string | number>): Promise<unknown> {
  console.error(
    `disk mode: ${fInt(cfg.diskMsgs)} msgs of ${PAYLOAD_BYTES} random bytes each, window ${cfg.diskWindow}`,
  );
  const s = await swarmDisk(cfg);
  const j = await jetStreamDisk(cfg);
  const out: string[] = [];
  out.push('SwarmMQ durable benchmark: disk footprint');
  out.push(
    `  ${fInt(cfg.diskMsgs)} msgs of ${PAYLOAD_BYTES} random bytes, pipelined (window ${cfg.diskWindow}); ` +
      'sizes after a graceful stop (SwarmMQ SIGTERM, nats-server SIGINT)',
  );
  out.push(
    '  SwarmMQ: raw SEND, ids assigned by the node, no producer name; JetStream: js.publish to a file stream (limits retention)',
  );
  out.push(`  cpu: ${env.cpu}, ${env.cores} cores, ${env.memory}; ${env.os}`);
  out.push(`  node ${env.node}; nats-server ${env.natsServer}; commit ${env.commit}; ${env.date}`);
  out.push(`  SwarmMQ node: ${env.swarmmq}`);
  out.push('');
  const mib = (b: number): number => b / 2 ** 20;
  const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '-');
  out.push(
    renderComparison(COMPARE_HEAD, [
      { metric: 'messages stored', s: s.msgs, j: j.msgs, fmt: fInt, ratio: false },
      { metric: 'send errors', s: s.errors, j: j.errors, fmt: fInt, ratio: false },
      { metric: 'send msgs/s', s: s.msgsPerSec, j: j.msgsPerSec, fmt: fInt, ratio: true },
      {
        metric: 'data dir while running, du (MiB)',
        s: mib(s.live.allocated),
        j: mib(j.live.allocated),
        fmt: f1,
        ratio: true,
      },
      {
        metric: 'data dir after stop, du (MiB)',
        s: mib(s.stopped.allocated),
        j: mib(j.stopped.allocated),
        fmt: f1,
        ratio: true,
      },
      {
        metric: 'data dir after stop, file sizes (MiB)',
        s: mib(s.stopped.apparent),
        j: mib(j.stopped.apparent),
        fmt: f1,
        ratio: true,
      },
      {
        metric: 'bytes/msg beyond payload (du)',
        s: s.overheadAllocated,
        j: j.overheadAllocated,
        fmt: f1,
        ratio: true,
      },
      {
        metric: 'bytes/msg beyond payload (file sizes)',
        s: s.overheadApparent,
        j: j.overheadApparent,
        fmt: f1,
        ratio: true,
      },
      { metric: 'server RSS with all stored (MiB)', s: s.rssKb, j: j.rssKb, fmt: fMiB, ratio: true },
    ]),
  );
  if (s.records !== undefined) {
    out.push('');
    out.push(
      'SwarmMQ store after the stop, by record kind (logical bytes; LevelDB adds its own framing, and compresses with snappy):',
    );
    for (const [p, e] of Object.entries(s.records).sort()) {
      out.push(
        `  ${p}: ${fInt(e.count)} records, key ${f1(e.keyBytes / e.count)} B + value ${f1(e.valueBytes / e.count)} B on average` +
          (p === 'M' ? ` (value beyond payload: ${f1(e.valueBytes / e.count - PAYLOAD_BYTES)} B)` : ''),
      );
    }
    const total = Object.values(s.records).reduce((a, e) => a + e.keyBytes + e.valueBytes, 0);
    out.push(`  all records: ${f1(total / s.msgs - PAYLOAD_BYTES)} B per message beyond the payload`);
  }
  if (s.reload !== undefined) {
    out.push(
      `SwarmMQ restart with ${fInt(s.msgs)} stored: store loaded in ${fInt(s.reload.loadMs)} ms ` +
        `(process start to "node started": ${fInt(s.reload.startMs)} ms), RSS after load ${fMiB(s.reload.rssKb)} MiB`,
    );
  }
  out.push(`exit codes of the graceful stops: SwarmMQ ${s.exitCode}, nats-server ${j.exitCode}`);
  if (s.firstError !== undefined) out.push(`WARNING SwarmMQ: ${s.firstError}`);
  if (j.firstError !== undefined) out.push(`WARNING JetStream: ${j.firstError}`);
  out.push(DURABILITY_NOTE);
  console.log(out.join('\n'));
  return { mode: 'disk', env, config: cfg, swarmmq: s, jetstream: j };
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const cfg = parseArgs(process.argv.slice(2));
  const env = environment();
  try {
    const result = cfg.disk ? await diskMode(cfg, env) : await fullMode(cfg, env);
    if (cfg.json !== undefined) {
      writeFileSync(cfg.json, JSON.stringify(result, null, 2) + '\n');
      console.error(`wrote ${cfg.json}`);
    }
  } finally {
    await cleanup.run();
  }
}

cleanup.exitWith('durable', main);
