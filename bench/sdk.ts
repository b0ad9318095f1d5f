/**
 * SDK benchmark: what the SDK's direct-to-owner routing buys, measured on
 * one SwarmMQ cluster with the same durable workload through three clients.
 *
 *   node dist/bench/sdk.js [--quick] [--json out.json] [--nodes 5] [--rf 3]
 *
 * The cluster: N SwarmMQ nodes (default 5) with replication factor RF
 * (default 3), each a child process on its own data dir, finding the others
 * through a registry dir shared by this run only (protocol/MESH.md M1.3),
 * started as bench/cluster.ts starts them (lib.ts startSwarmCluster):
 *   node dist/src/cli/main.js start --port 0 --data-dir <tmp>/n<i> --cluster bench-<rand>
 *        --registry-dir <tmp>/registry --replication-factor RF --log-level info
 * A confirmation means synced on the owner and on every live replica (M5.2).
 *
 * The systems, all in this process, each connected to the same node h of
 * the round (picked at random per round):
 *   A  the SDK (src/index.ts), routed to owners: connect({ servers: [h] }),
 *      client.send(dest, payload, { id }); a send goes over the SDK's link
 *      to the destination's owner (M3.2) and is stored there: no hop.
 *   B  the SDK with routeToOwner: false: every send goes to h, which runs
 *      it itself if it owns the destination and otherwise forwards it to
 *      the owner over /swarmmq/durable/1.0.0 (M4.5). B - A is what routing
 *      buys; B - C is what the SDK client costs beside the stock one.
 *   C  the stock NATS client (@nats-io/transport-node) on h:
 *      nc.request(dest, payload, { headers: Nats-Msg-Id }), stored and
 *      answered with a JetStream-shaped ack (DURABLE.md D3.7), forwarded as
 *      B's are; the path bench/cluster.ts measures.
 *
 * Workload (128-byte payloads, D destinations, default 16): rounds in
 * alternating order (A B C, then C B A, ...) so that drift shows. Every
 * round creates fresh destinations for each system and window,
 * sdk.r<round>.<a|b|c>.<w|l>.d<k> (and sdk.r<round>.x.l.d<k> for the
 * interleaved phase), before the round's timing starts (a
 * CREATE, one probe send through every node, retried until each node
 * knows the destination (M3.4), and every node answering OWNER with the
 * same owner and min(RF, N) - 1 replicas), so no run meets a deeper
 * destination than another. Per system and round, on one connection:
 *   window   warm-up (not recorded), then n confirmed sends (default
 *            20,000; --quick 3,000), message i to destination i % D, at
 *            most W (default 256) outstanding.
 *   low load warm-up, then 2,000 (--quick 300) sends one at a time (W = 1):
 *            latency without queueing, where a saved hop shows most.
 * After each round, interleaved (--no-interleaved skips it): the three
 * clients connected at once to node h take turns at W = 1 on one shared
 * set of fresh destinations, 2,000 (--quick 300) turns, the order rotating
 * each turn, so that background load hits all three alike; it reports
 * each one's percentiles and the median over the turns of the paired
 * differences (A - B: what routing buys; B - C: the SDK against the stock
 * client).
 * Per send: the call to its confirmation (performance.now()); per phase:
 * p50/p90/p99/max (nearest rank), confirmed sends / (last confirmation -
 * first send), the CPU of every node and of this process over the phase
 * (/proc, 10 ms ticks; also less the nodes' idle CPU, measured for 2 s
 * before each round), and the fraction of sends that reached the owner
 * without a hop (A: the SDK's ownerOf() agrees with the nodes' OWNER; B, C:
 * the destinations node h owns itself, about 1/N).
 *
 * Every phase is capped by count and by time (60 s, or 10 s without
 * progress); children and temp dirs are removed on exit, error or Ctrl-C.
 */
import { randomInt } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { SingleBar } from 'cli-progress';
import Table from 'cli-table3';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { connect, type SwarmClient } from '../src/index.js';
import { DurableClient } from '../test/helpers/durable-client.js';
import {
  checkOwnerAgreement,
  Cleanup,
  ClusterCpuMeter,
  type ClusterCpuUse,
  ownerAnswers,
  type OwnerAnswer,
  percentiles,
  quiet,
  readFlags,
  retry as retryUntil,
  runCalls,
  sleep,
  startSwarmCluster,
  type SwarmCluster,
  withTimeout,
  PAYLOAD_BYTES,
  PHASE_DEADLINE_MS,
  STALL_MS,
  PROBE_DEADLINE_MS,
} from './lib.js';
import { environment, fMs, natsConnect, SWARM_MAIN } from './compare.js';

// ---------------------------------------------------------------- constants

/** One send's deadline (SDK sendTimeoutMs, stock client request timeout). */
const SEND_TIMEOUT_MS = 10_000;
/** Bounds a client's connect and close. */
const CONNECT_MS = 15_000;
/** Before each round, the nodes' CPU with no client working (heartbeats, timers) over this long. */
const IDLE_MS = 2000;
/** Pause after each phase, so that the next one does not start in the tail of the last. */
const SETTLE_MS = 300;
/** A phase in which the rest of the machine used more than this (% of one core) was disturbed. */
const DISTURBED_PCT = 25;
/** Message id prefix of the readiness probes (never a measured message). */
const PROBE_ID = 'probe';

// ---------------------------------------------------------------- options

interface Options {
  quick: boolean;
  nodes: number;
  rf: number;
  dests: number;
  window: number;
  msgs: number;
  warmupMsgs: number;
  lowMsgs: number;
  lowWarmupMsgs: number;
  rounds: number;
  systems: SystemKey[];
  /** The interleaved W=1 phase after each round. */
  interleaved: boolean;
  waitQuietMs: number;
  json: string | undefined;
}

