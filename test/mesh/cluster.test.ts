/**
 * Clusters of real `swarmmq start` processes on one host (protocol/MESH.md;
 * durable verbs of protocol/DURABLE.md sections 3-4): forming with no static
 * config, OWNER agreement, durable calls forwarded to the owner, core
 * pub/sub and queue groups across nodes with the stock NATS client, kill -9
 * of an owner under confirmed sends, and a node joining under load. Each
 * test is serial (several node processes on a 2-core machine) and bounded
 * in count and time; every wait polls with a deadline.
 */
import test, { type ExecutionContext } from 'ava';
import type { NatsConnection } from '@nats-io/transport-node';
import { owners, type OwnerAnswer } from '../helpers/monitor.js';
import { natsClient, startCluster, waitForView, type ClusterNode } from '../helpers/cluster.js';
import { DurableClient, type Delivery } from '../helpers/durable-client.js';
import { RawClient, waitFor } from '../helpers/wire.js';

const te = new TextEncoder();
const td = new TextDecoder();

/** INFO lines the node re-sends on membership changes (CLIENT.md), skipped before an answer. */
const INFOS = '(?:INFO [^\\r\\n]*\\r\\n)*';

async function ownerOf(t: ExecutionContext, node: ClusterNode, dest: string): Promise<OwnerAnswer> {
  return (await owners(t, node.port, [dest]))[0]!;
}

async function durable(t: ExecutionContext, node: ClusterNode): Promise<DurableClient> {
  const c = await DurableClient.connect(node.port);
  t.teardown(() => c.close());
  return c;
}

/** ACKs through a verbose raw connection and waits for one `+OK` per handle (D4.9). */
async function ackConfirmed(t: ExecutionContext, node: ClusterNode, handles: string[]): Promise<void> {
  const [c] = await RawClient.open(t, node.port);
  c.send('CONNECT {"verbose":true,"pedantic":false,"headers":true}\r\n');
  await c.expect(new RegExp(`^${INFOS}\\+OK\\r\\n`));
  c.send(handles.map((h) => `ACK ${h}\r\n`).join(''));
  for (let i = 0; i < handles.length; i++) {
    await c.expect(new RegExp(`^${INFOS}\\+OK\\r\\n`), 20_000).catch((err: Error) => {
      throw new Error(`ACK ${i + 1} of ${handles.length} not confirmed: ${err.message}`);
    });
  }
  c.socket.destroy();
}

/** The `DEST <name> ...` line from DESTS through `c`, if listed. */
async function destLine(c: DurableClient, dest: string): Promise<string | undefined> {
  return (await c.dests(20_000)).find((l) => l.startsWith(`DEST ${dest} `));
}

/**
 * Pulls (and acks) until `emptyInARow` pulls in a row come back empty, within
 * a deadline. A refused pull (-ERR, e.g. during a failover) is recorded and
 * retried.
 */
async function drain(
  c: DurableClient,
  dest: string,
  group: string,
  opts: { emptyInARow?: number; timeoutMs?: number; expect?: Iterable<string> } = {},
): Promise<{ msgs: Delivery[]; refused: string[] }> {
  const msgs: Delivery[] = [];
  const refused: string[] = [];
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  // Ids that must come: a hand-back merge may bring some after a few empty pulls (M7.2),
  // so emptiness alone does not end the drain while any is missing; the deadline does.
  const missing = new Set(opts.expect ?? []);
  let empty = 0;
  while (empty < (opts.emptyInARow ?? 3) || (missing.size > 0 && Date.now() <= deadline)) {
    if (Date.now() > deadline) throw new Error(`drain of ${dest}: still not empty; ${msgs.length} pulled`);
    let got: Delivery[];
    try {
      got = await c.pull(dest, group, 1000, '1000');
    } catch (err) {
      refused.push((err as Error).message);
      await new Promise((r) => setTimeout(r, 200)); // pace retries of a refused pull
      continue;
    }
    empty = got.length === 0 ? empty + 1 : 0;
    for (const m of got) missing.delete(m.id);
    msgs.push(...got);
    c.ack(...got.map((m) => m.handle));
  }
  return { msgs, refused };
}

/**
 * A steady stream of confirmed sends with ids `m0`, `m1`, ...: up to
 * `concurrency` outstanding on one connection; a refused send is recorded and
 * its id sent again later (D3.4 de-duplicates it).
 */
