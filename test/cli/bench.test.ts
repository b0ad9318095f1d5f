/**
 * `swarmmq bench` as a real process against a real node (started in this
 * process on port 0): the --json summary counts what it did, the table has
 * the columns, --duration caps a run (exit 3), and its bounds are usage errors.
 */
import test, { type ExecutionContext } from 'ava';
import type { BenchSummary } from '../../src/cli/bench.js';
import { DurableClient } from '../helpers/durable-client.js';
import { cliEach, cliOnce, type CliRun } from '../helpers/cli-once.js';
import { startTestNode } from '../helpers/wire.js';

async function bench(t: ExecutionContext, args: string[]): Promise<CliRun> {
  return cliOnce(t, ['bench', ...args]);
}

/** The one JSON line --json prints; nothing else is on stdout. */
function summary(r: CliRun): BenchSummary {
  const lines = r.stdout.trim().split('\n');
  if (lines.length !== 1) throw new Error(`expected one line on stdout, got ${r.stdout}`);
  return JSON.parse(lines[0]!) as BenchSummary;
}

const at = (port: number): string[] => ['-s', `127.0.0.1:${port}`];

test.serial(
  'bench pubsub --json: every message published and received by every subscriber, with latency',
  async (t) => {
    const { port } = await startTestNode(t);
    const r = await bench(t, [
      'pubsub',
      '--messages',
      '3000',
      '--size',
      '64',
      '--publishers',
      '2',
      '--subscribers',
      '2',
      '--destination',
      'bench.t1',
      '--json',
      ...at(port),
    ]);
    t.is(r.code, 0, r.stderr);
    const s = summary(r);
    t.like(s, {
      mode: 'pubsub',
      server: `127.0.0.1:${port}`,
      destination: 'bench.t1',
      messages: 3000,
      completed: 3000,
      received: 6000,
      size_bytes: 64,
      publishers: 2,
      subscribers: 2,
      latency: 'publish-to-receive',
      complete: true,
    });
    t.true(s.seconds > 0 && s.msgs_per_sec > 0 && s.mb_per_sec >= 0);
    const l = s.latency_ms!;
    t.true(l.p50 > 0 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max, JSON.stringify(l));
    t.is(r.stderr, '', 'no progress bar when stderr is not a terminal');
  },
);

test.serial(
  'bench send --json: every message confirmed, pulled and acked, so the destination is empty',
  async (t) => {
    const { port } = await startTestNode(t);
    const r = await bench(t, [
      'send',
      '--messages',
      '1500',
      '--destination',
      'bench.t2',
      '--json',
      ...at(port),
    ]);
    t.is(r.code, 0, r.stderr);
    t.like(summary(r), {
      mode: 'send',
      messages: 1500,
      completed: 1500,
      received: 1500,
      publishers: 1,
      subscribers: 1,
      latency: 'send-to-confirm',
      complete: true,
    });
    const c = await DurableClient.connect(port);
    t.teardown(() => c.close());
    const dests = await c.dests();
    t.true(
      dests.some((l) => l.startsWith('DEST bench.t2 depth=0 ') && l.includes('last_seq=1500')),
      dests.join('\n'),
    );
  },
);

test.serial(
  'bench send without subscribers leaves the messages stored; pubsub without them measures no latency',
  async (t) => {
    const { port } = await startTestNode(t);
    const send = await bench(t, [
      'send',
      '-n',
      '500',
      '--subscribers',
      '0',
      '-d',
      'bench.t3',
      '--json',
      ...at(port),
    ]);
    t.like(summary(send), { completed: 500, received: 0, complete: true });
    const c = await DurableClient.connect(port);
    t.teardown(() => c.close());
    t.true((await c.dests()).some((l) => l.startsWith('DEST bench.t3 depth=500 ')));
    const pub = await bench(t, ['pubsub', '-n', '500', '--subscribers', '0', '--json', ...at(port)]);
    t.like(summary(pub), { completed: 500, received: 0, latency_ms: null, complete: true });
  },
);

test.serial('bench prints a summary table without --json', async (t) => {
  const { port } = await startTestNode(t);
  const r = await bench(t, ['pubsub', '--messages', '1000', ...at(port)]);
  t.is(r.code, 0, r.stderr);
  for (const s of ['1000 of 1000 published', 'seconds', 'msgs/s', 'MB/s', 'p50', 'p90', 'p99', 'max']) {
    t.true(r.stdout.includes(s), s);
  }
});

test.serial('--duration caps a run: the summary says incomplete and the exit code is 3', async (t) => {
  const { port } = await startTestNode(t);
  const r = await bench(t, [
    'send',
    '-n',
    '10000000',
    '--duration',
    '1s',
    '--subscribers',
    '0',
    '--json',
    ...at(port),
  ]);
  t.is(r.code, 3, r.stderr);
  const s = summary(r);
  t.is(s.complete, false);
  // How many finished in 1 s depends on the machine's load (0 is possible): only the cap is asserted.
  t.true(s.completed < 10_000_000, String(s.completed));
  t.regex(r.stderr, /--duration 1000 ms reached/);
});

test.serial('bench bounds: too many messages, connections or bytes, an unknown mode: exit 2', async (t) => {
  const { port } = await startTestNode(t, { maxPayloadBytes: 1024 });
  const cases = [
    ['pubsub', '--messages', '10000001'],
    ['pubsub', '--messages', '0'],
    ['pubsub', '--publishers', '33'],
    ['send', '--subscribers', '33'],
    ['pubsub', '--size', '4'],
    ['pubsub', '--duration', '2h'],
    ['flood'],
    ['pubsub', '--size', '2048'], // over this node's max_payload: found once connected
  ];
  const runs = await cliEach(
    t,
    cases.map((args) => ['bench', ...args, ...at(port)]),
  );
  cases.forEach((args, i) => t.is(runs[i]!.code, 2, `${args.join(' ')}: ${runs[i]!.stderr}`));
  t.regex(runs[7]!.stderr, /^swarmmq: --size 2048 is over the node's max_payload of 1024 bytes\n$/);
});

test.serial('bench --help names its options and what it measures', async (t) => {
  const r = await bench(t, ['--help']);
  t.is(r.code, 0);
  for (const s of [
    'pubsub',
    'send',
    '--messages',
    '--size',
    '--publishers',
    '--subscribers',
    '--destination',
    '--duration',
    '--json',
    '--server',
    'p99',
    'Exit codes:',
  ]) {
    t.true(r.stdout.includes(s), s);
  }
});
