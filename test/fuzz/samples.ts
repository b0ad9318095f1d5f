/**
 * Valid mesh messages as the protocols build them: each service runs its
 * sending side once against fake links (fakes.ts) and the heads and data it
 * sends, and the answers the other side's handlers build, are recorded. The
 * fuzzers mutate these.
 */
import { Router, Subscription, type Deliverer } from '../../src/server/router.js';
import { DURABLE_PROTOCOL, DurableRouting } from '../../src/mesh/durable-routing.js';
import { HANDOFF_PROTOCOL, Handoff } from '../../src/mesh/handoff.js';
import type { MemberInfo } from '../../src/mesh/membership.js';
import { REPLICA_PROTOCOL, Replicator } from '../../src/mesh/replication.js';
import { ROUTE_PROTOCOL, Routes } from '../../src/mesh/routes.js';
import type { Answer } from '../../src/mesh/channel.js';
import {
  ContractEngine,
  FakeChannel,
  fakeLinks,
  onWire,
  sampleMessage,
  sampleSettings,
  silentLog,
  ownerRouting,
  type Sample,
} from './fakes.js';

/** Two peer ids (Ed25519, as libp2p prints them). */
export const SELF = '12D3KooWPGvGJb7yWzGWf2J6eLDsPqxhfS3Ft5zFcZYche3Q6CTb';
export const PEER = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA';

export interface Exchange {
  request: Sample;
  answer: Answer;
}

export interface Samples {
  /** Events on the route protocol (M6, M3.4, M2.2). */
  route: Sample[];
  /** Forwarded calls (M4.5) with the owner's answers. */
  durable: Exchange[];
  /** Messages (requests) and changes (events) to replicas (M5). */
  replica: Sample[];
  /** Hand-off requests (M7) with the peer's answers. */
  handoff: Exchange[];
  heartbeat: MemberInfo;
}

export function heartbeat(id = PEER): MemberInfo {
  return {
    id,
    cluster: 'swarmmq',
    name: 'node-b',
    client: '127.0.0.1:4223',
    mesh: [`/ip4/127.0.0.1/tcp/6223/p2p/${id}`],
    version: '0.1.0',
    status: 'ready',
    startedAtMs: 1_700_000_000_000,
    load: { connections: 3, destinations: 2, rssBytes: 100_000_000 },
  };
}

async function routeSamples(): Promise<Sample[]> {
  const ch = new FakeChannel();
  const { links, handlers } = fakeLinks(() => ch);
  const router = new Router(0);
  const local: Deliverer = { closed: false, echo: true, deliver: () => undefined };
  router.add(new Subscription(local, 'orders.>', undefined, '1'));
  router.add(new Subscription(local, 'jobs.*', 'workers', '2'));
  const routes = new Routes(
    {
      router,
      links,
      selfId: SELF,
      localDestinations: () => ['orders', 'orders.DLQ'],
      onHeartbeat: () => undefined,
      onDestinations: () => undefined,
    },
    silentLog,
  );
  await routes.start();
  await routes.peerUp(PEER);
  const late = new Subscription(local, 'late.>', 'q1', '3');
  router.add(late);
  router.remove(late);
  // The peer's interest, so that publishes here are forwarded to it.
  handlers.get(ROUTE_PROTOCOL)!(PEER).event!(
    'interest',
    { subs: [{ subject: '>' }, { subject: 'work', queue: 'grp' }] },
    Buffer.alloc(0),
  );
  router.publish(null, 'orders.eu', 'reply.1', Buffer.from('NATS/1.0\r\nK: v\r\n\r\n'), Buffer.from('hi'));
  router.publish(null, 'work', undefined, undefined, Buffer.from('job'));
  routes.heartbeat(heartbeat(SELF));
  routes.announceDestination('invoices');
  routes.stop();
  return ch.sent;
}

