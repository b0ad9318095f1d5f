/**
 * Cluster benchmark: durable throughput and latency of SwarmMQ clusters
 * beside a nats-server JetStream cluster, started and measured in one run.
 *
 *   node dist/bench/cluster.js [--quick] [--json out.json] [--configs 1x1,3x1,3x3,5x3]
 *
 * A config NxRF is N SwarmMQ nodes with replication factor RF, each a child
 * process on its own data dir, finding the others through a registry dir
 * shared by this run only (protocol/MESH.md M1.3):
 *   node dist/src/cli/main.js start --port 0 --data-dir <tmp>/n<i> --cluster bench-<rand>
 *        --registry-dir <tmp>/registry --replication-factor RF --log-level info
 * It counts as formed when every node logged a view of N members and every
 * node answers OWNER (M3.3) for every bench destination with the same owner
 * and min(RF, N) - 1 replicas. Beside it: a JetStream cluster of
 * min(N, max(3, RF)) nats-server processes (one config file each, routes to
 * the others) with one file-backed work-queue stream of RF replicas per
 * destination.
 *
 * Workload per system (128-byte payloads; one producer and one consumer
 * connection per node; D destinations bench.d0..bench.d<D-1>, so owners and
 * stream leaders spread over the nodes):
 *   warm-up  one probe send per producer and destination (retried until the
 *            destination is known on that node), a small confirmed-send
 *            phase, everything pulled and acked; not recorded.
 *   send     n confirmed sends, message i to destination i % D, at most 256
 *            outstanding in all (split across the producers). SwarmMQ: the
 *            stock client's nc.request(destination) (D3.7), as durable.ts
 *            does; JetStream: js.publish(). Send call to confirmation latency.
 *   pull+ack every confirmed message, the consumer on node c pulling the
 *            destinations k with k % N == c, batches of at most 100, each
 *            message acked. SwarmMQ: raw PULL <dest> g1 <batch> 1000ms + ACK;
 *            JetStream: consumer.fetch() + m.ack().
 *   memory   VmRSS of every node after the pull phase (sum and max).
 * CPU of every node, of this process and of the rest of the machine comes
 * from /proc over each phase.
 *
 * Every phase is capped by count and by time (60 s, or 10 s without
 * progress); children and temp dirs are removed on exit, error or Ctrl-C.
 */
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  AckPolicy,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type Consumer,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { DurableClient } from '../test/helpers/durable-client.js';
import {
  checkOwnerAgreement,
  Cleanup,
  ClusterCpuMeter,
  type ClusterCpuUse,
  freePort,
  ownerAnswers,
  percentiles,
  procMemKb,
  quiet,
  retry as retryUntil,
  type ServerNode,
  sleep,
  spawnNatsServer,
  startSwarmCluster,
  stopChildren,
  type SwarmCluster,
  WarningLog,
  withTimeout,
  readFlags,
  runCalls,
  PAYLOAD_BYTES,
  PHASE_DEADLINE_MS,
  STALL_MS,
  PROBE_DEADLINE_MS,
  FORM_DEADLINE_MS,
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

// ---------------------------------------------------------------- constants

/** Messages per PULL / fetch at most. */
const PULL_BATCH = 100;
/** How long a PULL / fetch waits for its first message. */
const PULL_WAIT_MS = 1000;
const REQUEST_TIMEOUT_MS = 10_000;
/** How long the acks sent may take to be applied before "still stored" is read. */
const SETTLE_MS = 10_000;
/** The idle CPU measurement before the send phase. */
const IDLE_MS = 1000;
/** The architecture's target for one cluster. */
const TARGET_MSGS_PER_SEC = 100_000;
const TARGET_P99_MS = 50;
/** JetStream's consumer / SwarmMQ's group. */
const GROUP = 'g1';
/** Payload index of the readiness probes (never a measured message). */
const PROBE_INDEX = 0xffffffff;

// ---------------------------------------------------------------- options

interface ClusterConfig {
  /** SwarmMQ nodes. */
  nodes: number;
  rf: number;
  /** nats-server processes of the JetStream cluster beside it. */
  jsNodes: number;
  name: string;
}

interface Options {
  quick: boolean;
  msgs: number;
  warmupMsgs: number;
  window: number;
  dests: number;
  configs: ClusterConfig[];
  waitQuietMs: number;
  json: string | undefined;
}

function parseConfig(s: string): ClusterConfig {
  const m = /^(\d)x(\d)$/.exec(s.trim());
  if (m === null) usage(`--configs: ${s} is not NxRF (e.g. 3x3)`);
  const nodes = Number(m[1]);
  const rf = Number(m[2]);
  if (nodes < 1 || rf < 1 || rf > nodes || rf > 5) usage(`--configs: ${s}: need 1 <= RF <= N <= 9, RF <= 5`);
  // JetStream: 3 servers (as many as SwarmMQ below 3), more only when RF needs them.
  return { nodes, rf, jsNodes: Math.min(nodes, Math.max(3, rf)), name: `${nodes}x${rf}` };
}

function parseArgs(argv: string[]): Options {
  const f = readFlags(
    argv,
    {
      quick: { type: 'boolean' },
      json: { type: 'string' },
      configs: { type: 'string' },
      msgs: { type: 'number', min: 100, max: 1_000_000 },
      dests: { type: 'number', min: 1, max: 100 },
      window: { type: 'number', min: 1, max: 10_000 },
      'wait-quiet': { type: 'number', min: 0, max: 600 },
    },
    usage,
  );
  const quick = f.quick === true;
  const msgs = f.msgs;
  const dests = f.dests ?? 15;
  const window = f.window ?? 256;
  const configs = f.configs ?? '1x1,3x1,3x3,5x3';
  const waitQuietMs = (f['wait-quiet'] ?? 0) * 1000;
  const json = f.json;
  return {
    quick,
    msgs: msgs ?? (quick ? 3_000 : 20_000),
    warmupMsgs: quick ? 300 : 2_000,
    window,
    dests,
    configs: configs.split(',').map(parseConfig),
    waitQuietMs,
    json,
  };
}

function usage(err?: string): never {
  if (err !== undefined) console.error(`cluster: ${err}`);
  console.error(
    'usage: node dist/bench/cluster.js [--quick] [--configs 1x1,3x1,3x3,5x3] [--msgs N] [--dests D]\n' +
      '                                  [--window N] [--wait-quiet S] [--json out.json]',
  );
  process.exit(err === undefined ? 0 : 2);
}

// ---------------------------------------------------------------- formatting

const fInt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);
const errText = (err: unknown): string => (err as Error).message ?? String(err);

