/**
 * `swarmmq bench`: a load generator against a running node or cluster. The
 * run itself is bench-run.ts; this file reads the flags, shows progress on
 * stderr (a terminal only) and prints the summary: a table, or one JSON
 * object on stdout with --json.
 */
import { randomBytes } from 'node:crypto';
import { Argument, type Command } from 'commander';
import { SingleBar } from 'cli-progress';
import Table from 'cli-table3';
import type { Client } from '../sdk/wire/connection.js';
import {
  runBench,
  type BenchCounters,
  type BenchMode,
  type BenchOutcome,
  type BenchPlan,
} from './bench-run.js';
import {
  EXIT_CODES_HELP,
  ExitCode,
  UsageError,
  durationArg,
  intArg,
  openClient,
  parseServer,
  runAction,
  withConnectionOptions,
  type ConnectionFlags,
} from './connect-flags.js';

/** Bounds that keep one run from being a denial of service by accident. */
const MAX_MESSAGES = 10_000_000;
/** Each side is one connection apiece; together they stay under the node's 100 new connections per second per address (SEC5.2). */
const MAX_CONNECTIONS_PER_SIDE = 32;
/** Room for the 8-byte timestamp a pubsub payload carries. */
const MIN_SIZE_BYTES = 8;
const MAX_SIZE_BYTES = 8 * 1024 * 1024;
const DEFAULT_MESSAGES: Readonly<Record<BenchMode, number>> = { pubsub: 100_000, send: 10_000 };
const DEFAULT_DURATION_MS = 60_000;
const MAX_DURATION_MS = 3_600_000;
const PROGRESS_INTERVAL_MS = 200;

interface BenchFlags extends ConnectionFlags {
  messages?: number;
  size: number;
  publishers: number;
  subscribers: number;
  destination?: string;
  duration: number;
  json?: boolean;
}

/** The --json object, and the table's rows. */
export interface BenchSummary {
  mode: BenchMode;
  server: string;
  destination: string;
  /** Asked for. */
  messages: number;
  /** Published (pubsub) or confirmed stored (send). */
  completed: number;
  /** Received, summed over subscribers (pubsub), or pulled and acked (send). */
  received: number;
  size_bytes: number;
  publishers: number;
  subscribers: number;
  seconds: number;
  msgs_per_sec: number;
  mb_per_sec: number;
  latency: 'publish-to-receive' | 'send-to-confirm';
  /** Milliseconds; null when nothing was measured (pubsub without subscribers). */
  latency_ms: { p50: number; p90: number; p99: number; max: number } | null;
  /** False when --duration stopped the run first. */
  complete: boolean;
}

export function registerBench(program: Command): void {
  const cmd = program
    .command('bench')
    .description('generate load against a running node or cluster and summarise throughput and latency')
    .addArgument(
      new Argument('<mode>', 'pubsub: core publish/subscribe; send: durable SEND (and pull)').choices([
        'pubsub',
        'send',
      ]),
    )
    .option(
      '-n, --messages <n>',
      `messages to publish or send (default ${DEFAULT_MESSAGES.pubsub} for pubsub, ${DEFAULT_MESSAGES.send} for send; at most ${MAX_MESSAGES})`,
      intArg(1, MAX_MESSAGES),
    )
    .option(
      '--size <bytes>',
      `payload size (${MIN_SIZE_BYTES}-${MAX_SIZE_BYTES})`,
      intArg(MIN_SIZE_BYTES, MAX_SIZE_BYTES),
      128,
    )
    .option(
      '-p, --publishers <n>',
      `publishing or sending connections (1-${MAX_CONNECTIONS_PER_SIDE})`,
      intArg(1, MAX_CONNECTIONS_PER_SIDE),
      1,
    )
    .option(
      '--subscribers <n>',
      `subscribing connections, each gets every message (pubsub), or pulling ones sharing group "bench" (send) (0-${MAX_CONNECTIONS_PER_SIDE})`,
      intArg(0, MAX_CONNECTIONS_PER_SIDE),
      1,
    )
    .option('-d, --destination <name>', 'subject (pubsub) or destination (send) (default bench.<random>)')
    .option(
      '--duration <duration>',
      'stop after this long even if not done (at most 1h)',
      durationArg(1, MAX_DURATION_MS),
      DEFAULT_DURATION_MS,
    )
    .option('--json', 'print the summary as one JSON object on stdout');
  withConnectionOptions(cmd)
    .addHelpText(
      'after',
      `
Examples:
  swarmmq bench pubsub
  swarmmq bench pubsub --messages 1000000 --size 512 --publishers 4 --subscribers 2
  swarmmq bench send --messages 50000 --publishers 4 --subscribers 2 --json
  swarmmq bench send -s tls://node1:4222 --tls-ca ca.pem --token "$KEY"

pubsub measures publish-to-receive latency (each subscriber gets every message;
publishers stay at most a window ahead of them). send measures send-to-confirm
latency (+STORED: synced); its subscribers pull and ack in one group, so the
destination is drained (with --subscribers 0 the messages stay stored). Use a
fresh destination: messages already in one are pulled too.
A progress bar shows on stderr when it is a terminal. The summary gives
messages, seconds, msgs/s, MB/s (payload bytes) and latency p50/p90/p99/max.
Exit 3 when --duration stopped the run before every message was done.
${EXIT_CODES_HELP}`,
    )
    .action(runAction(bench));
}