function parseArgs(argv: string[]): Options {
  const f = readFlags(
    argv,
    {
      quick: { type: 'boolean' },
      json: { type: 'string' },
      nodes: { type: 'number', min: 1, max: 9 },
      rf: { type: 'number', min: 1, max: 5 },
      dests: { type: 'number', min: 1, max: 100 },
      window: { type: 'number', min: 1, max: 1024 },
      msgs: { type: 'number', min: 100, max: 1_000_000 },
      'low-msgs': { type: 'number', min: 10, max: 100_000 },
      rounds: { type: 'number', min: 1, max: 10 },
      systems: { type: 'string' },
      'no-interleaved': { type: 'boolean' },
      'wait-quiet': { type: 'number', min: 0, max: 600 },
    },
    usage,
  );
  const quick = f.quick === true;
  const nodes = f.nodes ?? 5;
  const rf = f.rf ?? 3;
  if (rf > nodes) usage(`--rf ${rf} is more than --nodes ${nodes}`);
  const systems = (f.systems ?? 'A,B,C').split(',').map((x) => x.trim().toUpperCase());
  for (const x of systems) if (!['A', 'B', 'C'].includes(x)) usage(`--systems: ${x} is not A, B or C`);
  return {
    quick,
    nodes,
    rf,
    dests: f.dests ?? 16,
    window: f.window ?? 256,
    msgs: f.msgs ?? (quick ? 3_000 : 20_000),
    warmupMsgs: quick ? 300 : 2_000,
    lowMsgs: f['low-msgs'] ?? (quick ? 300 : 2_000),
    lowWarmupMsgs: quick ? 32 : 100,
    rounds: f.rounds ?? 2,
    systems: [...new Set(systems)] as SystemKey[],
    interleaved: f['no-interleaved'] !== true,
    waitQuietMs: (f['wait-quiet'] ?? 0) * 1000,
    json: f.json,
  };
}

function usage(err?: string): never {
  if (err !== undefined) console.error(`sdk: ${err}`);
  console.error(
    'usage: node dist/bench/sdk.js [--quick] [--nodes 5] [--rf 3] [--dests 16] [--window 256] [--msgs N]\n' +
      '                              [--low-msgs N] [--rounds 2] [--systems A,B,C] [--no-interleaved]\n' +
      '                              [--wait-quiet S] [--json out.json]',
  );
  process.exit(err === undefined ? 0 : 2);
}

// ---------------------------------------------------------------- formatting

const fInt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
const fPct = (x: number): string => (Number.isFinite(x) ? `${Math.round(x * 100)}%` : '-');
const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);
const errText = (err: unknown): string => (err as Error).message ?? String(err);

// ---------------------------------------------------------------- the systems

/** Children and temp dirs, removed on exit, error or Ctrl-C. */
const cleanup = new Cleanup();

const retry = <T>(what: string, ms: number, fn: () => Promise<T>): Promise<{ v: T; tries: number }> =>
  retryUntil(what, ms, fn, () => cleanup.interrupted);

type SystemKey = 'A' | 'B' | 'C';
const SYSTEMS: Record<SystemKey, string> = {
  A: 'A: SDK, routed to owners',
  B: 'B: SDK, routeToOwner false',
  C: 'C: stock NATS client',
};

/** One client of the bench: a confirmed send; resolves true for a duplicate (D3.4). */
interface BenchClient {
  send(destination: string, payload: Buffer, id: string, signal: AbortSignal): Promise<boolean>;
  /** A: the owner the SDK computed (peer id), to compare with the nodes' OWNER. */
  ownerOf(destination: string): string | undefined;
  /** Members in the SDK's view (undefined for the stock client). */
  viewMembers(): number | undefined;
  /** SDK 'retry' and 'disconnect' events so far. */
  events(): { retries: number; disconnects: number; firstRetry: string | undefined };
  close(): Promise<void>;
}

async function openSdk(port: number, routeToOwner: boolean, name: string): Promise<BenchClient> {
  const client: SwarmClient = await connect({
    servers: [`127.0.0.1:${port}`],
    name,
    routeToOwner,
    sendTimeoutMs: SEND_TIMEOUT_MS,
    signal: AbortSignal.timeout(CONNECT_MS),
  });
  let retries = 0;
  let disconnects = 0;
  let firstRetry: string | undefined;
  client.on('retry', (e) => {
    retries++;
    firstRetry ??= `${e.what}: ${e.error.message}`;
  });
  client.on('disconnect', () => disconnects++);
  return {
    send: async (destination, payload, id, signal) =>
      (await client.send(destination, payload, { id, signal })).duplicate,
    ownerOf: (d) => client.ownerOf(d)?.id,
    viewMembers: () => client.view?.members.length,
    events: () => ({ retries, disconnects, firstRetry }),
    close: () => withTimeout(client.close(), CONNECT_MS, 'SDK close').catch(() => undefined),
  };
}

async function openStock(port: number, name: string): Promise<BenchClient> {
  const nc: NatsConnection = await natsConnect(port, name);
  return {
    send: async (destination, payload, id) => {
      const h = natsHeaders();
      h.set('Nats-Msg-Id', id);
      const reply = await nc.request(destination, payload, { timeout: SEND_TIMEOUT_MS, headers: h });
      const ack = reply.json<{ seq?: number; duplicate?: boolean; error?: { description: string } }>();
      if (ack.error !== undefined || typeof ack.seq !== 'number') {
        throw new Error(`refused: ${JSON.stringify(ack)}`);
      }
      return ack.duplicate === true;
    },
    ownerOf: () => undefined,
    viewMembers: () => undefined,
    events: () => ({ retries: 0, disconnects: 0, firstRetry: undefined }),
    close: () => withTimeout(nc.close(), CONNECT_MS, 'close').catch(() => undefined),
  };
}