// ---------------------------------------------------------------- payloads

/** A fresh payload: performance.now() (float64 LE) in bytes 0-7, the index in 8-11. */

const readIndex = (p: Uint8Array): number => Buffer.from(p.buffer, p.byteOffset + 8, 4).readUInt32LE(0);
const destName = (k: number): string => `bench.d${k}`;
const streamName = (k: number): string => `BENCH_D${k}`;

// ---------------------------------------------------------------- the systems

/** Children and temp dirs, removed on exit, error or Ctrl-C. */
const cleanup = new Cleanup();

/** The node to measure: this checkout's build, or SWARMMQ_CLI (e.g. a `git archive` export built elsewhere). */

/** One cluster under test with one producer and one consumer connection per node. */
interface System {
  readonly key: 'swarmmq' | 'jetstream';
  readonly label: string;
  readonly nodes: ServerNode[];
  readonly rf: number;
  /** From the first spawn until the destinations could be used, in ms. */
  readonly readyMs: number;
  /** How the cluster came up, in words (for the report). */
  readonly formation: string;
  /** How many destinations each node owns (SwarmMQ) or leads (JetStream). */
  placement(): Promise<number[]>;
  /** Producer p: one confirmed send to destination k; rejects when refused. */
  send(p: number, k: number, payload: Buffer): Promise<void>;
  /** Consumer c: up to `max` messages of destination k, each acked. */
  pullAndAck(c: number, k: number, max: number): Promise<Uint8Array[]>;
  /** Messages still stored in the bench destinations, once the acks sent so far were applied (bounded wait). */
  stored(): Promise<number>;
  /** Warning and error lines the servers logged. */
  warnings(): { count: number; first: string[] };
  /** Closes the clients, stops the servers, removes the temp dir. */
  stop(): Promise<void>;
}

/** Retries `fn` until it resolves or the deadline passes (then throws its last error); Ctrl-C ends it. */
function retry<T>(what: string, deadlineMs: number, fn: () => Promise<T>): Promise<{ v: T; tries: number }> {
  return retryUntil(what, deadlineMs, fn, () => cleanup.interrupted);
}

class SwarmSystem implements System {
  readonly key = 'swarmmq';
  private constructor(
    readonly label: string,
    readonly nodes: ServerNode[],
    readonly rf: number,
    readonly readyMs: number,
    readonly formation: string,
    private readonly cluster: SwarmCluster,
    private readonly producers: NatsConnection[],
    private readonly consumers: DurableClient[],
    private readonly dests: number,
  ) {}

  /** Views logged after the cluster was ready, per node (0: stable). */
  viewChanges(): number {
    return this.cluster.viewChangesAfterReady();
  }

  static async start(cfg: ClusterConfig, dests: number): Promise<SwarmSystem> {
    const label = `SwarmMQ ${cfg.nodes}x${cfg.rf}`;
    const cluster = await startSwarmCluster(cleanup, {
      main: SWARM_MAIN,
      nodes: cfg.nodes,
      rf: cfg.rf,
      label,
      tempPrefix: 'swarmmq-cluster-bench-',
    });
    const { nodes, t0, startedMs, viewMs } = cluster;
    const consumers = await Promise.all(
      nodes.map((n, i) => DurableClient.connect(n.port, '127.0.0.1', `bench-cluster-pull-${i}`)),
    );
    const producers = await Promise.all(nodes.map((n, i) => natsConnect(n.port, `bench-cluster-pub-${i}`)));
    // Every node names the same owner and min(RF, N) - 1 replicas for every destination (M3.2, M3.3).
    const want = Math.min(cfg.rf, cfg.nodes) - 1;
    const names = Array.from({ length: dests }, (_, k) => destName(k));
    const { tries } = await retry(`${label}: OWNER agreement`, FORM_DEADLINE_MS, async () => {
      checkOwnerAgreement(await Promise.all(consumers.map((c) => ownerAnswers(c, names))), names, want);
    });
    const readyMs = performance.now() - t0;
    cluster.markReady();
    const formation =
      `${cfg.nodes} nodes started after ${fInt(startedMs)} ms, views complete after ${fInt(viewMs)} ms, ` +
      `owners agreed after ${fInt(readyMs)} ms (${tries} OWNER round(s))`;
    console.error(`  ${label}: ${formation}`);
    const sys = new SwarmSystem(
      label,
      nodes,
      cfg.rf,
      readyMs,
      formation,
      cluster,
      producers,
      consumers,
      dests,
    );
    // Destinations and their group exist before the first message (as the JetStream consumers do).
    for (let k = 0; k < dests; k++) {
      await sys.consumers[0]!.create(destName(k));
      await sys.consumers[0]!.pull(destName(k), GROUP, 1);
    }
    return sys;
  }

