/**
 * Graceful stop and restart (protocol/OPERATIONS.md OPS1): a 5-node cluster
 * is rolled node by node with SIGTERM while a stock NATS client keeps
 * storing messages through whichever node it reaches. Every node must exit
 * 0 after handing its destinations over, come back on its data dir, and
 * rejoin; afterwards every confirmed message is pulled back, and
 * `swarmmq status` and every node's /metrics show the whole cluster again.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import test from 'ava';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { startCluster, waitForView, type ClusterNode } from '../helpers/cluster.js';
import { DurableClient, pullAll } from '../helpers/durable-client.js';
import { waitFor } from '../helpers/wire.js';
import { cliOnce } from '../helpers/cli-once.js';
import { monitorOf } from '../helpers/monitor.js';
import { scrape, value } from '../metrics/exposition.js';
import type { StatusReport } from '../../src/cli/status.js';

const DESTINATIONS = ['roll.a', 'roll.b', 'roll.c', 'roll.d'];
/** At most this many messages in all, so the load is bounded whatever happens. */
const MAX_MESSAGES = 20_000;
/** Requests in flight at once. */
const WORKERS = 8;
/** A message is tried this many times (same id: the store de-duplicates, D3.4) before the test fails. */
const MAX_ATTEMPTS = 30;
const REQUEST_TIMEOUT_MS = 10_000;
const RETRY_PAUSE_MS = 200;
/** Confirmations wanted between two steps of the roll: the cluster serves throughout. */
const PROGRESS_PER_STEP = 50;

const te = new TextEncoder();
const td = new TextDecoder();

/** A producer on every node's address and those the cluster announces (the stock client fails over by itself). */
class Producer {
  readonly confirmed = new Map<string, string>();
  readonly via = new Map<string, string>();
  readonly failures: string[] = [];
  /** The latest refusals and timeouts, for a failure message. */
  readonly recentErrors: string[] = [];
  private next = 0;
  private running = true;
  private readonly done: Promise<void[]>;

  constructor(
    private readonly nc: NatsConnection,
    private readonly tag: string,
  ) {
    this.done = Promise.all(Array.from({ length: WORKERS }, () => this.worker()));
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }

  private async worker(): Promise<void> {
    while (this.running && this.next < MAX_MESSAGES) {
      const n = this.next++;
      const id = `${this.tag}-${n}`;
      const dest = DESTINATIONS[n % DESTINATIONS.length]!;
      const h = headers();
      h.set('Nats-Msg-Id', id);
      let last = '';
      for (let attempt = 1; ; attempt++) {
        try {
          const r = await this.nc.request(dest, te.encode(id), { headers: h, timeout: REQUEST_TIMEOUT_MS });
          const ack = JSON.parse(td.decode(r.data)) as { seq?: number; error?: { description: string } };
          if (ack.seq !== undefined) {
            this.confirmed.set(id, dest);
            this.via.set(id, `${new Date().toISOString()} seq ${ack.seq} via port ${this.nc.info?.port}`);
            break;
          }
          last = ack.error?.description ?? 'no seq';
        } catch (err) {
          last = (err as Error).message;
        }
        this.recentErrors.push(`${new Date().toISOString()} ${id} attempt ${attempt}: ${last}`);
        if (this.recentErrors.length > 20) this.recentErrors.shift();
        if (!this.running) return; // stopped: never confirmed, and nobody counts on it
        if (attempt >= MAX_ATTEMPTS) {
          this.failures.push(`${id}: ${last}`);
          return;
        }
        await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
      }
    }
  }
}

function logLine(node: ClusterNode, msg: string): Record<string, unknown> | undefined {
  for (const l of node.proc.stdout) {
    if (!l.includes(`"${msg}"`)) continue;
    return JSON.parse(l) as Record<string, unknown>;
  }
  return undefined;
}

