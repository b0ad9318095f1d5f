/**
 * The SDK's promise, against a real 5-node cluster of processes: a producer
 * and a consumer written only against the SDK go on while the owner of
 * their destination is killed (SIGKILL) or frozen (SIGSTOP). The
 * application handles no error, every confirmed message is consumed, and
 * the store holds each id once (the SDK retried with the same id,
 * DURABLE.md D3.4).
 */
import test, { type ExecutionContext } from 'ava';
import { connect, type ConsumedMessage, type SwarmClient } from '../../src/index.js';
import { startCluster, waitForView, type Cluster, type ClusterNode } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wire.js';

/** Sends the producer keeps in flight (its own window; the SDK's is larger). */
const PRODUCER_WINDOW = 32;

interface Outcome {
  confirmed: Set<string>;
  consumed: Map<string, number>;
  stored: Map<string, number>;
  retries: number;
  reconnects: number;
}

/** The owner of `dest` as the SDK computes it from one seed's view. */
async function ownerNode(cluster: Cluster, dest: string): Promise<ClusterNode> {
  const probe = await connect({ servers: [`127.0.0.1:${cluster.nodes[0]!.port}`] });
  try {
    await waitFor(() => probe.view?.members.length === cluster.nodes.length, 'the full view in the SDK');
    const id = probe.ownerOf(dest)!.id;
    return cluster.nodes.find((n) => n.peerId === id)!;
  } finally {
    await probe.close();
  }
}

/**
 * Runs the application (a producer of `messages` sends and a consumer that acks), calls `fail`
 * after `failAfter` confirmed sends, and afterwards reads every stored copy through an audit group.
 */
async function scenario(
  t: ExecutionContext,
  cluster: Cluster,
  owner: ClusterNode,
  dest: string,
  messages: number,
  failAfter: number,
  fail: () => Promise<void>,
): Promise<Outcome> {
  // One seed, the owner: the SDK learns the other nodes from it (CLIENT.md C2.9) and must leave it.
  const client: SwarmClient = await connect({ servers: [`127.0.0.1:${owner.port}`], name: 'failover-app' });
  t.teardown(() => client.close());
  await waitFor(() => client.view?.members.length === cluster.nodes.length, 'the full view');
  let retries = 0;
  let reconnects = 0;
  client.on('retry', () => retries++);
  client.on('connect', (e) => e.reconnected && reconnects++);

  // An audit group that never settles keeps every stored copy for the check at the end (D2.2).
  await client.send(dest, 'start', { id: 'start' });
  for await (const m of client.consume(dest, { group: 'audit', batch: 1, waitMs: 0, autoExtendMs: 0 })) {
    m.nak();
    break;
  }

  // --- the application: no try/catch, no retry code of its own ---
  const confirmed = new Set<string>();
  const consumed = new Map<string, number>();
  const consumer = client.consume(dest, { group: 'app', batch: 50, maxInFlight: 200, ackTimeoutMs: 3000 });
  const consuming = (async () => {
    for await (const m of consumer) {
      consumed.set(m.id, (consumed.get(m.id) ?? 0) + 1);
      m.ack();
    }
  })();
  let failed: Promise<void> | undefined;
  for (let next = 0; next < messages;) {
    const batch: Promise<unknown>[] = [];
    for (let i = 0; i < PRODUCER_WINDOW && next < messages; i++, next++) {
      const id = `m-${next}`;
      batch.push(client.send(dest, `payload ${next}`, { id }).then(() => confirmed.add(id)));
    }
    await Promise.all(batch);
    if (failed === undefined && next >= failAfter) failed = fail();
  }
  // --- end of the application ---

  await failed;
  await waitFor(
    () => [...confirmed].every((id) => consumed.has(id)),
    'every confirmed message consumed',
    60_000,
  );
  await consumer.stop();
  await consuming;

  // The store: every stored copy goes to the audit group exactly once.
  const stored = new Map<string, number>();
  const check = client.consume(dest, {
    group: 'audit',
    batch: 500,
    maxInFlight: 10 * messages,
    waitMs: 1000,
    autoExtendMs: 0,
    ackTimeoutMs: 60_000,
  });
  const it = check[Symbol.asyncIterator]();
  let idleSince = Date.now();
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const r = await Promise.race([
      it.next(),
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 1500)),
    ]);
    if (r === undefined) {
      if (stored.size >= messages + 1 && Date.now() - idleSince > 1500) break;
      continue;
    }
    if (r.done === true) break;
    const m: ConsumedMessage = r.value;
    idleSince = Date.now();
    stored.set(m.id, (stored.get(m.id) ?? 0) + 1);
  }
  await check.stop();
  t.not(client.ownerOf(dest)?.id, owner.peerId, 'the SDK routes to the new owner');
  return { confirmed, consumed, stored, retries, reconnects };
}