function openClient(key: SystemKey, port: number, round: number): Promise<BenchClient> {
  const name = `bench-sdk-${key.toLowerCase()}${round}`;
  if (key === 'A') return openSdk(port, true, name);
  if (key === 'B') return openSdk(port, false, name);
  return openStock(port, name);
}

// ---------------------------------------------------------------- the cluster and its destinations

/** The cluster and one raw protocol connection plus one stock-client connection per node (for setup). */
interface Bed {
  cluster: SwarmCluster;
  raw: DurableClient[];
  probes: NatsConnection[];
}

/** A set of fresh destinations and the node index that owns each (from OWNER). */
interface DestSet {
  names: string[];
  owners: number[];
  ownerIds: string[];
}

/**
 * Creates the destinations (CREATE runs at the owner, D7.5), sends one
 * probe through every node until each node knows every one of them
 * (M3.4: the stock client's PUB needs the node's catalog), and waits until
 * every node names the same owner and replicas for each (M3.3).
 */
async function prepare(bed: Bed, names: string[], rf: number): Promise<DestSet> {
  const { raw, probes, cluster } = bed;
  for (const name of names) {
    const answer = await withTimeout(raw[0]!.create(name), PROBE_DEADLINE_MS, `CREATE ${name}`);
    if (answer !== 'CREATED' && answer !== 'EXISTS') {
      throw new Error(`CREATE ${name}: ${answer}`);
    }
  }
  const payload = Buffer.alloc(PAYLOAD_BYTES, 0x70);
  await Promise.all(
    probes.map(async (nc, p) => {
      for (const name of names) {
        await retry(`probe ${name} via node ${p}`, PROBE_DEADLINE_MS, async () => {
          const h = natsHeaders();
          h.set('Nats-Msg-Id', `${PROBE_ID}-${p}`);
          const reply = await nc.request(name, payload, { timeout: SEND_TIMEOUT_MS, headers: h });
          const ack = reply.json<{ seq?: number }>();
          if (typeof ack.seq !== 'number') throw new Error(`refused: ${JSON.stringify(ack)}`);
        });
      }
    }),
  );
  const want = Math.min(rf, cluster.nodes.length) - 1;
  const { v: answers } = await retry('OWNER agreement', PROBE_DEADLINE_MS, async () => {
    const all = await Promise.all(raw.map((c) => ownerAnswers(c, names)));
    checkOwnerAgreement(all, names, want);
    return all[0]!;
  });
  return { names, owners: answers.map((a) => nodeIndex(bed, a)), ownerIds: answers.map((a) => a.owner) };
}

/** The index of the node an OWNER answer names (by its client port), or -1. */
function nodeIndex(bed: Bed, a: OwnerAnswer): number {
  if (a.owner === 'local') return 0;
  return bed.cluster.nodes.findIndex((n) => a.client.endsWith(`:${n.port}`));
}

// ---------------------------------------------------------------- one phase

interface PhaseResult {
  n: number;
  sent: number;
  confirmed: number;
  errors: number;
  duplicates: number;
  firstError: string | undefined;
  wallMs: number;
  msgsPerSec: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  cpu: ClusterCpuUse;
  /** Node CPU (all nodes) per confirmed send, in µs. */
  nodeUsPerMsg: number;
  /** This process's CPU per confirmed send, in µs. */
  benchUsPerMsg: number;
}

/**
 * n confirmed sends through `client`, message i to destination i % D, at
 * most `window` outstanding; stops (aborting what is in flight) at the
 * phase deadline, after STALL_MS without an answer, or on Ctrl-C.
 */
async function sendPhase(
  client: BenchClient,
  bed: Bed,
  set: DestSet,
  n: number,
  window: number,
  idPrefix: string,
  label: string | undefined,
): Promise<{ r: PhaseResult; lat: Float64Array }> {
  const payload = Buffer.alloc(PAYLOAD_BYTES, 0x61);
  const lat = new Float64Array(n).fill(NaN);
  const abort = new AbortController();
  let confirmed = 0;
  let errors = 0;
  let duplicates = 0;
  let firstError: string | undefined;
  const bar =
    label === undefined
      ? undefined
      : new SingleBar({
          stream: process.stderr,
          format: `  ${label.padEnd(44)} {bar} {value}/{total} | {rate} msgs/s`,
          hideCursor: true,
          clearOnComplete: true,
          noTTYOutput: true,
          notTTYSchedule: 5000,
        });
  bar?.start(n, 0, { rate: '-' });
  const meter = new ClusterCpuMeter(bed.cluster.nodes.map((s) => s.child.pid));
  const t0 = performance.now();
  let lastConfirmAt = t0;
  let ended = false;
  const run = await runCalls({
    n,
    canStart: (inflight) => inflight < window,
    call: (i) => {
      const t = performance.now();
      return client.send(set.names[i % set.names.length]!, payload, `${idPrefix}-${i}`, abort.signal).then(
        (duplicate) => {
          lastConfirmAt = performance.now();
          lat[i] = lastConfirmAt - t;
          confirmed++;
          if (duplicate) duplicates++;
        },
        (err: unknown) => {
          if (ended) return;
          errors++;
          firstError ??= errText(err);
        },
      );
    },
    tick: () => {
      const secs = (performance.now() - t0) / 1000;
      bar?.update(confirmed, { rate: fInt(confirmed / Math.max(secs, 0.001)) });
    },
    interrupted: () => cleanup.interrupted,
  });
  ended = true;
  abort.abort(new Error('phase ended'));
  firstError ??= run.stopped;
  const cpu = meter.stop();
  bar?.update(confirmed, { rate: '-' });
  bar?.stop();
  const [p50, p90, p99, max] = percentiles(lat, n, [0.5, 0.9, 0.99, 1]) as [number, number, number, number];
  const benchMs = (cpu.clientCpuPct * cpu.wallMs) / 100;
  return {
    lat,
    r: {
      n,
      sent: run.started,
      confirmed,
      errors,
      duplicates,
      firstError,
      wallMs: cpu.wallMs,
      msgsPerSec: (confirmed * 1000) / Math.max(1, lastConfirmAt - t0),
      p50,
      p90,
      p99,
      max,
      cpu,
      nodeUsPerMsg: (sum(cpu.serverCpuMs) * 1000) / Math.max(1, confirmed),
      benchUsPerMsg: (benchMs * 1000) / Math.max(1, confirmed),
    },
  };
}