test('OPS1.3/OPS1.5 a 5-node cluster rolled node by node with SIGTERM under load loses nothing', async (t) => {
  t.timeout(240_000);
  const cluster = await startCluster(t, 5);
  const { nodes } = cluster;
  const admin = await DurableClient.connect(nodes[0]!.port, '127.0.0.1', 'admin');
  for (const d of DESTINATIONS) await admin.create(d);
  admin.close();

  const nc = await connect({
    servers: nodes.map((n) => `127.0.0.1:${n.port}`),
    name: 'rolling-producer',
    maxReconnectAttempts: -1,
    reconnectTimeWait: 100,
    // A restarted node listens on a new port (port 0): the client learns it from
    // INFO connect_urls, as it learns where to go from a leaving node's ldm INFO.
    ignoreClusterUpdates: false,
  });
  t.teardown(async () => {
    if (!nc.isClosed()) await nc.close();
  });
  const startedAt = Date.now();
  const oldLogs: string[][] = nodes.map(() => []);
  const producer = new Producer(nc, randomBytes(3).toString('hex'));
  try {
    for (const node of nodes) {
      const before = producer.confirmed.size;
      await node.kill('SIGTERM');
      const exit = await node.proc.exited;
      t.is(exit, 0, `node ${node.index} exit after SIGTERM: ${node.proc.stderr}`);
      const left = logLine(node, 'left the mesh');
      t.truthy(left, `node ${node.index} logged leaving the mesh`);
      const warnings = node.proc.stdout.filter((l) => /"level":(40|50)/.test(l)).slice(-5);
      t.log(
        `node ${node.index} left: ${JSON.stringify(left)}; ${JSON.stringify(logLine(node, 'node stopped'))}`,
      );
      if (warnings.length > 0) t.log(`node ${node.index} warnings: ${warnings.join('\n')}`);
      oldLogs[node.index]!.push(`--- incarnation ended; port was ${node.port}`, ...node.proc.stdout);
      await node.restart();
      await waitForView(nodes, nodes.length, 60_000);
      await waitFor(
        () => producer.confirmed.size >= before + PROGRESS_PER_STEP || producer.failures.length > 0,
        `the producer to make progress around node ${node.index}'s restart`,
        60_000,
      ).catch((err: unknown) => {
        const server = nc.info === undefined ? 'none' : `${nc.info.server_name} (${nc.info.port})`;
        throw new Error(
          `${(err as Error).message}; connected to ${server}; latest errors:\n${producer.recentErrors.join('\n')}`,
        );
      });
      t.deepEqual(producer.failures, []);
      t.log(`node ${node.index} back at ${Date.now() - startedAt} ms; ${producer.confirmed.size} confirmed`);
    }
  } finally {
    await producer.stop();
  }
  t.deepEqual(producer.failures, []);
  t.log(
    `${producer.confirmed.size} messages confirmed during the roll; draining at ${Date.now() - startedAt} ms`,
  );

  const reader = await DurableClient.connect(nodes[2]!.port, '127.0.0.1', 'reader');
  t.teardown(() => reader.close());
  const seen = new Map<string, number>();
  let redelivered = 0;
  for (const d of DESTINATIONS) {
    for (const m of await pullAll(reader, d, 'audit', { ack: true })) {
      seen.set(m.id, (seen.get(m.id) ?? 0) + 1);
      if (m.deliveries > 1) redelivered++;
    }
  }
  const missing = [...producer.confirmed.keys()].filter((id) => !seen.has(id));
  if (missing.length > 0) {
    mkdirSync('/tmp/roll-logs', { recursive: true });
    for (const node of nodes) {
      writeFileSync(
        `/tmp/roll-logs/node${node.index}.log`,
        [...oldLogs[node.index]!, `--- now port ${node.port}`, ...node.proc.stdout].join('\n'),
      );
    }
    writeFileSync(
      '/tmp/roll-logs/missing.txt',
      missing.map((id) => `${id} ${producer.confirmed.get(id)} ${producer.via.get(id)}`).join('\n'),
    );
  }
  t.deepEqual(missing.slice(0, 20), [], `${missing.length} confirmed messages missing`);
  const duplicates = [...seen.values()].filter((n) => n > 1).length;
  // At-least-once (MESH.md M5.3): a merge may keep two copies of one id, and an ack may be redelivered.
  t.log(
    `${seen.size} distinct messages pulled back; ${duplicates} ids came twice; ${redelivered} redeliveries`,
  );

  // What an operator sees after the roll: swarmmq status from one node, and every node's /metrics.
  const status = await cliOnce(t, ['status', '--json', '--monitor', monitorOf(nodes[3]!)]);
  t.is(status.code, 0, status.stderr);
  const report = JSON.parse(status.stdout) as StatusReport;
  t.is(report.members.length, nodes.length);
  t.true(
    report.members.every((m) => m.status === 'ready'),
    JSON.stringify(report.members),
  );
  for (const d of DESTINATIONS) {
    const row = report.destinations.find((x) => x.name === d);
    t.truthy(row?.owner, `${d} has an owner`);
    t.is(row?.depth, 0, `${d} drained`);
  }
  let shares = 0;
  for (const node of nodes) {
    const metrics = await scrape(Number(monitorOf(node).split(':').at(-1)));
    t.is(value(metrics, 'swarmmq_mesh_members'), nodes.length);
    shares += value(metrics, 'swarmmq_mesh_ring_share_ratio') ?? 0;
  }
  t.true(Math.abs(shares - 1) < 1e-6, `ring shares sum to ${shares}`);
});