class SendStream {
  /** id -> when its +STORED came (performance.now()). */
  readonly confirmed = new Map<string, number>();
  /** Every confirmation: when its send was written and when it was answered. */
  readonly answers: { issuedAt: number; at: number }[] = [];
  readonly refusals: { id: string; at: number; text: string }[] = [];
  private nextId = 0;
  private readonly retry: string[] = [];
  private stopping = false;

  constructor(
    private readonly c: DurableClient,
    readonly dest: string,
    private readonly maxIds: number,
    private readonly concurrency = 32,
  ) {}

  /** Resolves once every id has been issued and answered, or after stop(). */
  run(): Promise<void> {
    return Promise.all(Array.from({ length: this.concurrency }, () => this.worker())).then(() => undefined);
  }

  stop(): void {
    this.stopping = true;
  }

  /** ms from `sinceMs` to the first confirmation of a send written at or after it. */
  firstConfirmedAfter(sinceMs: number): number | undefined {
    const a = this.answers.find((x) => x.issuedAt >= sinceMs);
    return a === undefined ? undefined : a.at - sinceMs;
  }

  /** Ids sent but never confirmed. */
  unconfirmed(): string[] {
    return this.retry.filter((id) => !this.confirmed.has(id));
  }

  private async worker(): Promise<void> {
    while (!this.stopping) {
      const id = this.retry.shift() ?? (this.nextId < this.maxIds ? `m${this.nextId++}` : undefined);
      if (id === undefined) return;
      const issuedAt = performance.now();
      const r = await this.c.send(this.dest, `payload-${id}`, { id });
      const at = performance.now();
      if (r.ok) {
        if (!this.confirmed.has(id)) this.confirmed.set(id, at);
        this.answers.push({ issuedAt, at });
      } else {
        this.refusals.push({ id, at, text: r.error ?? '' });
        this.retry.push(id);
        await new Promise((res) => setTimeout(res, 100)); // pace retries while the cluster fails over
      }
    }
  }
}

/** Groups error texts with their counts, for the log. */
function tally(texts: string[]): string {
  const m = new Map<string, number>();
  for (const s of texts) m.set(s, (m.get(s) ?? 0) + 1);
  return [...m].map(([s, n]) => `${n} x ${s}`).join('; ') || 'none';
}

/** Checks every confirmed id was delivered; returns the number of duplicate deliveries. */
function assertDelivered(t: ExecutionContext, confirmed: Iterable<string>, msgs: Delivery[]): number {
  const delivered = new Set(msgs.map((m) => m.id));
  const missing = [...confirmed].filter((id) => !delivered.has(id));
  t.deepEqual(missing.slice(0, 20), [], `${missing.length} confirmed ids never delivered`);
  return msgs.length - delivered.size;
}

/** Log time (epoch ms) of the node's first view of `members` members logged at or after `sinceMs`. */
function firstViewAfter(node: ClusterNode, members: number, sinceMs: number): number {
  for (const l of node.proc.stdout) {
    if (!l.includes('"cluster view changed"')) continue;
    const j = JSON.parse(l) as { members: number; time: number };
    if (j.members === members && j.time >= sinceMs) return j.time;
  }
  return Number.NaN;
}

test.serial('five nodes form one cluster with no static config and agree on owners', async (t) => {
  t.timeout(120_000);
  const cluster = await startCluster(t, 5);
  t.log(`5 nodes: complete view on every node ${cluster.formedInMs} ms after the last spawn`);
  const ids = new Set(cluster.nodes.map((n) => n.peerId));
  t.is(ids.size, 5);

  const dests = Array.from({ length: 20 }, (_, i) => `d${i}`);
  const answers = await Promise.all(cluster.nodes.map((n) => owners(t, n.port, dests)));
  const distinctOwners = new Set<string>();
  for (let d = 0; d < dests.length; d++) {
    const first = answers[0]![d]!;
    for (let n = 1; n < answers.length; n++) {
      t.deepEqual(answers[n]![d], first, `node${n} disagrees with node0 on the owner of ${dests[d]}`);
    }
    for (let n = 0; n < answers.length; n++) {
      const a = answers[n]![d]!;
      t.true(ids.has(a.owner), `node${n} names ${a.owner} as owner of ${dests[d]}, not a member`);
      t.is(a.replicas.length, 2, `replication factor 3: ${dests[d]} on node${n}`);
      for (const r of a.replicas) t.true(ids.has(r) && r !== a.owner, `replica ${r} of ${dests[d]}`);
    }
    const owner = cluster.nodes.find((n) => n.peerId === first.owner);
    t.is(first.client, `127.0.0.1:${owner?.port}`, `owner client address of ${dests[d]}`);
    distinctOwners.add(first.owner);
  }
  t.log(`20 destinations spread over ${distinctOwners.size} owners`);
  t.true(distinctOwners.size > 1);
});