// ---------------------------------------------------------------- one system, one round

/** Node CPU per confirmed send less what the nodes use idle over the same wall time, in µs. */
function aboveIdle(r: PhaseResult, idleNodeCpuPct: number): number {
  return ((sum(r.cpu.serverCpuMs) - (idleNodeCpuPct / 100) * r.wallMs) * 1000) / Math.max(1, r.confirmed);
}

interface RunResult extends PhaseResult {
  system: SystemKey;
  round: number;
  window: number;
  /** Node index the client connected to. */
  home: number;
  /** Destinations (of D) that node h owns itself. */
  homeOwns: number;
  /** Fraction of the measured sends that reached the owner without a forwarding hop. */
  direct: number;
  /** A, B: members in the SDK's view; A: destinations where ownerOf() agreed with OWNER. */
  sdkMembers: number | undefined;
  sdkAgrees: number | undefined;
  retries: number;
  disconnects: number;
  firstRetry: string | undefined;
  /** All nodes' CPU with no client working, measured before the round, in % of one core. */
  idleNodeCpuPct: number;
  /** nodeUsPerMsg less the idle CPU over the phase's wall time: the cost of the sends themselves. */
  nodeUsPerMsgAboveIdle: number;
}

async function runSystem(
  key: SystemKey,
  round: number,
  home: number,
  bed: Bed,
  sets: { window: DestSet; low: DestSet },
  idleNodeCpuPct: number,
  opts: Options,
): Promise<{ runs: RunResult[]; lat: Float64Array[] }> {
  const port = bed.cluster.nodes[home]!.port;
  const client = await openClient(key, port, round);
  const tag = `r${round}-${key.toLowerCase()}`;
  try {
    const out: { runs: RunResult[]; lat: Float64Array[] } = { runs: [], lat: [] };
    const phases: { set: DestSet; window: number; warm: number; n: number; id: string }[] = [
      { set: sets.window, window: opts.window, warm: opts.warmupMsgs, n: opts.msgs, id: 'w' },
      { set: sets.low, window: 1, warm: opts.lowWarmupMsgs, n: opts.lowMsgs, id: 'l' },
    ];
    for (const ph of phases) {
      if (cleanup.interrupted) break;
      const warm = await sendPhase(client, bed, ph.set, ph.warm, ph.window, `${tag}-${ph.id}warm`, undefined);
      if (warm.r.confirmed < ph.warm) {
        console.error(
          `  ${SYSTEMS[key]} warm-up: ${warm.r.confirmed}/${ph.warm} confirmed (${warm.r.firstError})`,
        );
      }
      await quiet(opts.waitQuietMs, () => cleanup.interrupted);
      await sleep(SETTLE_MS);
      const label = `round ${round + 1} ${SYSTEMS[key]}, W=${ph.window}`;
      const { r, lat } = await sendPhase(client, bed, ph.set, ph.n, ph.window, `${tag}-${ph.id}`, label);
      const D = ph.set.names.length;
      const homeOwns = ph.set.owners.filter((o) => o === home).length;
      // Message i goes to destination i % D.
      const sends = (pred: (k: number) => boolean): number => {
        let c = 0;
        for (let i = 0; i < r.sent; i++) if (pred(i % D)) c++;
        return c / Math.max(1, r.sent);
      };
      const agrees =
        key === 'A'
          ? ph.set.names.filter((d, k) => client.ownerOf(d) === ph.set.ownerIds[k]).length
          : undefined;
      const direct =
        key === 'A'
          ? sends((k) => client.ownerOf(ph.set.names[k]!) === ph.set.ownerIds[k])
          : sends((k) => ph.set.owners[k] === home);
      const ev = client.events();
      const run: RunResult = {
        system: key,
        round,
        window: ph.window,
        home,
        homeOwns,
        direct,
        sdkMembers: client.viewMembers(),
        sdkAgrees: agrees,
        retries: ev.retries,
        disconnects: ev.disconnects,
        firstRetry: ev.firstRetry,
        idleNodeCpuPct,
        nodeUsPerMsgAboveIdle: aboveIdle(r, idleNodeCpuPct),
        ...r,
      };
      console.error(
        `  ${label.padEnd(44)} ${fInt(r.msgsPerSec)} msgs/s, p50 ${fMs(r.p50)} ms, p99 ${fMs(r.p99)} ms, ` +
          `max ${fMs(r.max)} ms, ${r.confirmed}/${r.n} confirmed, node ${fInt(r.nodeUsPerMsg)} ` +
          `(${fInt(run.nodeUsPerMsgAboveIdle)} above idle) µs/msg, ` +
          `bench ${fInt(r.benchUsPerMsg)} µs/msg, other ${fInt(r.cpu.backgroundCpuPct)}%, ` +
          `direct ${fPct(direct)}${r.errors > 0 ? `, ${r.errors} errors (${r.firstError})` : ''}` +
          `${ev.retries > 0 ? `, ${ev.retries} SDK retries (${ev.firstRetry})` : ''}`,
      );
      out.runs.push(run);
      out.lat.push(lat);
      await sleep(SETTLE_MS);
    }
    return out;
  } finally {
    await client.close();
  }
}