  async placement(): Promise<number[]> {
    const out = new Array<number>(this.nodes.length).fill(0);
    const names = Array.from({ length: this.dests }, (_, k) => destName(k));
    for (const o of await ownerAnswers(this.consumers[0]!, names)) {
      const i = o.owner === 'local' ? 0 : this.nodes.findIndex((n) => o.client.endsWith(`:${n.port}`));
      if (i >= 0) out[i]!++;
    }
    return out;
  }

  async send(p: number, k: number, payload: Buffer): Promise<void> {
    const reply = await this.producers[p]!.request(destName(k), payload, { timeout: REQUEST_TIMEOUT_MS });
    const ack = reply.json<{ seq?: number; error?: { description: string } }>();
    if (ack.error !== undefined || typeof ack.seq !== 'number')
      throw new Error(`refused: ${JSON.stringify(ack)}`);
  }

  async pullAndAck(c: number, k: number, max: number): Promise<Uint8Array[]> {
    const raw = this.consumers[c]!;
    const msgs = await raw.pull(destName(k), GROUP, max, `${PULL_WAIT_MS}ms`);
    raw.ack(...msgs.map((m) => m.handle));
    return msgs.map((m) => m.payload);
  }

  async stored(): Promise<number> {
    await Promise.all(this.consumers.map((c) => c.ping(30_000)));
    const deadline = performance.now() + SETTLE_MS;
    for (;;) {
      // DESTS asks every member for the destinations it owns (M4.5).
      const lines = await this.consumers[0]!.dests(30_000);
      const depth = sum(
        lines
          .filter((l) => l.startsWith('DEST bench.d'))
          .map((l) => Number(/depth=(\d+)/.exec(l)?.[1] ?? NaN)),
      );
      if (depth === 0 || !(performance.now() < deadline)) return depth;
      await sleep(100);
    }
  }

  warnings(): { count: number; first: string[] } {
    const errs = this.consumers.flatMap((c, i) => c.errors.map((e) => `client ${i}: -ERR ${e}`));
    const log = this.cluster.log;
    return { count: log.count + errs.length, first: [...log.first, ...errs.slice(0, 10)] };
  }

  async stop(): Promise<void> {
    for (const c of this.consumers) c.close();
    await Promise.all(
      this.producers.map((nc) => withTimeout(nc.close(), 5_000, 'close').catch(() => undefined)),
    );
    await this.cluster.stop();
  }
}

class JetStreamSystem implements System {
  readonly key = 'jetstream';
  private readonly consumerObjs = new Map<string, Consumer>();
  private constructor(
    readonly label: string,
    readonly nodes: ServerNode[],
    readonly rf: number,
    readonly readyMs: number,
    readonly formation: string,
    private readonly dir: string,
    private readonly conns: NatsConnection[],
    private readonly js: JetStreamClient[],
    private readonly jsm: JetStreamManager,
    private readonly dests: number,
    /** Output marks at ready: warnings before (route dials of servers started together) are expected. */
    private readonly marks: number[],
  ) {}