test.serial('send through any node, pull through another, ack through a third', async (t) => {
  t.timeout(120_000);
  const { nodes } = await startCluster(t, 4);
  const { owner } = await ownerOf(t, nodes[0]!, 'orders');
  const others = nodes.filter((n) => n.peerId !== owner);
  const [a, b, c] = others as [ClusterNode, ClusterNode, ClusterNode];

  const sender = await durable(t, a);
  const payloads = Array.from({ length: 50 }, (_, i) => `order-${i}-${'x'.repeat(i)}`);
  const replies = await Promise.all(payloads.map((p, i) => sender.send('orders', p, { id: `o${i}` })));
  t.deepEqual(
    replies.filter((r) => !r.ok).map((r) => r.error),
    [],
    'every SEND through a non-owner is stored',
  );

  const puller = await durable(t, b);
  const got: Delivery[] = [];
  const deadline = Date.now() + 60_000;
  while (got.length < 50 && Date.now() < deadline)
    got.push(...(await puller.pull('orders', 'g1', 100, '2000')));
  t.deepEqual(got.map((m) => m.payload.toString()).sort(), [...payloads].sort(), 'all 50, each once');

  await ackConfirmed(
    t,
    c,
    got.map((m) => m.handle),
  );
  t.deepEqual(await puller.pull('orders', 'g1', 100, '2000'), [], '+PULLED orders 0 after the acks');

  const line = await destLine(sender, 'orders');
  t.regex(line ?? 'not listed', /^DEST orders depth=0 /, `DESTS: ${line}`);
});

test.serial('core pub/sub, queue groups and request/reply across nodes (stock NATS client)', async (t) => {
  t.timeout(120_000);
  const { nodes } = await startCluster(t, 3);
  const [na, nb, nc] = (await Promise.all(nodes.map((n) => natsClient(t, n)))) as [
    NatsConnection,
    NatsConnection,
    NatsConnection,
  ];

  // Subscriber on B, publisher on A: every message, in order.
  const seen: string[] = [];
  let probed = false;
  nb.subscribe('foo.>', {
    callback: (_e, m) => {
      if (m.subject === 'foo.probe') probed = true;
      else seen.push(td.decode(m.data));
    },
  });
  await nb.flush();
  await waitFor(
    () => {
      na.publish('foo.probe');
      return probed;
    },
    'interest in foo.> to reach node A',
    30_000,
  );
  const sent = Array.from({ length: 100 }, (_, i) => `m${i}`);
  for (const s of sent) na.publish('foo.data', te.encode(s));
  await na.flush();
  await waitFor(() => seen.length >= 100, '100 messages at node B', 30_000);
  t.deepEqual(seen, sent, 'all 100 at B, in order');

  // A queue group with members on A, B and C: each message once in total.
  const byNode: string[][] = [[], [], []];
  const probes = new Set<string>();
  for (const [i, conn] of [na, nb, nc].entries()) {
    conn.subscribe('jobs', {
      queue: 'workers',
      callback: (_e, m) => void byNode[i]!.push(td.decode(m.data)),
    });
    conn.subscribe(`probe.${i}`, { callback: () => void probes.add(`probe.${i}`) });
    await conn.flush();
  }
  await waitFor(
    () => {
      for (const i of [1, 2]) na.publish(`probe.${i}`);
      return probes.has('probe.1') && probes.has('probe.2');
    },
    'interest of B and C to reach node A',
    30_000,
  );
  for (let i = 0; i < 300; i++) na.publish('jobs', te.encode(`job-${i}`));
  await na.flush();
  const total = (): number => byNode.reduce((s, l) => s + l.length, 0);
  await waitFor(() => total() >= 300, '300 jobs received', 30_000);
  // A barrier: anything still in flight from A to B and C arrives before these probes.
  probes.clear();
  await waitFor(
    () => {
      for (const i of [1, 2]) na.publish(`probe.${i}`);
      return probes.has('probe.1') && probes.has('probe.2');
    },
    'the barrier probes',
    30_000,
  );
  t.log(`queue group split: A ${byNode[0]!.length}, B ${byNode[1]!.length}, C ${byNode[2]!.length}`);
  const all = byNode.flat();
  t.is(all.length, 300, 'no duplicates, nothing lost');
  t.is(new Set(all).size, 300);
  t.true(byNode.filter((l) => l.length > 0).length > 1, 'more than one node got some');

  // Request/reply: a responder on C, requests from A.
  nc.subscribe('svc.echo', { callback: (_e, m) => void m.respond(m.data) });
  await nc.flush();
  await waitFor(
    async () => {
      try {
        await na.request('svc.echo', te.encode('ping'), { timeout: 1000 });
        return true;
      } catch {
        return false;
      }
    },
    'the responder on C to be reachable from A',
    30_000,
  );
  for (let i = 0; i < 10; i++) {
    const r = await na.request('svc.echo', te.encode(`q${i}`), { timeout: 5000 });
    t.is(td.decode(r.data), `q${i}`);
  }
});

