/**
 * `swarmmq status` (protocol/MONITORING.md section 9) as a real process
 * against a live 3-node cluster with known destinations: every member and
 * every destination with its owner, replicas, depth and group lag, in the
 * tables and in --json; a standalone node; one-line errors with exit code 1
 * for an unreachable monitor and 2 for bad usage. One cluster is shared by
 * the file's serial tests.
 */
import net from 'node:net';
import test from 'ava';
import { monitorAddress, StatusFailure } from '../../src/cli/status.js';
import { startCluster, type Cluster, type ClusterNode } from '../helpers/cluster.js';
import { DurableClient } from '../helpers/durable-client.js';
import { hookContext, monitorOf, nameOf, owners, type OwnerAnswer } from '../helpers/monitor.js';
import { runCli, type CliProcess } from '../helpers/process.js';
import { startTestNode, waitFor } from '../helpers/wire.js';

/** Destination -> messages sent to it. */
const DEPTHS = new Map([
  ['invoices', 4],
  ['emails', 2],
  ['reports', 1],
]);
const VIEW_DEADLINE_MS = 30_000;
/** In flight stays in flight however slow the machine: no redelivery at the default 5 s ack timeout. */
const LONG_ACK = ' ack_timeout=10m';

const hook = hookContext();
let cluster: Cluster;
let placed: Map<string, OwnerAnswer>;

test.before(async () => {
  cluster = await startCluster(hook.t, 3);
  const c = await DurableClient.connect(cluster.nodes[0]!.port);
  for (const [d, n] of DEPTHS) {
    await c.create(d);
    for (let i = 0; i < n; i++) {
      const r = await c.send(d, `m${i}`);
      if (!r.ok) throw new Error(`send to ${d} refused: ${r.error}`);
    }
  }
  // Group `billing` takes one invoice and keeps it in flight: lag 3 of 4.
  if ((await c.pull('invoices', 'billing', 1, '0', LONG_ACK)).length !== 1)
    throw new Error('no invoice pulled');
  await c.ping();
  c.close();
  placed = new Map(
    (await owners(hook.t, cluster.nodes[0]!.port, [...DEPTHS.keys()])).map((o, i) => [
      [...DEPTHS.keys()][i]!,
      o,
    ]),
  );
});

test.after.always(() => hook.cleanup());

const byId = (id: string): ClusterNode => cluster.nodes.find((n) => n.peerId === id)!;

async function status(
  t: Parameters<typeof runCli>[0],
  args: string[],
  env: Record<string, string> = {},
): Promise<CliProcess & { code: number | string }> {
  const p = runCli(t, ['status', ...args], env);
  const code = await p.exited;
  return Object.assign(p, { code });
}

/** The cells of each table row that starts with `first` (cli-table3 draws cells between │). */
function row(lines: string[], first: string): string[] | undefined {
  for (const l of lines) {
    const cells = l
      .split('│')
      .slice(1, -1)
      .map((c) => c.trim());
    if (cells[0] === first || cells[0] === `${first} *`) return cells;
  }
  return undefined;
}

test.serial(
  'the tables list every member and every destination with its owner, replicas, depth and lag',
  async (t) => {
    const node = cluster.nodes[1]!;
    // Until every member is ready and the owner reports the depth.
    const out = await waitFor(
      async () => {
        const p = await status(t, ['--monitor', monitorOf(node)]);
        if (p.code !== 0) throw new Error(`status exited ${p.code}: ${p.stderr}`);
        const d = row(p.stdout, 'invoices');
        const ready = cluster.nodes.every((n) => row(p.stdout, nameOf(n))?.[3] === 'ready');
        return ready && d !== undefined && d[3] === '4' ? p : undefined;
      },
      'status to show the depths',
      VIEW_DEADLINE_MS,
    );
    const lines = out!.stdout;
    t.regex(lines[0]!, new RegExp(`cluster ${cluster.name}: 3 members, replication factor 3`));
    for (const n of cluster.nodes) {
      const cells = row(lines, nameOf(n));
      t.truthy(cells, `member ${nameOf(n)} listed`);
      t.deepEqual(cells!.slice(1, 4), [n.peerId.slice(-8), `127.0.0.1:${n.port}`, 'ready']);
      t.regex(cells![4]!, /^\d+\.\d%$/);
    }
    t.truthy(row(lines, `${nameOf(node)}`)![0]!.endsWith('*'), 'the node asked is marked');
    for (const [d, depth] of DEPTHS) {
      const cells = row(lines, d)!;
      const p = placed.get(d)!;
      t.is(cells[1], nameOf(byId(p.owner)), `${d} owner`);
      t.deepEqual(
        cells[2]!.split(', ').sort(),
        p.replicas.map((id) => nameOf(byId(id))).sort(),
        `${d} replicas`,
      );
      t.is(cells[3], String(depth), `${d} depth`);
    }
    t.deepEqual(row(lines, 'invoices')!.slice(4), ['billing', '3']);
    t.deepEqual(row(lines, 'emails')!.slice(4), ['-', '-']);
  },
);