// ---------------------------------------------------------------- interleaved low load

/**
 * W = 1 with the three clients connected at once (all to node h) and
 * taking turns: in turn j each system sends message j to destination
 * j % D of one shared set and waits for its confirmation, the systems'
 * order rotating from turn to turn. Background load and drift then hit
 * all three alike, and each turn gives a paired difference.
 */
interface InterleavedResult {
  round: number;
  home: number;
  n: number;
  /** Turns in which every system sent. */
  turns: number;
  errors: number;
  firstError: string | undefined;
  bySystem: Partial<Record<SystemKey, { p50: number; p90: number; p99: number; max: number }>>;
  /** Median over the turns of the first system's latency minus the second's, in ms. */
  medianDiff: { pair: string; ms: number }[];
  cpu: ClusterCpuUse;
}

const PAIRS: [SystemKey, SystemKey][] = [
  ['A', 'B'],
  ['B', 'C'],
  ['A', 'C'],
];

function medianPaired(a: Float64Array, b: Float64Array, n: number): number {
  const d = new Float64Array(n);
  for (let j = 0; j < n; j++) d[j] = a[j]! - b[j]!;
  return percentiles(d, n, [0.5])[0]!;
}

async function interleaved(
  round: number,
  home: number,
  bed: Bed,
  set: DestSet,
  systems: SystemKey[],
  opts: Options,
): Promise<{ r: InterleavedResult; lat: Partial<Record<SystemKey, Float64Array>> }> {
  const port = bed.cluster.nodes[home]!.port;
  const clients: [SystemKey, BenchClient][] = [];
  const payload = Buffer.alloc(PAYLOAD_BYTES, 0x61);
  const D = set.names.length;
  try {
    for (const key of systems) clients.push([key, await openClient(key, port, round)]);
    /** n turns; records latencies when `lat` is given. Stops at the deadline, a stall or Ctrl-C. */
    const turns = async (
      n: number,
      idPrefix: string,
      lat: Partial<Record<SystemKey, Float64Array>> | undefined,
      bar: SingleBar | undefined,
    ): Promise<{ turns: number; errors: number; firstError: string | undefined }> => {
      const deadline = AbortSignal.timeout(PHASE_DEADLINE_MS);
      let errors = 0;
      let firstError: string | undefined;
      let j = 0;
      for (; j < n && !deadline.aborted && !cleanup.interrupted; j++) {
        for (let s = 0; s < clients.length; s++) {
          const [key, client] = clients[(j + s) % clients.length]!;
          const t = performance.now();
          try {
            await client.send(set.names[j % D]!, payload, `${idPrefix}-${key.toLowerCase()}-${j}`, deadline);
            if (lat !== undefined) lat[key]![j] = performance.now() - t;
          } catch (err) {
            errors++;
            firstError ??= `${key}: ${errText(err)}`;
            if (performance.now() - t >= STALL_MS || deadline.aborted)
              return { turns: j, errors, firstError };
          }
        }
        if (j % 20 === 0) bar?.update(j);
      }
      if (j < n) firstError ??= `stopped after ${j} of ${n} turns (deadline or Ctrl-C)`;
      return { turns: j, errors, firstError };
    };
    await turns(opts.lowWarmupMsgs, `r${round}-xwarm`, undefined, undefined);
    await sleep(SETTLE_MS);
    const n = opts.lowMsgs;
    const lat: Partial<Record<SystemKey, Float64Array>> = {};
    for (const key of systems) lat[key] = new Float64Array(n).fill(NaN);
    const label = `round ${round + 1} interleaved ${systems.join(' ')}, W=1`;
    const bar = new SingleBar({
      stream: process.stderr,
      format: `  ${label.padEnd(44)} {bar} {value}/{total} turns`,
      hideCursor: true,
      clearOnComplete: true,
      noTTYOutput: true,
      notTTYSchedule: 5000,
    });
    bar.start(n, 0);
    const meter = new ClusterCpuMeter(bed.cluster.nodes.map((x) => x.child.pid));
    const got = await turns(n, `r${round}-x`, lat, bar);
    const cpu = meter.stop();
    bar.stop();
    const bySystem: InterleavedResult['bySystem'] = {};
    for (const key of systems) {
      const [p50, p90, p99, max] = percentiles(lat[key]!, got.turns, [0.5, 0.9, 0.99, 1]) as [
        number,
        number,
        number,
        number,
      ];
      bySystem[key] = { p50, p90, p99, max };
    }
    const medianDiff = PAIRS.filter(([x, y]) => lat[x] !== undefined && lat[y] !== undefined).map(
      ([x, y]) => ({
        pair: `${x}-${y}`,
        ms: medianPaired(lat[x]!, lat[y]!, got.turns),
      }),
    );
    const r: InterleavedResult = { round, home, n, ...got, bySystem, medianDiff, cpu };
    console.error(
      `  ${label.padEnd(44)} ${got.turns}/${n} turns, p50 ` +
        systems.map((k) => `${k} ${fMs(bySystem[k]!.p50)}`).join(' ') +
        ' ms, p99 ' +
        systems.map((k) => `${k} ${fMs(bySystem[k]!.p99)}`).join(' ') +
        ' ms, median paired difference ' +
        medianDiff.map((d) => `${d.pair} ${fMs(d.ms)}`).join(' ') +
        ` ms, other ${fInt(cpu.backgroundCpuPct)}%${got.errors > 0 ? `, ${got.errors} errors (${got.firstError})` : ''}`,
    );
    return { r, lat };
  } finally {
    await Promise.all(clients.map(([, c]) => c.close()));
  }
}