async function durableSamples(): Promise<Exchange[]> {
  const owner = fakeLinks(() => new FakeChannel());
  const ownerSide = ownerRouting(new ContractEngine().asEngine(), owner.links, PEER);
  await ownerSide.start();
  const ch = new FakeChannel(owner.handlers.get(DURABLE_PROTOCOL)!(SELF));
  const routing = new DurableRouting(
    {
      engine: new ContractEngine().asEngine(),
      links: fakeLinks(() => ch).links,
      selfId: SELF,
      ownerOf: () => PEER,
      peers: () => [PEER],
      catalog: new Set(),
      viewChange: async () => undefined,
      ready: async () => undefined,
      placement: () => [],
    },
    silentLog,
  );
  await routing.send({
    destination: 'orders',
    headers: Buffer.from('NATS/1.0\r\nNats-Msg-Id: a1\r\n\r\n'),
    payload: Buffer.from('hello'),
    priority: 7,
    ttlMs: 60_000,
    delayMs: 250,
    producer: 'client-1',
  });
  await routing.send({ destination: 'orders', id: 'order-42', payload: Buffer.from('') });
  await routing.pull({ destination: 'orders', group: 'billing', max: 10, waitMs: 0, ackTimeoutMs: 30_000 });
  await routing.settle('nak', '3/1/billing/orders', 500);
  await routing.settle('ack', '3/2/billing/orders');
  await routing.ensureDestination('invoices', { maxMsgs: 10, ackTimeoutMs: 2000, deadLetterExpired: true });
  await routing.dropGroup('orders', 'billing');
  await routing.list();
  return ch.answered;
}

async function replicaSamples(): Promise<Sample[]> {
  const ch = new FakeChannel();
  const replicator = new Replicator(
    {
      engine: new ContractEngine().asEngine(),
      links: fakeLinks(() => ch).links,
      replicasOf: () => [PEER],
      writeQuorum: 0,
    },
    silentLog,
  );
  for (const seq of [1, 2, 3, 4]) await replicator.message('orders', sampleMessage(seq));
  const settings = { ...sampleSettings({ maxMsgs: 100, maxBytes: 1 << 20 }), deadLetter: 'orders.DLQ' };
  replicator.change('orders', { op: 'dest', settings });
  replicator.change('orders', { op: 'group', group: 'billing', ackTimeoutMs: 5000, maxDeliveries: 5 });
  replicator.change('orders', {
    op: 'state',
    group: 'billing',
    seq: 2,
    deliveries: 1,
    done: false,
    deadlineMs: Date.now() + 5000,
  });
  replicator.change('orders', {
    op: 'state',
    group: 'billing',
    seq: 2,
    deliveries: 1,
    done: true,
    deadlineMs: 0,
  });
  replicator.change('orders', { op: 'remove', seq: 2 });
  replicator.change('orders', { op: 'remove', seq: 3, relayout: true });
  replicator.change('orders', { op: 'drop', group: 'billing' });
  return ch.sent;
}

async function handoffSamples(): Promise<Exchange[]> {
  const peerSide = fakeLinks(() => new FakeChannel());
  const peerHandoff = new Handoff(
    {
      engine: new ContractEngine().asEngine(),
      links: peerSide.links,
      selfId: PEER,
      preferenceOf: () => [SELF, PEER],
      peers: () => [SELF],
    },
    silentLog,
  );
  await peerHandoff.start();
  const ch = new FakeChannel(peerSide.handlers.get(HANDOFF_PROTOCOL)!(SELF));
  const replica = new FakeChannel({ request: async () => ({}) });
  const owner = new Handoff(
    {
      engine: new ContractEngine().asEngine(),
      links: fakeLinks((p) => (p === REPLICA_PROTOCOL ? replica : ch)).links,
      selfId: SELF,
      preferenceOf: () => [SELF, PEER],
      peers: () => [PEER],
    },
    silentLog,
  );
  // The owner's side of a merge (M7.2, M7.3), as a view change would run it.
  await (owner as unknown as { syncOne(n: string, p: string, c: FakeChannel): Promise<unknown> }).syncOne(
    'orders',
    PEER,
    ch,
  );
  peerHandoff.stop();
  owner.stop();
  // Sent by a node that stopped owning a destination, and to one no longer in its preference list.
  const named = (method: string): Exchange => ({
    request: onWire(method, { d: 'orders' }),
    answer: { head: {} },
  });
  return [...ch.answered, named('claim'), named('forget')];
}

let cached: Promise<Samples> | undefined;

/** Built once per process. */
export function samples(): Promise<Samples> {
  cached ??= (async () => ({
    route: await routeSamples(),
    durable: await durableSamples(),
    replica: await replicaSamples(),
    handoff: await handoffSamples(),
    heartbeat: heartbeat(),
  }))();
  return cached;
}