test.serial('--json (address from SWARMMQ_MONITOR_ADDRESS) holds the same data', async (t) => {
  const node = cluster.nodes[2]!;
  const p = await status(t, ['--json'], { SWARMMQ_MONITOR_ADDRESS: monitorOf(node) });
  t.is(p.code, 0, p.stderr);
  const r = JSON.parse(p.stdout.join('\n')) as {
    monitor: string;
    cluster: string;
    members: { peer_id: string; name: string; status: string; ring_share: number; self: boolean }[];
    destinations: {
      name: string;
      owner: string;
      replicas: string[];
      depth: number;
      groups: { name: string; lag: number; in_flight: number }[];
    }[];
  };
  t.is(r.monitor, monitorOf(node));
  t.is(r.cluster, cluster.name);
  t.deepEqual(r.members.map((m) => m.peer_id).sort(), cluster.nodes.map((n) => n.peerId).sort());
  t.deepEqual(
    r.members.filter((m) => m.self).map((m) => m.peer_id),
    [node.peerId],
  );
  t.true(Math.abs(r.members.reduce((s, m) => s + m.ring_share, 0) - 1) < 1e-5);
  for (const [d, depth] of DEPTHS) {
    const x = r.destinations.find((y) => y.name === d)!;
    t.deepEqual([x.owner, x.replicas], [placed.get(d)!.owner, placed.get(d)!.replicas], d);
    t.is(x.depth, depth, d);
  }
  t.deepEqual(r.destinations.find((y) => y.name === 'invoices')!.groups, [
    { name: 'billing', lag: 3, in_flight: 1, acked: 0 },
  ]);
});

test('a standalone node is its only member and owns its destinations', async (t) => {
  const { node, port } = await startTestNode(t);
  const c = await DurableClient.connect(port);
  t.teardown(() => c.close());
  await c.create('solo');
  t.true((await c.send('solo', 'x')).ok);
  const p = await status(t, ['--monitor', `127.0.0.1:${node.monitor!.port}`]);
  t.is(p.code, 0, p.stderr);
  t.regex(p.stdout[0]!, /standalone node/);
  t.deepEqual(row(p.stdout, node.server.name)!.slice(1, 4), ['-', `127.0.0.1:${port}`, 'standalone']);
  t.deepEqual(row(p.stdout, 'solo')!.slice(1, 4), [node.server.name, '-', '1']);
  // The client port by mistake: it speaks NATS, not HTTP.
  const wrong = await status(t, ['--monitor', `127.0.0.1:${port}`]);
  t.is(wrong.code, 1);
  t.regex(
    wrong.stderr,
    /^swarmmq: cannot reach monitor at 127\.0\.0\.1:\d+ \(.*is this a monitoring port\?\)\n$/,
  );
});

test('an unreachable monitor: one line and exit 1', async (t) => {
  // A port that was free a moment ago and has nothing listening now.
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  const p = await status(t, ['--monitor', `127.0.0.1:${port}`]);
  t.is(p.code, 1);
  t.is(p.stderr, `swarmmq: cannot reach monitor at 127.0.0.1:${port} (connection refused)\n`);
  t.deepEqual(p.stdout, []);
});

test('bad usage: exit 2', async (t) => {
  const bad = await status(t, ['--monitor', 'no-port-here']);
  t.is(bad.code, 2);
  t.is(bad.stderr, 'swarmmq: --monitor must be host:port, got "no-port-here"\n');
  t.is((await status(t, ['--bogus'])).code, 2);
});

test('the monitoring address: flag, then SWARMMQ_MONITOR_ADDRESS, then 127.0.0.1:8222', (t) => {
  t.is(monitorAddress(undefined, undefined), '127.0.0.1:8222');
  t.is(monitorAddress('10.0.0.5:9000', '127.0.0.1:1'), '10.0.0.5:9000');
  t.is(monitorAddress(undefined, 'node-a:8222'), 'node-a:8222');
  t.is(monitorAddress('http://[::1]:8222/', undefined), '[::1]:8222');
  for (const [flag, env] of [
    ['8222', undefined],
    [undefined, 'host:99999'],
    ['host:port', undefined],
  ] as const) {
    const err = t.throws(() => monitorAddress(flag, env), { instanceOf: StatusFailure });
    t.is(err?.exitCode, 2);
  }
});