function interleavedTable(
  results: InterleavedResult[],
  lats: Partial<Record<SystemKey, Float64Array>>[],
  systems: SystemKey[],
): string {
  const t = new Table({
    ...TABLE_STYLE,
    head: [
      'round',
      'node h',
      'turns',
      ...systems.map((k) => `${k} p50/p90/p99 ms`),
      ...PAIRS.filter(([x, y]) => systems.includes(x) && systems.includes(y)).map(
        ([x, y]) => `median ${x}-${y} ms`,
      ),
      'other %',
    ],
  });
  const row = (
    round: string,
    home: string,
    turns: number,
    lat: Partial<Record<SystemKey, Float64Array>>,
    other: string,
  ): void => {
    t.push([
      round,
      home,
      fInt(turns),
      ...systems.map((k) =>
        percentiles(lat[k]!, lat[k]!.length, [0.5, 0.9, 0.99])
          .map((x) => fMs(x))
          .join(' / '),
      ),
      ...PAIRS.filter(([x, y]) => systems.includes(x) && systems.includes(y)).map(([x, y]) => {
        // Only the turns every system completed.
        const n = Math.min(lat[x]!.length, lat[y]!.length);
        return fMs(medianPaired(lat[x]!, lat[y]!, n));
      }),
      other,
    ]);
  };
  results.forEach((r, i) => {
    const lat: Partial<Record<SystemKey, Float64Array>> = {};
    for (const k of systems) lat[k] = lats[i]![k]!.slice(0, r.turns);
    row(
      String(r.round + 1),
      `n${r.home}`,
      r.turns,
      lat,
      `${fInt(r.cpu.backgroundCpuPct)}${r.cpu.backgroundCpuPct > DISTURBED_PCT ? ' *' : ''}`,
    );
  });
  if (results.length > 1) {
    const all: Partial<Record<SystemKey, Float64Array>> = {};
    for (const k of systems) {
      const parts = results.map((r, i) => lats[i]![k]!.slice(0, r.turns));
      const a = new Float64Array(sum(parts.map((p) => p.length)));
      let off = 0;
      for (const p of parts) {
        a.set(p, off);
        off += p.length;
      }
      all[k] = a;
    }
    row('all', '', sum(results.map((r) => r.turns)), all, '');
  }
  return t.toString();
}

// ---------------------------------------------------------------- report

interface Summary {
  system: SystemKey;
  window: number;
  rounds: number;
  confirmed: number;
  errors: number;
  /** Mean over the rounds, and the rounds' lowest and highest. */
  msgsPerSec: number;
  msgsPerSecMin: number;
  msgsPerSecMax: number;
  /** Over every round's samples together. */
  p50: number;
  p90: number;
  p99: number;
  max: number;
  nodeUsPerMsg: number;
  nodeUsPerMsgAboveIdle: number;
  benchUsPerMsg: number;
  direct: number;
  /** Rounds in which other processes used more than DISTURBED_PCT of a core. */
  disturbed: number;
}

function summarise(runs: RunResult[], lats: Float64Array[], key: SystemKey, window: number): Summary {
  const idx = runs.map((_, i) => i).filter((i) => runs[i]!.system === key && runs[i]!.window === window);
  const rs = idx.map((i) => runs[i]!);
  const all = new Float64Array(sum(idx.map((i) => lats[i]!.length)));
  let off = 0;
  for (const i of idx) {
    all.set(lats[i]!, off);
    off += lats[i]!.length;
  }
  const [p50, p90, p99, max] = percentiles(all, all.length, [0.5, 0.9, 0.99, 1]) as [
    number,
    number,
    number,
    number,
  ];
  const confirmed = sum(rs.map((r) => r.confirmed));
  const rates = rs.map((r) => r.msgsPerSec);
  return {
    system: key,
    window,
    rounds: rs.length,
    confirmed,
    errors: sum(rs.map((r) => r.errors)),
    msgsPerSec: sum(rates) / Math.max(1, rates.length),
    msgsPerSecMin: Math.min(...rates),
    msgsPerSecMax: Math.max(...rates),
    p50,
    p90,
    p99,
    max,
    nodeUsPerMsg: (sum(rs.map((r) => sum(r.cpu.serverCpuMs))) * 1000) / Math.max(1, confirmed),
    nodeUsPerMsgAboveIdle:
      (sum(rs.map((r) => sum(r.cpu.serverCpuMs) - (r.idleNodeCpuPct / 100) * r.wallMs)) * 1000) /
      Math.max(1, confirmed),
    benchUsPerMsg:
      (sum(rs.map((r) => (r.cpu.clientCpuPct * r.cpu.wallMs) / 100)) * 1000) / Math.max(1, confirmed),
    direct: sum(rs.map((r) => r.direct)) / Math.max(1, rs.length),
    disturbed: rs.filter((r) => r.cpu.backgroundCpuPct > DISTURBED_PCT).length,
  };
}

const TABLE_STYLE = {
  style: { head: [], border: [] },
  chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
};