  static async start(cfg: ClusterConfig, dests: number): Promise<JetStreamSystem> {
    const n = cfg.jsNodes;
    const label = `JetStream ${n}x${cfg.rf}`;
    const dir = cleanup.newTempDir('jetstream-cluster-bench-');
    const clusterPorts = await Promise.all(Array.from({ length: n }, () => freePort()));
    const t0 = performance.now();
    const nodes = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        spawnNatsServer(
          cleanup,
          (port) => {
            const file = path.join(dir, `js${i}.conf`);
            writeFileSync(file, natsConfig(i, port, path.join(dir, `js${i}`), clusterPorts));
            return ['-c', file];
          },
          15_000,
        ),
      ),
    );
    const upMs = performance.now() - t0;
    const conns = await Promise.all(nodes.map((s, i) => natsConnect(s.port, `bench-cluster-${i}`)));
    // The meta group needs a leader before the JetStream API answers.
    const { v: jsm, tries: apiTries } = await retry(`${label}: JetStream API`, FORM_DEADLINE_MS, () =>
      jetstreamManager(conns[0]!, { timeout: 5_000 }),
    );
    const apiMs = performance.now() - t0;
    let streamTries = 0;
    for (let k = 0; k < dests; k++) {
      const { tries } = await retry(`${label}: stream ${streamName(k)}`, FORM_DEADLINE_MS, async () => {
        try {
          await jsm.streams.add({
            name: streamName(k),
            subjects: [destName(k)],
            storage: StorageType.File,
            num_replicas: cfg.rf,
            // Acked messages are removed, as in a SwarmMQ destination with one group.
            retention: RetentionPolicy.Workqueue,
          });
        } catch (err) {
          // An earlier try that timed out may have created it after all.
          await jsm.streams.info(streamName(k)).catch(() => Promise.reject(err));
        }
        await jsm.consumers
          .add(streamName(k), { durable_name: GROUP, ack_policy: AckPolicy.Explicit })
          .catch(async (err: unknown) => {
            await jsm.consumers.info(streamName(k), GROUP).catch(() => Promise.reject(err));
          });
      });
      streamTries += tries - 1;
    }
    const readyMs = performance.now() - t0;
    const formation =
      `${n} servers accepting connections after ${fInt(upMs)} ms, JetStream API after ${fInt(apiMs)} ms ` +
      `(${apiTries} tries), ${dests} streams (R${cfg.rf}) with consumers after ${fInt(readyMs)} ms (${streamTries} retries)`;
    console.error(`  ${label}: ${formation}`);
    return new JetStreamSystem(
      label,
      nodes,
      cfg.rf,
      readyMs,
      formation,
      dir,
      conns,
      conns.map((nc) => jetstream(nc, { timeout: REQUEST_TIMEOUT_MS })),
      jsm,
      dests,
      nodes.map((s) => s.child.mark()),
    );
  }

  async placement(): Promise<number[]> {
    const out = new Array<number>(this.nodes.length).fill(0);
    for (let k = 0; k < this.dests; k++) {
      const info = await this.jsm.streams.info(streamName(k));
      // A lone server reports no cluster.
      const leader = info.cluster?.leader ?? (this.nodes.length === 1 ? 'js0' : '');
      const i = Number(/^js(\d+)$/.exec(leader)?.[1] ?? -1);
      if (i >= 0 && i < out.length) out[i]!++;
      else
        console.error(
          `  ${this.label}: ${streamName(k)} has no known leader (${JSON.stringify(info.cluster)})`,
        );
    }
    return out;
  }

  async send(p: number, k: number, payload: Buffer): Promise<void> {
    await this.js[p]!.publish(destName(k), payload, { timeout: REQUEST_TIMEOUT_MS });
  }

  async pullAndAck(c: number, k: number, max: number): Promise<Uint8Array[]> {
    const key = `${c}/${k}`;
    let consumer = this.consumerObjs.get(key);
    if (consumer === undefined) {
      consumer = await this.js[c]!.consumers.get(streamName(k), GROUP);
      this.consumerObjs.set(key, consumer);
    }
    const out: Uint8Array[] = [];
    const iter = await consumer.fetch({ max_messages: max, expires: PULL_WAIT_MS });
    for await (const m of iter) {
      out.push(m.data);
      m.ack();
    }
    return out;
  }

  async stored(): Promise<number> {
    await Promise.all(this.conns.map((nc) => nc.flush()));
    const deadline = performance.now() + SETTLE_MS;
    for (;;) {
      // Acks are applied asynchronously (and through the stream's raft group).
      let left = 0;
      for (let k = 0; k < this.dests; k++)
        left += (await this.jsm.streams.info(streamName(k))).state.messages;
      if (left === 0 || !(performance.now() < deadline)) return left;
      await sleep(100);
    }
  }

  warnings(): { count: number; first: string[] } {
    const log = new WarningLog();
    this.nodes.forEach((n, i) => {
      for (const l of n.child.linesSince(this.marks[i]!))
        if (/\[(WRN|ERR|FTL)\]/.test(l)) log.add(`js${i}: ${l}`);
    });
    return { count: log.count, first: log.first };
  }

  async stop(): Promise<void> {
    await Promise.all(this.conns.map((nc) => withTimeout(nc.close(), 5_000, 'close').catch(() => undefined)));
    // SIGINT: nats-server's clean shutdown.
    await stopChildren(cleanup, this.nodes, 'SIGINT');
    rmSync(this.dir, { recursive: true, force: true });
    cleanup.tempDirs.delete(this.dir);
  }
}