async function bench(mode: BenchMode, flags: BenchFlags): Promise<void> {
  parseServer(flags.server); // a bad --server is a usage error before any work
  const plan: BenchPlan = {
    mode,
    messages: flags.messages ?? DEFAULT_MESSAGES[mode],
    sizeBytes: flags.size,
    publishers: flags.publishers,
    subscribers: flags.subscribers,
    destination: flags.destination ?? `bench.${randomBytes(4).toString('hex')}`,
    durationMs: flags.duration,
    timeoutMs: flags.timeout,
  };
  const open = async (): Promise<Client> => {
    const c = await openClient(flags, `swarmmq bench ${mode}`);
    if (plan.sizeBytes > c.maxPayloadBytes) {
      c.destroy();
      throw new UsageError(
        `--size ${plan.sizeBytes} is over the node's max_payload of ${c.maxPayloadBytes} bytes`,
      );
    }
    return c;
  };
  const live: BenchCounters = { completed: 0, received: 0 };
  const stopProgress = showProgress(plan, live);
  let outcome: BenchOutcome;
  try {
    outcome = await runBench(plan, open, live);
  } finally {
    stopProgress();
  }
  const summary = summarise(plan, flags.server, live, outcome);
  process.stdout.write(flags.json === true ? `${JSON.stringify(summary)}\n` : `${table(summary)}\n`);
  if (!summary.complete) {
    process.stderr.write(
      `swarmmq: --duration ${flags.duration} ms reached: ${summary.completed} of ${summary.messages} messages done\n`,
    );
    process.exitCode = ExitCode.NoMessage;
  }
}

function summarise(plan: BenchPlan, server: string, live: BenchCounters, o: BenchOutcome): BenchSummary {
  const seconds = o.elapsedMs / 1000;
  const h = o.latencyUs;
  const ms = (us: number): number => Math.round(us) / 1000;
  return {
    mode: plan.mode,
    server,
    destination: plan.destination,
    messages: plan.messages,
    completed: live.completed,
    received: live.received,
    size_bytes: plan.sizeBytes,
    publishers: plan.publishers,
    subscribers: plan.subscribers,
    seconds: Math.round(seconds * 1000) / 1000,
    msgs_per_sec: Math.round(live.completed / seconds),
    mb_per_sec: Math.round(((live.completed * plan.sizeBytes) / 1e6 / seconds) * 100) / 100,
    latency: plan.mode === 'pubsub' ? 'publish-to-receive' : 'send-to-confirm',
    latency_ms:
      h.count === 0
        ? null
        : { p50: ms(h.percentile(50)), p90: ms(h.percentile(90)), p99: ms(h.percentile(99)), max: ms(h.max) },
    complete: o.complete,
  };
}

function table(s: BenchSummary): string {
  // No lines between rows: it reads as one summary, not a grid.
  const t = new Table({
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  const verb = s.mode === 'pubsub' ? 'published' : 'stored';
  const got = s.mode === 'pubsub' ? 'received (all subscribers)' : 'pulled and acked';
  const rows: [string, string][] = [
    ['mode', `${s.mode} on ${s.server}, ${s.destination}`],
    [
      'connections',
      `${count(s.publishers, s.mode === 'pubsub' ? 'publisher' : 'sender')}, ` +
        count(s.subscribers, s.mode === 'pubsub' ? 'subscriber' : 'puller'),
    ],
    ['messages', `${s.completed} of ${s.messages} ${verb}, ${s.size_bytes} B each`],
    [got, String(s.received)],
    ['seconds', s.seconds.toFixed(3)],
    ['msgs/s', String(s.msgs_per_sec)],
    ['MB/s', s.mb_per_sec.toFixed(2)],
  ];
  const l = s.latency_ms;
  if (l === null) rows.push([`latency (${s.latency})`, 'not measured (no subscribers)']);
  else rows.push([`latency ms (${s.latency})`, `p50 ${l.p50}  p90 ${l.p90}  p99 ${l.p99}  max ${l.max}`]);
  t.push(...rows);
  return t.toString();
}

function count(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

/** A progress bar on stderr while it is a terminal; returns its stop. */
function showProgress(plan: BenchPlan, live: BenchCounters): () => void {
  if (process.stderr.isTTY !== true) return () => undefined;
  const bar = new SingleBar({
    stream: process.stderr,
    format: `bench ${plan.mode} {bar} {percentage}% | {value}/{total} | {rate} msg/s | {received} received | ETA {eta_formatted}`,
    hideCursor: true,
    clearOnComplete: true,
  });
  const started = Date.now();
  bar.start(plan.messages, 0, { rate: 0, received: 0 });
  const tick = setInterval(() => {
    const rate = Math.round(live.completed / Math.max(0.001, (Date.now() - started) / 1000));
    bar.update(live.completed, { rate, received: live.received });
  }, PROGRESS_INTERVAL_MS);
  return () => {
    clearInterval(tick);
    bar.stop();
  };
}