function summaryTable(sums: Summary[]): string {
  const t = new Table({
    ...TABLE_STYLE,
    head: [
      'W',
      'system',
      'msgs/s (mean; min-max)',
      'p50 ms',
      'p90 ms',
      'p99 ms',
      'max ms',
      'node CPU µs/msg (above idle)',
      'bench CPU µs/msg',
      'sends without hop',
      'errors',
      'disturbed',
    ],
  });
  for (const s of sums) {
    t.push([
      s.window,
      SYSTEMS[s.system],
      `${fInt(s.msgsPerSec)}; ${fInt(s.msgsPerSecMin)}-${fInt(s.msgsPerSecMax)}`,
      fMs(s.p50),
      fMs(s.p90),
      fMs(s.p99),
      fMs(s.max),
      `${fInt(s.nodeUsPerMsg)} (${fInt(s.nodeUsPerMsgAboveIdle)})`,
      fInt(s.benchUsPerMsg),
      fPct(s.direct),
      fInt(s.errors),
      `${s.disturbed}/${s.rounds}`,
    ]);
  }
  return t.toString();
}

function runsTable(runs: RunResult[]): string {
  const t = new Table({
    ...TABLE_STYLE,
    head: [
      'round',
      'W',
      'system',
      'node h (owns)',
      'confirmed',
      'msgs/s',
      'p50',
      'p90',
      'p99',
      'max',
      'node µs/msg (above idle)',
      'CPU per node %',
      'bench %',
      'other %',
      'without hop',
    ],
  });
  for (const r of runs) {
    t.push([
      r.round + 1,
      r.window,
      r.system,
      `n${r.home} (${r.homeOwns})`,
      `${fInt(r.confirmed)}/${fInt(r.n)}`,
      fInt(r.msgsPerSec),
      fMs(r.p50),
      fMs(r.p90),
      fMs(r.p99),
      fMs(r.max),
      `${fInt(r.nodeUsPerMsg)} (${fInt(r.nodeUsPerMsgAboveIdle)})`,
      r.cpu.serverCpuPct.map((x) => fInt(x)).join('/'),
      fInt(r.cpu.clientCpuPct),
      `${fInt(r.cpu.backgroundCpuPct)}${r.cpu.backgroundCpuPct > DISTURBED_PCT ? ' *' : ''}`,
      fPct(r.direct),
    ]);
  }
  return t.toString();
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const env = environment();
  const loadBefore = os.loadavg();
  const tStart = performance.now();
  const label = `SwarmMQ ${opts.nodes}x${opts.rf}`;
  console.error(`sdk: ${label}, load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')}`);
  let bed: Bed | undefined;
  try {
    const cluster = await startSwarmCluster(cleanup, {
      main: SWARM_MAIN,
      nodes: opts.nodes,
      rf: opts.rf,
      label,
      tempPrefix: 'swarmmq-sdk-bench-',
    });
    const raw = await Promise.all(
      cluster.nodes.map((n, i) => DurableClient.connect(n.port, '127.0.0.1', `bench-sdk-setup-${i}`)),
    );
    const probes = await Promise.all(
      cluster.nodes.map((n, i) => natsConnect(n.port, `bench-sdk-probe-${i}`)),
    );
    bed = { cluster, raw, probes };

    const runs: RunResult[] = [];
    const lats: Float64Array[] = [];
    let formation = '';
    const homes: number[] = [];
    /** Per round: each node's idle CPU in % of one core. */
    const idles: number[][] = [];
    const inter: InterleavedResult[] = [];
    const interLats: Partial<Record<SystemKey, Float64Array>>[] = [];
    for (let round = 0; round < opts.rounds && !cleanup.interrupted; round++) {
      const order = round % 2 === 0 ? opts.systems : [...opts.systems].reverse();
      const home = randomInt(opts.nodes);
      homes.push(home);
      const tPrep = performance.now();
      const sets = {} as Record<SystemKey, { window: DestSet; low: DestSet }>;
      const shared = await prepare(
        bed,
        Array.from({ length: opts.dests }, (_, k) => `sdk.r${round}.x.l.d${k}`),
        opts.rf,
      );
      for (const key of order) {
        const names = (w: string): string[] =>
          Array.from({ length: opts.dests }, (_, k) => `sdk.r${round}.${key.toLowerCase()}.${w}.d${k}`);
        sets[key] = {
          window: await prepare(bed, names('w'), opts.rf),
          low: await prepare(bed, names('l'), opts.rf),
        };
      }
      if (round === 0) {
        cluster.markReady();
        formation =
          `${opts.nodes} nodes started after ${fInt(cluster.startedMs)} ms, views complete after ` +
          `${fInt(cluster.viewMs)} ms, first destinations ready after ${fInt(performance.now() - cluster.t0)} ms`;
        console.error(`  ${label}: ${formation}`);
      }
      const prepMs = performance.now() - tPrep;
      // The nodes' background (heartbeats, timers) with nothing to do, to set the phases' CPU against.
      await sleep(SETTLE_MS);
      const idleMeter = new ClusterCpuMeter(cluster.nodes.map((n) => n.child.pid));
      await sleep(IDLE_MS);
      const idle = idleMeter.stop();
      const idlePct = sum(idle.serverCpuPct);
      idles.push(idle.serverCpuPct);
      console.error(
        `round ${round + 1}: order ${order.join(' ')}, clients on node n${home}; ` +
          `${(order.length * 2 + 1) * opts.dests} destinations ready in ${fInt(prepMs)} ms; ` +
          `idle nodes ${idle.serverCpuPct.map((x) => fInt(x)).join('/')}% (other ${fInt(idle.backgroundCpuPct)}%)`,
      );
      for (const key of order) {
        if (cleanup.interrupted) break;
        const got = await runSystem(key, round, home, bed, sets[key], idlePct, opts);
        runs.push(...got.runs);
        lats.push(...got.lat);
      }
      if (!cleanup.interrupted && opts.interleaved) {
        const got = await interleaved(round, home, bed, shared, order, opts);
        inter.push(got.r);
        interLats.push(got.lat);
      }
    }
    const loadAfter = os.loadavg();
    const totalMs = performance.now() - tStart;
    const sums: Summary[] = [];
    for (const w of [opts.window, 1]) {
      for (const key of ['A', 'B', 'C'] as SystemKey[]) {
        if (runs.some((r) => r.system === key && r.window === w)) sums.push(summarise(runs, lats, key, w));
      }
    }

    const out: string[] = [];
    out.push('SwarmMQ SDK benchmark: durable sends routed to owners (A) against one node forwarding (B, C)');
    out.push(
      `  ${label}; per system and round: ${fInt(opts.msgs)} confirmed sends of ${PAYLOAD_BYTES} B at W=${opts.window}, ` +
        `then ${fInt(opts.lowMsgs)} at W=1, to ${opts.dests} fresh destinations each; ` +
        `${opts.rounds} round(s), order A B C / C B A${opts.quick ? ' (--quick)' : ''}`,
    );
    out.push(
      `  clients: SDK (src/index.ts) and stock ${env.natsClient}; all on the node of the round: ${homes.map((h) => `n${h}`).join(', ')}`,
    );
    out.push(`  cpu: ${env.cpu}, ${env.cores} cores, ${env.memory}; ${env.os}`);
    out.push(`  node ${env.node}; commit ${env.commit}; ${env.date}`);
    out.push(
      `  load average before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, after ${loadAfter.map((x) => x.toFixed(2)).join(' ')}; ` +
        `run took ${fInt(totalMs / 1000)} s`,
    );
    out.push(`  ${formation}`);
    out.push(
      `  idle nodes before each round (% of a core, node order): ${idles.map((xs) => xs.map((x) => fInt(x)).join('/')).join('; ')}`,
    );
    const sdkRun = runs.find((r) => r.system === 'A');
    if (sdkRun !== undefined) {
      out.push(
        `  SDK view: ${sdkRun.sdkMembers} members; ownerOf() agreed with OWNER for ` +
          `${runs
            .filter((r) => r.system === 'A')
            .map((r) => `${r.sdkAgrees}/${opts.dests}`)
            .join(', ')} destinations (A's runs)`,
      );
    }
    out.push('');
    out.push('Summary (latency percentiles over all rounds together; msgs/s: mean of the rounds):');
    out.push(summaryTable(sums));
    if (inter.length > 0) {
      out.push('');
      out.push(
        `Interleaved, W=1: the clients connected at once to node h, one send at a time in turn (order rotating), ` +
          `${fInt(opts.lowMsgs)} turns per round; median X-Y: median over the turns of X's latency minus Y's:`,
      );
      out.push(interleavedTable(inter, interLats, opts.systems));
    }
    out.push('');
    out.push('Every run:');
    out.push(runsTable(runs));
    const notes: string[] = [];
    for (const r of runs) {
      if (r.errors > 0)
        notes.push(`round ${r.round + 1} ${r.system} W=${r.window}: ${r.errors} errors: ${r.firstError}`);
      if (r.duplicates > 0)
        notes.push(`round ${r.round + 1} ${r.system} W=${r.window}: ${r.duplicates} duplicates`);
      if (r.retries > 0 || r.disconnects > 0) {
        // Counted from the client's connect, so the W=1 run repeats the W=256 run's count.
        notes.push(
          `round ${r.round + 1} ${r.system} W=${r.window}: SDK ${r.retries} retries, ${r.disconnects} disconnects so far (${r.firstRetry})`,
        );
      }
    }
    if (cluster.viewChangesAfterReady() > 0)
      notes.push(`${cluster.viewChangesAfterReady()} view changes after the cluster was ready`);
    const errs = raw.flatMap((c, i) => c.errors.map((e) => `setup client ${i}: -ERR ${e}`));
    notes.push(...errs.slice(0, 5));
    if (cluster.log.count > 0) {
      notes.push(`${cluster.log.count} node warning/error log lines, first:`);
      notes.push(...cluster.log.first.slice(0, 5));
    }
    for (const r of inter)
      if (r.errors > 0) notes.push(`round ${r.round + 1} interleaved: ${r.errors} errors: ${r.firstError}`);
    for (const n of notes) out.push(`  ${n}`);
    out.push('');
    out.push(
      "node CPU µs/msg: all nodes' user+system CPU over the phase per confirmed send (above idle: less the " +
        "nodes' idle CPU over the same time); bench: this process " +
        `(the client under test); other %: the rest of the machine, % of one core (${env.cores} cores). ` +
        'Sends without hop: A, those whose owner the SDK computed as the nodes do; B and C, those to ' +
        'destinations node h owns itself. disturbed / *: other processes used more than ' +
        `${DISTURBED_PCT}% of a core during the phase. A confirmation is synced on the owner and every live ` +
        'replica (M5.2).',
    );
    console.log(out.join('\n'));
    if (opts.json !== undefined) {
      writeFileSync(
        opts.json,
        JSON.stringify(
          {
            env,
            options: opts,
            loadBefore,
            loadAfter,
            totalMs,
            formation,
            idleNodeCpuPct: idles,
            summary: sums,
            runs,
            interleaved: inter,
          },
          null,
          2,
        ) + '\n',
      );
      console.error(`wrote ${opts.json}`);
    }
  } finally {
    if (bed !== undefined) {
      for (const c of bed.raw) c.close();
      await Promise.all(
        bed.probes.map((nc) => withTimeout(nc.close(), 5_000, 'close').catch(() => undefined)),
      );
      await bed.cluster.stop();
    }
    await cleanup.run();
  }
}

cleanup.exitWith('sdk', main);