function checkOutcome(t: ExecutionContext, o: Outcome, messages: number): void {
  t.is(o.confirmed.size, messages, 'every send resolved');
  t.deepEqual(
    [...o.stored].filter(([, n]) => n > 1).map(([id]) => id),
    [],
    'no id is stored twice',
  );
  t.deepEqual(
    [...o.confirmed].filter((id) => !o.stored.has(id)),
    [],
    'no confirmed message is missing from the store',
  );
  t.is(o.stored.size, messages + 1);
  const redelivered = [...o.consumed.values()].filter((n) => n > 1).length;
  t.log(`retried calls: ${o.retries}; home reconnects: ${o.reconnects}`);
  t.log(`consumed ${o.consumed.size} ids, ${redelivered} of them more than once (at-least-once, M5.3)`);
}

test.serial(
  'producer and consumer through the SDK ride out a SIGKILL of their owner: nothing lost, nothing stored twice',
  async (t) => {
    const cluster = await startCluster(t, 5);
    const dest = 'sdk.killed';
    const owner = await ownerNode(cluster, dest);
    const messages = 1500;
    const o = await scenario(t, cluster, owner, dest, messages, 500, async () => {
      await owner.kill('SIGKILL');
      await waitForView(
        cluster.nodes.filter((n) => n !== owner),
        4,
        30_000,
      );
    });
    checkOutcome(t, o, messages);
    t.true(o.reconnects >= 1, 'the home connection moved off the dead node');
  },
);

test.serial(
  'a frozen owner (SIGSTOP): its connections go silent, the SDK drops them and goes on with the new owner',
  async (t) => {
    const cluster = await startCluster(t, 5);
    const dest = 'sdk.frozen';
    const owner = await ownerNode(cluster, dest);
    t.teardown(() => {
      owner.proc.child.kill('SIGCONT');
    });
    const messages = 600;
    const o = await scenario(t, cluster, owner, dest, messages, 200, async () => {
      owner.proc.child.kill('SIGSTOP');
      // M2.3: the others drop a silent member after 3.5 s.
      await waitForView(
        cluster.nodes.filter((n) => n !== owner),
        4,
        30_000,
      );
    });
    checkOutcome(t, o, messages);
    t.true(o.reconnects >= 1, 'the keepalive dropped the frozen home node');
  },
);

test.serial(
  'an owner that stops gracefully (SIGTERM): the SDK moves off it on `ldm` and follows the hand-over (OPS1)',
  async (t) => {
    const cluster = await startCluster(t, 5);
    const dest = 'sdk.leaving';
    const owner = await ownerNode(cluster, dest);
    const messages = 600;
    const o = await scenario(t, cluster, owner, dest, messages, 200, async () => {
      await owner.kill('SIGTERM');
      t.is(owner.proc.child.exitCode, 0, 'the owner left cleanly');
      await waitForView(
        cluster.nodes.filter((n) => n !== owner),
        4,
        30_000,
      );
    });
    checkOutcome(t, o, messages);
    t.true(o.reconnects >= 1, 'the home connection moved off the leaving node');
  },
);