/** One nats-server's config: JetStream on a file store, and (with more than one) the routes to all the others. */
function natsConfig(i: number, port: number, storeDir: string, clusterPorts: readonly number[]): string {
  const lines = [
    `server_name: js${i}`,
    `listen: 127.0.0.1:${port}`,
    `jetstream {`,
    `  store_dir: ${JSON.stringify(storeDir)}`,
    `}`,
  ];
  if (clusterPorts.length > 1) {
    const routes = clusterPorts.filter((_, j) => j !== i).map((p) => `nats-route://127.0.0.1:${p}`);
    lines.push(
      `cluster {`,
      `  name: bench`,
      `  listen: 127.0.0.1:${clusterPorts[i]}`,
      `  routes: [${routes.join(', ')}]`,
      `}`,
    );
  }
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------- phases

interface SendResult {
  n: number;
  sent: number;
  confirmed: number;
  errors: number;
  firstError: string | undefined;
  /** Confirmed per destination, for the pull phase. */
  perDest: number[];
  /** Which indices were confirmed. */
  confirmedIdx: Uint8Array;
  msgsPerSec: number;
  p50: number;
  p99: number;
  max: number;
  cpu: ClusterCpuUse;
}

/** n confirmed sends, message i to destination i % D, at most `window` outstanding in all, split over the producers. */
async function sendPhase(sys: System, n: number, window: number, dests: number): Promise<SendResult> {
  const producers = sys.nodes.length;
  const win = Array.from(
    { length: producers },
    (_, p) => Math.floor(window / producers) + (p < window % producers ? 1 : 0),
  ).map((w) => Math.max(1, w));
  const inflight = new Array<number>(producers).fill(0);
  const lat = new Float64Array(n).fill(NaN);
  const confirmedIdx = new Uint8Array(n);
  const perDest = new Array<number>(dests).fill(0);
  let confirmed = 0;
  let errors = 0;
  let firstError: string | undefined;
  const meter = new ClusterCpuMeter(sys.nodes.map((s) => s.child.pid));
  const t0 = performance.now();
  let lastConfirmAt = t0;
  // Round robin over the producers, each up to its share of the window.
  let turn = 0;
  const withRoom = (): number | undefined => {
    for (let k = 0; k < producers; k++) {
      const p = (turn + k) % producers;
      if (inflight[p]! < win[p]!) return p;
    }
    return undefined;
  };
  const run = await runCalls({
    n,
    canStart: () => withRoom() !== undefined,
    call: (i) => {
      const p = withRoom()!;
      turn = (p + 1) % producers;
      inflight[p]!++;
      const k = i % dests;
      const t = performance.now();
      return sys
        .send(p, k, stampedPayload(i, PAYLOAD_BYTES))
        .then(
          () => {
            lastConfirmAt = performance.now();
            lat[i] = lastConfirmAt - t;
            confirmedIdx[i] = 1;
            perDest[k]!++;
            confirmed++;
          },
          (err: unknown) => {
            errors++;
            firstError ??= errText(err);
          },
        )
        .finally(() => {
          inflight[p]!--;
        });
    },
    interrupted: () => cleanup.interrupted,
  });
  firstError ??= run.stopped;
  const cpu = meter.stop();
  const [p50, p99, max] = percentiles(lat, n, [0.5, 0.99, 1]) as [number, number, number];
  return {
    n,
    sent: run.started,
    confirmed,
    errors,
    firstError,
    perDest,
    confirmedIdx,
    msgsPerSec: (confirmed * 1000) / Math.max(1, lastConfirmAt - t0),
    p50,
    p99,
    max,
    cpu,
  };
}

interface PullResult {
  expected: number;
  received: number;
  duplicates: number;
  /** Messages that were not expected (a send answered with an error but stored; a warm-up leftover). */
  unexpected: number;
  pulls: number;
  emptyPulls: number;
  msgsPerSec: number;
  left: number;
  firstError: string | undefined;
  cpu: ClusterCpuUse;
}

/**
 * Pulls and acks `expected[k]` messages of each destination k, consumer c
 * taking the destinations with k % consumers == c (so no two consumers
 * compete for one, and no fetch waits on another consumer's unacked ones).
 * With `confirmedIdx`, counts only confirmed indices, each once.
 */
async function pullPhase(
  sys: System,
  expected: readonly number[],
  confirmedIdx?: Uint8Array,
): Promise<PullResult> {
  const consumers = sys.nodes.length;
  const got = expected.map(() => 0);
  const seen = confirmedIdx === undefined ? undefined : new Uint8Array(confirmedIdx.length);
  let received = 0;
  let duplicates = 0;
  let unexpected = 0;
  let pulls = 0;
  let emptyPulls = 0;
  let firstError: string | undefined;
  const meter = new ClusterCpuMeter(sys.nodes.map((s) => s.child.pid));
  const t0 = performance.now();
  let progressAt = t0;
  let lastAt = t0;
  const consume = async (c: number): Promise<void> => {
    const mine = expected.map((_, k) => k).filter((k) => k % consumers === c);
    for (let turn = 0; ; turn++) {
      const open = mine.filter((k) => got[k]! < expected[k]!);
      const now = performance.now();
      if (open.length === 0 || cleanup.interrupted) return;
      if (now - t0 > PHASE_DEADLINE_MS || now - progressAt > STALL_MS) {
        firstError ??= `consumer ${c} stopped with ${open.map((k) => `${destName(k)} ${got[k]}/${expected[k]}`).join(', ')}`;
        return;
      }
      const k = open[turn % open.length]!;
      const max = Math.min(PULL_BATCH, expected[k]! - got[k]!);
      let msgs: Uint8Array[];
      try {
        pulls++;
        msgs = await withTimeout(sys.pullAndAck(c, k, max), 30_000, 'pull');
      } catch (err) {
        firstError ??= `consumer ${c} ${destName(k)}: ${errText(err)}`;
        await sleep(100);
        continue;
      }
      if (msgs.length === 0) emptyPulls++;
      for (const p of msgs) {
        const i = readIndex(p);
        if (seen === undefined) got[k]!++;
        else if (i >= seen.length || confirmedIdx![i] !== 1) unexpected++;
        else if (seen[i] === 1) duplicates++;
        else {
          seen[i] = 1;
          got[k]!++;
        }
      }
      if (msgs.length > 0) progressAt = lastAt = performance.now();
    }
  };
  await Promise.all(Array.from({ length: consumers }, (_, c) => consume(c)));
  const cpu = meter.stop();
  received = sum(got);
  const left = await sys.stored();
  return {
    expected: sum(expected),
    received,
    duplicates,
    unexpected,
    pulls,
    emptyPulls,
    msgsPerSec: (received * 1000) / Math.max(1, lastAt - t0),
    left,
    firstError,
    cpu,
  };
}

/** Probes: one send per producer and destination, retried until each node knows the destination (M3.4). */
async function probe(
  sys: System,
  dests: number,
): Promise<{ perDest: number[]; ms: number; failures: number }> {
  const t0 = performance.now();
  let failures = 0;
  await Promise.all(
    sys.nodes.map(async (_, p) => {
      for (let k = 0; k < dests; k++) {
        const { tries } = await retry(
          `${sys.label}: probe send to ${destName(k)} via node ${p}`,
          PROBE_DEADLINE_MS,
          () => sys.send(p, k, stampedPayload(PROBE_INDEX, PAYLOAD_BYTES)),
        );
        failures += tries - 1;
      }
    }),
  );
  return { perDest: new Array<number>(dests).fill(sys.nodes.length), ms: performance.now() - t0, failures };
}

// ---------------------------------------------------------------- one system

interface SystemResult {
  system: System['key'];
  label: string;
  nodes: number;
  rf: number;
  readyMs: number;
  formation: string;
  placement: number[];
  /** CPU over IDLE_MS after the warm-up, with the clients connected and doing nothing. */
  idle: ClusterCpuUse;
  probe: { ms: number; failures: number };
  warmup: { confirmed: number; errors: number; left: number; firstError: string | undefined };
  send: Omit<SendResult, 'confirmedIdx' | 'perDest'>;
  pull: PullResult;
  rssAfterSendKb: number[];
  rssAfterPullKb: number[];
  hwmKb: number[];
  warnings: { count: number; first: string[] };
  /** SwarmMQ: views logged after the cluster was ready (0 when stable). */
  viewChangesAfterReady: number | undefined;
}

async function runSystem(sys: System, opts: Options): Promise<SystemResult> {
  const pids = sys.nodes.map((s) => s.child.pid);
  // Warm-up (not recorded): the probes make sure every node can store to every destination.
  const pr = await probe(sys, opts.dests);
  const warm = await sendPhase(sys, opts.warmupMsgs, opts.window, opts.dests);
  const warmPull = await pullPhase(
    sys,
    warm.perDest.map((x, k) => x + pr.perDest[k]!),
  );
  if (warmPull.left !== 0 || warmPull.firstError !== undefined) {
    console.error(
      `  ${sys.label} warm-up: ${warmPull.left} left stored${warmPull.firstError !== undefined ? `, ${warmPull.firstError}` : ''}`,
    );
  }
  const placement = await sys.placement();
  // Background cost of a cluster with no clients working (heartbeats, raft, timers).
  await sleep(200);
  const idleMeter = new ClusterCpuMeter(pids);
  await sleep(IDLE_MS);
  const idle = idleMeter.stop();

  await quiet(opts.waitQuietMs, () => cleanup.interrupted);
  const send = await sendPhase(sys, opts.msgs, opts.window, opts.dests);
  const rssAfterSendKb = pids.map((pid) => procMemKb(pid).rssKb);
  console.error(
    `  ${sys.label.padEnd(15)} send     ${fInt(send.msgsPerSec)} msgs/s, confirm p50 ${fMs(send.p50)} ms ` +
      `p99 ${fMs(send.p99)} ms, ${send.confirmed}/${send.n} confirmed` +
      `${send.errors > 0 ? `, ${send.errors} errors (${send.firstError})` : ''}`,
  );
  await quiet(opts.waitQuietMs, () => cleanup.interrupted);
  const pull = await pullPhase(sys, send.perDest, send.confirmedIdx);
  const mem = pids.map(procMemKb);
  console.error(
    `  ${sys.label.padEnd(15)} pull+ack ${fInt(pull.msgsPerSec)} msgs/s, ${pull.received}/${pull.expected} received, ` +
      `${pull.duplicates} duplicates, ${pull.left} left stored` +
      `${pull.firstError !== undefined ? `, ${pull.firstError}` : ''}`,
  );
  const { confirmedIdx: _i, perDest: _d, ...sendOut } = send;
  return {
    system: sys.key,
    label: sys.label,
    nodes: sys.nodes.length,
    rf: sys.rf,
    readyMs: sys.readyMs,
    formation: sys.formation,
    placement,
    idle,
    probe: { ms: pr.ms, failures: pr.failures },
    warmup: {
      confirmed: warm.confirmed,
      errors: warm.errors,
      left: warmPull.left,
      firstError: warm.firstError,
    },
    send: sendOut,
    pull,
    rssAfterSendKb,
    rssAfterPullKb: mem.map((m) => m.rssKb),
    hwmKb: mem.map((m) => m.hwmKb),
    warnings: sys.warnings(),
    viewChangesAfterReady: sys instanceof SwarmSystem ? sys.viewChanges() : undefined,
  };
}

async function runOne(key: System['key'], cfg: ClusterConfig, opts: Options): Promise<SystemResult> {
  console.error(`${cfg.name}: starting ${key === 'swarmmq' ? 'SwarmMQ' : 'JetStream'}`);
  let sys: System | undefined;
  try {
    sys =
      key === 'swarmmq'
        ? await SwarmSystem.start(cfg, opts.dests)
        : await JetStreamSystem.start(cfg, opts.dests);
    return await runSystem(sys, opts);
  } finally {
    await sys?.stop();
  }
}

// ---------------------------------------------------------------- report

const perNode = (xs: readonly number[], f: (n: number) => string): string => xs.map(f).join(' / ');
const usPerMsg = (cpu: ClusterCpuUse, msgs: number): number =>
  (sum(cpu.serverCpuMs) * 1000) / Math.max(1, msgs);
const maxOf = (xs: readonly number[]): number => Math.max(...xs);

function buildRows(s: SystemResult, j: SystemResult, cores: number): CompareRow[] {
  const n = fInt;
  const pct = (x: number): string => fInt(x);
  return [
    { metric: 'nodes x replicas', s: `${s.nodes}x${s.rf}`, j: `${j.nodes}x${j.rf}`, fmt: n, ratio: false },
    { metric: 'ready after start (ms)', s: s.readyMs, j: j.readyMs, fmt: n, ratio: true },
    {
      metric: 'destinations owned/led per node',
      s: s.placement.join(' / '),
      j: j.placement.join(' / '),
      fmt: n,
      ratio: false,
    },
    {
      metric: 'idle: CPU per node (%, 1 s)',
      s: perNode(s.idle.serverCpuPct, pct),
      j: perNode(j.idle.serverCpuPct, pct),
      fmt: n,
      ratio: false,
    },
    { metric: 'send: confirmed msgs/s', s: s.send.msgsPerSec, j: j.send.msgsPerSec, fmt: n, ratio: true },
    { metric: 'send: confirm latency p50 (ms)', s: s.send.p50, j: j.send.p50, fmt: fMs, ratio: true },
    { metric: 'send: confirm latency p99 (ms)', s: s.send.p99, j: j.send.p99, fmt: fMs, ratio: true },
    { metric: 'send: confirm latency max (ms)', s: s.send.max, j: j.send.max, fmt: fMs, ratio: true },
    { metric: 'send: errors', s: s.send.errors, j: j.send.errors, fmt: n, ratio: false },
    {
      metric: 'send: cluster CPU us/msg (all nodes)',
      s: usPerMsg(s.send.cpu, s.send.confirmed),
      j: usPerMsg(j.send.cpu, j.send.confirmed),
      fmt: fMs,
      ratio: true,
    },
    {
      metric: 'send: CPU per node (% of a core)',
      s: perNode(s.send.cpu.serverCpuPct, pct),
      j: perNode(j.send.cpu.serverCpuPct, pct),
      fmt: n,
      ratio: false,
    },
    {
      metric: 'send: bench client CPU (% of a core)',
      s: s.send.cpu.clientCpuPct,
      j: j.send.cpu.clientCpuPct,
      fmt: n,
      ratio: false,
    },
    {
      metric: `send: machine busy (% of ${cores * 100})`,
      s: s.send.cpu.machineCpuPct,
      j: j.send.cpu.machineCpuPct,
      fmt: n,
      ratio: false,
    },
    {
      metric: "send: other processes' CPU (%)",
      s: s.send.cpu.backgroundCpuPct,
      j: j.send.cpu.backgroundCpuPct,
      fmt: n,
      ratio: false,
    },
    { metric: 'pull+ack: msgs/s', s: s.pull.msgsPerSec, j: j.pull.msgsPerSec, fmt: n, ratio: true },
    {
      metric: 'pull+ack: cluster CPU us/msg',
      s: usPerMsg(s.pull.cpu, s.pull.received),
      j: usPerMsg(j.pull.cpu, j.pull.received),
      fmt: fMs,
      ratio: true,
    },
    {
      metric: 'pull+ack: CPU per node (%)',
      s: perNode(s.pull.cpu.serverCpuPct, pct),
      j: perNode(j.pull.cpu.serverCpuPct, pct),
      fmt: n,
      ratio: false,
    },
    {
      metric: "pull+ack: other processes' CPU (%)",
      s: s.pull.cpu.backgroundCpuPct,
      j: j.pull.cpu.backgroundCpuPct,
      fmt: n,
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
    {
      metric: 'RSS after run, sum (MiB)',
      s: sum(s.rssAfterPullKb),
      j: sum(j.rssAfterPullKb),
      fmt: fMiB,
      ratio: true,
    },
    {
      metric: 'RSS after run, max node (MiB)',
      s: maxOf(s.rssAfterPullKb),
      j: maxOf(j.rssAfterPullKb),
      fmt: fMiB,
      ratio: true,
    },
    { metric: 'peak RSS, max node (MiB)', s: maxOf(s.hwmKb), j: maxOf(j.hwmKb), fmt: fMiB, ratio: true },
    {
      metric: 'server warning/error log lines',
      s: s.warnings.count,
      j: j.warnings.count,
      fmt: n,
      ratio: false,
    },
  ];
}

/** How far the config gets towards the architecture's target, and what the CPU cost per message says. */
function targetLine(r: SystemResult, cores: number): string {
  const us = usPerMsg(r.send.cpu, r.send.confirmed);
  const coresNeeded = (us * TARGET_MSGS_PER_SEC) / 1e6;
  const met = r.send.msgsPerSec >= TARGET_MSGS_PER_SEC && r.send.p99 < TARGET_P99_MS;
  return (
    `  ${r.label.padEnd(15)} ${fInt(r.send.msgsPerSec).padStart(8)} confirmed msgs/s ` +
    `(${((r.send.msgsPerSec / TARGET_MSGS_PER_SEC) * 100).toFixed(1)}% of target), ` +
    `p99 ${fMs(r.send.p99)} ms (${r.send.p99 < TARGET_P99_MS ? 'under' : 'over'} ${TARGET_P99_MS} ms)` +
    `${met ? ' TARGET MET' : ''}; ${fMs(us)} us of node CPU per msg -> ${coresNeeded.toFixed(1)} cores ` +
    `of nodes alone at ${fInt(TARGET_MSGS_PER_SEC)} msgs/s (this machine: ${cores})`
  );
}

const DURABILITY_NOTE =
  'Durability differs: SwarmMQ confirms a send after fdatasync of the LevelDB batch holding it, on the owner ' +
  'and on every live replica (MESH.md M5.2); nats-server 2.9 confirms once a quorum of the stream has the ' +
  'message in its block file (page cache) and fsyncs on a timer (2 min).';

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const env = environment();
  const cores = Number(env.cores);
  const results: { config: ClusterConfig; swarmmq: SystemResult; jetstream: SystemResult }[] = [];
  try {
    for (const [ci, cfg] of opts.configs.entries()) {
      if (cleanup.interrupted) break;
      // Alternate which system goes first, so neither always meets a warmer (or busier) machine.
      const order: System['key'][] = ci % 2 === 0 ? ['swarmmq', 'jetstream'] : ['jetstream', 'swarmmq'];
      const got: Partial<Record<System['key'], SystemResult>> = {};
      for (const key of order) got[key] = await runOne(key, cfg, opts);
      results.push({ config: cfg, swarmmq: got.swarmmq!, jetstream: got.jetstream! });
    }
    const out: string[] = [];
    out.push(
      'SwarmMQ cluster benchmark: durable sends and pulls, SwarmMQ clusters beside JetStream clusters',
    );
    out.push(
      `  per config: ${fInt(opts.msgs)} confirmed sends of ${PAYLOAD_BYTES} B to ${opts.dests} destinations ` +
        `(window ${opts.window} in all, split over one producer per node), then pull+ack of all of them ` +
        `(one consumer per node, batch <= ${PULL_BATCH})${opts.quick ? ' (--quick)' : ''}`,
    );
    out.push(
      `  sends: stock client (${env.natsClient}); SwarmMQ nc.request (D3.7), JetStream js.publish; ` +
        'pulls: SwarmMQ raw PULL/ACK, JetStream consumer.fetch + ack',
    );
    out.push(`  cpu: ${env.cpu}, ${env.cores} cores, ${env.memory}; ${env.os}`);
    out.push(`  node ${env.node}; nats-server ${env.natsServer}; commit ${env.commit}; ${env.date}`);
    out.push(`  SwarmMQ node: ${env.swarmmq}`);
    for (const r of results) {
      out.push('');
      out.push(`config ${r.config.name}: ${r.swarmmq.label} against ${r.jetstream.label}`);
      out.push(
        renderComparison(
          ['metric', r.swarmmq.label, r.jetstream.label, 'ratio S/J'],
          buildRows(r.swarmmq, r.jetstream, cores),
        ),
      );
      for (const s of [r.swarmmq, r.jetstream]) {
        const notes: string[] = [s.formation];
        if (s.send.firstError !== undefined) notes.push(`send: ${s.send.firstError}`);
        if (s.pull.firstError !== undefined) notes.push(`pull: ${s.pull.firstError}`);
        if (s.pull.unexpected > 0) notes.push(`pull: ${s.pull.unexpected} unexpected messages`);
        if (s.warmup.errors > 0)
          notes.push(`warm-up: ${s.warmup.errors} send errors (${s.warmup.firstError})`);
        if (s.warmup.left > 0) notes.push(`warm-up: ${s.warmup.left} left stored`);
        if (s.probe.failures > 0)
          notes.push(
            `${s.probe.failures} probe sends refused before every node knew every destination (${fInt(s.probe.ms)} ms)`,
          );
        if ((s.viewChangesAfterReady ?? 0) > 0)
          notes.push(`${s.viewChangesAfterReady} view changes after the cluster was ready`);
        for (const n of notes) out.push(`  ${s.label}: ${n}`);
        for (const w of s.warnings.first.slice(0, 5)) out.push(`  ${s.label} log: ${w}`);
      }
    }
    out.push('');
    out.push(
      `Target of the original architecture: ${fInt(TARGET_MSGS_PER_SEC)} confirmed msgs/s per cluster with p99 < ${TARGET_P99_MS} ms. ` +
        'This machine (clients and every node sharing its cores):',
    );
    for (const r of results) for (const s of [r.swarmmq, r.jetstream]) out.push(targetLine(s, cores));
    out.push('');
    out.push(
      'ratio S/J = SwarmMQ / JetStream (msgs/s: higher is better; latency, CPU, RSS: lower is better). ' +
        'CPU per node: % of one core over the phase; the nodes, the bench client and everything else share ' +
        `the machine's ${cores} cores, so a machine near ${cores * 100}% busy means the numbers are CPU bound.`,
    );
    out.push(DURABILITY_NOTE);
    console.log(out.join('\n'));
    if (opts.json !== undefined) {
      writeFileSync(opts.json, JSON.stringify({ env, options: opts, results }, null, 2) + '\n');
      console.error(`wrote ${opts.json}`);
    }
  } finally {
    await cleanup.run();
  }
}

cleanup.exitWith('cluster', main);