test.serial('kill -9 of the owner under a steady stream of confirmed sends', async (t) => {
  t.timeout(240_000);
  const cluster = await startCluster(t, 5);
  const { nodes } = cluster;
  const before = await ownerOf(t, nodes[0]!, 'stream1');
  const owner = nodes.find((n) => n.peerId === before.owner)!;
  // Prefer a node that holds no copy, so every send is forwarded.
  const holders = new Set([before.owner, ...before.replicas]);
  const entry = nodes.find((n) => !holders.has(n.peerId)) ?? nodes.find((n) => n !== owner)!;
  t.log(
    `owner node${owner.index}; client on node${entry.index} (${holders.has(entry.peerId) ? 'a replica' : 'no copy'})`,
  );

  const client = await durable(t, entry);
  const stream = new SendStream(client, 'stream1', 3000);
  const running = stream.run();
  running.catch(() => undefined); // awaited below; a test that fails first must not leave it unhandled
  const bound = setTimeout(() => stream.stop(), 60_000);
  t.teardown(() => {
    clearTimeout(bound);
    stream.stop();
  });

  await waitFor(() => stream.confirmed.size >= 500, '500 confirmed sends before the kill', 60_000);
  const confirmedAtKill = stream.confirmed.size;
  const killAt = performance.now();
  const killAtEpochMs = Date.now();
  await owner.kill('SIGKILL');
  t.log(`killed the owner (SIGKILL) after ${confirmedAtKill} confirmed sends`);

  await running;
  clearTimeout(bound);
  const servedAgainMs = stream.firstConfirmedAfter(killAt);
  t.log(
    `served again ${servedAgainMs?.toFixed(0) ?? 'NEVER'} ms after the kill; ` +
      `${stream.confirmed.size} ids confirmed, ${stream.refusals.length} refusals (${tally(stream.refusals.map((r) => r.text))}), ` +
      `${stream.unconfirmed().length} ids never confirmed`,
  );
  t.truthy(servedAgainMs, 'a send written after the kill was confirmed');
  t.true(stream.confirmed.size > confirmedAtKill, 'sends were confirmed after the kill');

  const survivors = nodes.filter((n) => n !== owner);
  await waitForView(survivors, 4, 30_000);
  const droppedAt = survivors.map((n) => firstViewAfter(n, 4, killAtEpochMs) - killAtEpochMs);
  t.log(
    `survivors dropped the dead owner from their view ${Math.min(...droppedAt)}-${Math.max(...droppedAt)} ms after the kill`,
  );
  const after = await Promise.all(survivors.map((n) => ownerOf(t, n, 'stream1')));
  for (const [i, a] of after.entries()) {
    t.deepEqual(a, after[0], `survivor node${survivors[i]!.index} agrees on the owner`);
    t.true(
      survivors.some((n) => n.peerId === a.owner),
      'the owner is a surviving node',
    );
    t.false(a.replicas.includes(owner.peerId), 'the dead node holds no replica');
  }

  const reader = await durable(t, survivors.find((n) => n !== entry) ?? entry);
  const { msgs, refused } = await drain(reader, 'stream1', 'g1', {
    timeoutMs: 90_000,
    expect: stream.confirmed.keys(),
  });
  const dups = assertDelivered(t, stream.confirmed.keys(), msgs);
  t.log(
    `drained ${msgs.length} deliveries (${dups} duplicates) for ${stream.confirmed.size} confirmed ids; refused pulls: ${tally(refused)}`,
  );
});

/** Sends of the join test's stream: bounded, and enough to outlast a slow join on a loaded machine. */
const JOIN_STREAM_MSGS = 6000;

test.serial('a sixth node joins under load', async (t) => {
  t.timeout(240_000);
  const cluster = await startCluster(t, 5);
  const { nodes } = cluster;
  const c0 = await durable(t, nodes[0]!);

  // Acked before the join: must never come back.
  const replies = await Promise.all(
    Array.from({ length: 100 }, (_, i) => c0.send('join2', `j2-${i}`, { id: `j2-${i}` })),
  );
  t.true(
    replies.every((r) => r.ok),
    'join2: 100 stored',
  );
  const pulled: Delivery[] = [];
  const deadline = Date.now() + 30_000;
  while (pulled.length < 100 && Date.now() < deadline)
    pulled.push(...(await c0.pull('join2', 'g1', 100, '2000')));
  t.is(pulled.length, 100, 'join2: 100 pulled');
  await ackConfirmed(
    t,
    nodes[1]!,
    pulled.map((m) => m.handle),
  );
  await waitFor(
    async () => /^DEST join2 depth=0 /.test((await destLine(c0, 'join2')) ?? ''),
    'join2 depth=0 in DESTS',
    20_000,
  );
  const join2Before = await ownerOf(t, nodes[0]!, 'join2');

  // join1: confirmed sends before, during and after the join.
  const sender = await durable(t, nodes[2]!);
  const stream = new SendStream(sender, 'join1', JOIN_STREAM_MSGS);
  const running = stream.run();
  running.catch(() => undefined); // awaited below; a test that fails first must not leave it unhandled
  const bound = setTimeout(() => stream.stop(), 90_000);
  t.teardown(() => {
    clearTimeout(bound);
    stream.stop();
  });
  await waitFor(() => stream.confirmed.size >= 300, '300 confirmed sends before the join', 60_000);
  const addAt = performance.now();
  const sixth = await cluster.add();
  await waitForView(nodes, 6, 60_000);
  const atView = stream.confirmed.size;
  t.log(`the sixth node was in every view ${(performance.now() - addAt).toFixed(0)} ms after its spawn`);
  // 500 more, or all of them when the stream was near its end by the time the view was complete.
  const target = Math.min(atView + 500, JOIN_STREAM_MSGS);
  await waitFor(
    () => stream.confirmed.size >= target,
    `${target - atView} more confirmed sends after the join`,
    60_000,
  );
  stream.stop();
  await running;
  clearTimeout(bound);
  t.log(
    `join1: ${stream.confirmed.size} confirmed, ${stream.refusals.length} refusals (${tally(stream.refusals.map((r) => r.text))})`,
  );

  const join1Owner = await ownerOf(t, nodes[3]!, 'join1');
  const reader = await durable(t, nodes[3]!);
  const { msgs, refused } = await drain(reader, 'join1', 'g1', {
    timeoutMs: 90_000,
    expect: stream.confirmed.keys(),
  });
  const dups = assertDelivered(t, stream.confirmed.keys(), msgs);
  t.log(
    `join1 owner ${join1Owner.owner === sixth.peerId ? 'is the new node' : 'unchanged by the join'}; ` +
      `drained ${msgs.length} (${dups} duplicates); refused pulls: ${tally(refused)}`,
  );

  const join2After = await ownerOf(t, sixth, 'join2');
  t.log(
    `join2 owner ${join2After.owner === join2Before.owner ? 'unchanged' : 'moved'}; ` +
      `new node ${[join2After.owner, ...join2After.replicas].includes(sixth.peerId) ? 'holds' : 'does not hold'} a copy`,
  );
  const again = await reader.pull('join2', 'g1', 100, '2000');
  t.deepEqual(
    again.map((m) => m.id),
    [],
    'messages acked before the join are not delivered again',
  );
});
