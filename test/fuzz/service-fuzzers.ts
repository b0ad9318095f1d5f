/**
 * Fuzzers of the mesh services' inbound handlers (routes, durable routing,
 * replication, hand-off, membership), each built with fakes of its narrow
 * dependencies and fed mutated forms of the messages the protocols build.
 * A handler may refuse (MalformedMessage, an unknown method); what it lets
 * through must satisfy its consumer (the fake engine checks every call, a
 * local subscriber checks what would reach a client's line), and what it
 * keeps must stay bounded.
 */
import { Router, Subscription, type Deliverer } from '../../src/server/router.js';
import { MalformedMessage, type ChannelHandlers } from '../../src/mesh/channel.js';
import { DURABLE_PROTOCOL } from '../../src/mesh/durable-routing.js';
import { HANDOFF_PROTOCOL, Handoff } from '../../src/mesh/handoff.js';
import { Membership, membersTopic } from '../../src/mesh/membership.js';
import type { MeshLibp2p } from '../../src/mesh/peer.js';
import { REPLICA_PROTOCOL, Replicator } from '../../src/mesh/replication.js';
import { ROUTE_PROTOCOL, Routes } from '../../src/mesh/routes.js';
import * as C from './contracts.js';
import { ContractEngine, FakeChannel, fakeLinks, ownerRouting, silentLog, type Sample } from './fakes.js';
import { mutated } from './mesh-fuzzers.js';
import { mutateBytes, type Rand } from './mutate.js';
import { fuzz, type FuzzSummary, type Outcome } from './runner.js';
import { heartbeat, PEER, samples, SELF } from './samples.js';

/** What a handler may throw at a peer: a refusal, never a TypeError or a broken contract. */
function refusal(err: unknown, allowed: RegExp = /^$/): Outcome {
  if (err instanceof MalformedMessage) return 'refused';
  if (err instanceof Error && err.constructor === Error && allowed.test(err.message)) return 'refused';
  throw err;
}

/** A sample's method, sometimes replaced by what the mutated head says (an unknown or wrong method). */
function method(rand: Rand, sample: Sample, head: Record<string, unknown>): string {
  return rand.chance(0.9) || typeof head.m !== 'string' ? sample.method : head.m;
}

/** Calls a handler as the channel would: requests awaited, events synchronous. */
async function deliver(
  h: ChannelHandlers,
  kind: 'request' | 'event',
  m: string,
  head: Record<string, unknown>,
  data: Buffer,
): Promise<void> {
  if (kind === 'request') await h.request!(m, head, data);
  else h.event!(m, head, data);
}

// ---- routes (M6, M3.4, M2.2) ---------------------------------------------------

export async function routes(seed: number, count: number, first = 0): Promise<FuzzSummary> {
  const s = await samples();
  const { links, handlers } = fakeLinks(() => new FakeChannel());
  const router = new Router(64);
  // A local client subscribed to everything: what a peer's message would write on its line.
  const client: Deliverer = {
    closed: false,
    echo: true,
    deliver: (_sub, subject, reply, headers, payload) => {
      C.lineToken(subject, 'MSG subject');
      if (reply !== undefined) C.lineToken(reply, 'MSG reply');
      C.check((headers === undefined || Buffer.isBuffer(headers)) && Buffer.isBuffer(payload), 'MSG body');
    },
  };
  router.add(new Subscription(client, '>', undefined, '1'));
  router.add(new Subscription(client, 'work', 'grp', '2'));
  const r = new Routes(
    {
      router,
      links,
      selfId: SELF,
      localDestinations: () => [],
      onHeartbeat: (_peer, info) => C.memberInfo(info, 'heartbeat'),
      onDestinations: (_peer, names) => names.forEach((n) => C.destinationName(n, 'dests')),
    },
    silentLog,
  );
  await r.start();
  const inbound = handlers.get(ROUTE_PROTOCOL)!;
  const donors = s.route.map((x) => x.head);
  return fuzz(
    'routes',
    seed,
    count,
    first,
    async ({ rand, input }) => {
      const sample = rand.pick(s.route);
      const { head, data } = mutated(rand, sample, donors);
      const m = method(rand, sample, head);
      input({ method: m, head, data });
      try {
        await deliver(inbound(rand.pick([PEER, SELF])), 'event', m, head, data);
      } catch (err) {
        return refusal(err);
      }
      C.prototypeClean('routes');
      return 'accepted';
    },
    () => {
      r.stop();
      C.check(
        router.subscriptionCount === 2,
        `peers' interest left in the index (${router.subscriptionCount})`,
      );
    },
  );
}

// ---- durable routing, owner side (M4.5) ----------------------------------------

export async function durable(seed: number, count: number, first = 0): Promise<FuzzSummary> {
  const s = await samples();
  const engine = new ContractEngine();
  const { links, handlers } = fakeLinks(() => new FakeChannel());
  const routing = ownerRouting(engine.asEngine(), links, PEER);
  await routing.start();
  const owner = handlers.get(DURABLE_PROTOCOL)!(SELF);
  const requests = s.durable.map((e) => e.request);
  const donors = requests.map((x) => x.head);
  return fuzz('durable', seed, count, first, async ({ rand, input }) => {
    const sample = rand.pick(requests);
    const { head, data } = mutated(rand, sample, donors);
    const m = method(rand, sample, head);
    input({ method: m, head, data });
    try {
      await deliver(owner, 'request', m, head, data);
    } catch (err) {
      return refusal(err, /^unknown durable request/);
    }
    return 'accepted';
  });
}

// ---- replication, replica side (M5) ---------------------------------------------

export async function replica(seed: number, count: number, first = 0): Promise<FuzzSummary> {
  const s = await samples();
  const engine = new ContractEngine();
  const { links, handlers } = fakeLinks(() => new FakeChannel());
  const replicator = new Replicator(
    { engine: engine.asEngine(), links, replicasOf: () => [], writeQuorum: 0 },
    silentLog,
  );
  await replicator.start();
  const h = handlers.get(REPLICA_PROTOCOL)!(SELF);
  const donors = s.replica.map((x) => x.head);
  return fuzz(
    'replica',
    seed,
    count,
    first,
    async ({ rand, input }) => {
      const sample = rand.pick(s.replica);
      const { head, data } = mutated(rand, sample, donors);
      const m = method(rand, sample, head);
      input({ method: m, head, data });
      try {
        await deliver(h, sample.method === 'msg' ? 'request' : 'event', m, head, data);
      } catch (err) {
        return refusal(err, /^unknown replica request/);
      }
      return 'accepted';
    },
    () => replicator.stop(),
  );
}

// ---- hand-off (M7) ----------------------------------------------------------------

/** The peer's side: inventory, fetch, groups, flush, claim and forget requests from an owner. */
export async function handoff(seed: number, count: number, first = 0): Promise<FuzzSummary> {
  const s = await samples();
  const { links, handlers } = fakeLinks(() => new FakeChannel());
  const h = new Handoff(
    {
      engine: new ContractEngine().asEngine(),
      links,
      selfId: PEER,
      preferenceOf: () => [SELF, PEER],
      peers: () => [SELF],
    },
    silentLog,
  );
  await h.start();
  const peer = handlers.get(HANDOFF_PROTOCOL)!(SELF);
  const requests = s.handoff.map((e) => e.request);
  const donors = requests.map((x) => x.head);
  return fuzz(
    'handoff',
    seed,
    count,
    first,
    async ({ rand, input }) => {
      const sample = rand.pick(requests);
      const { head, data } = mutated(rand, sample, donors);
      const m = method(rand, sample, head);
      input({ method: m, head, data });
      try {
        await deliver(peer, 'request', m, head, data);
      } catch (err) {
        return refusal(err, /^(unknown hand-off request|too many hand-backs pending)/);
      }
      const claims = (h as unknown as { claims: Set<string> }).claims.size;
      C.check(claims <= 4096, `${claims} hand-backs waiting`);
      return 'accepted';
    },
    () => h.stop(),
  );
}

/**
 * The owner's side of a merge (handoff.ts syncOne), answered with mutated
 * inventories and fetched messages: it ends (a peer cannot page forever),
 * and fails only with MalformedMessage.
 */
export async function handoffSync(seed: number, count: number, first = 0): Promise<FuzzSummary> {
  const s = await samples();
  const answers = new Map(s.handoff.map((e) => [e.request.method, e.answer]));
  const inventory = answers.get('inventory')!;
  // A first page that says more follow, so paging is exercised.
  const paged = { head: { inv: { ...(inventory.head!.inv as object), next: 4 } }, data: Buffer.alloc(0) };
  const donors = [inventory.head, paged.head, answers.get('fetch')!.head];
  return fuzz('handoff-sync', seed, count, first, async ({ rand, input }) => {
    const seen: unknown[] = [];
    let pages = 0;
    const peer: ChannelHandlers = {
      request: (m) => {
        let base = answers.get(m) ?? { head: {} };
        if (m === 'inventory') {
          C.check(++pages <= 100, 'inventory paging does not end');
          if (rand.chance(0.5)) base = paged;
        }
        const sample: Sample = { method: m, head: base.head ?? {}, data: base.data ?? Buffer.alloc(0) };
        // Not deep: the fake channel passes answers through JSON, as a real one would have.
        const answer = rand.chance(0.5)
          ? mutated(rand, sample, donors, false)
          : { head: sample.head, data: sample.data };
        seen.push({ m, ...answer });
        return answer;
      },
    };
    input(seen);
    const ch = new FakeChannel(peer);
    const replicaCh = new FakeChannel({ request: async () => ({}) });
    const owner = new Handoff(
      {
        engine: new ContractEngine().asEngine(),
        links: fakeLinks((p) => (p === REPLICA_PROTOCOL ? replicaCh : ch)).links,
        selfId: SELF,
        preferenceOf: () => [SELF, PEER],
        peers: () => [PEER],
      },
      silentLog,
    );
    try {
      await (owner as unknown as { syncOne(n: string, p: string, c: FakeChannel): Promise<unknown> }).syncOne(
        'orders',
        PEER,
        ch,
      );
    } catch (err) {
      return refusal(err);
    } finally {
      owner.stop();
    }
    return 'accepted';
  });
}

// ---- membership (M2) ----------------------------------------------------------------

class FakePubsub extends EventTarget {
  subscribe(): void {}
  async publish(): Promise<void> {}
}

/** A Membership of node SELF on a fake libp2p: heartbeats are fed to it by hand (onHeartbeat) or on `pubsub`. */
export function fakeMembership(): { m: Membership; pubsub: FakePubsub } {
  const pubsub = new FakePubsub();
  const p2p = {
    peerId: { toString: () => SELF },
    services: { pubsub },
    addEventListener: () => undefined,
    dial: async () => undefined,
  };
  const m = new Membership(
    p2p as unknown as MeshLibp2p,
    {
      cluster: 'swarmmq',
      heartbeatIntervalMs: 60_000,
      memberTimeoutMs: 3_600_000,
      self: () => heartbeat(SELF),
    },
    silentLog,
  );
  return { m, pubsub };
}

/** Heartbeats on the members topic: mutated JSON (and sometimes mutated bytes), signed by their id or another. */
export async function membership(seed: number, count: number, first = 0): Promise<FuzzSummary> {
  const { m, pubsub } = fakeMembership();
  m.start();
  const sample: Sample = {
    method: 'hb',
    head: heartbeat() as unknown as Record<string, unknown>,
    data: Buffer.alloc(0),
  };
  return fuzz(
    'membership',
    seed,
    count,
    first,
    ({ rand, input }) => {
      const { head } = mutated(rand, sample, [], false);
      let json = JSON.stringify(head);
      // Now and then a value nested deeper than JSON.stringify can go (JSON.parse takes it).
      if (rand.chance(0.03)) json = `{"deep":${'['.repeat(20_000)}${']'.repeat(20_000)},${json.slice(1)}`;
      const text = Buffer.from(json);
      const data = rand.chance(0.2) ? mutateBytes(text, rand) : text;
      const from =
        rand.chance(0.8) && typeof head.id === 'string' ? head.id : rand.pick([PEER, SELF, 'other']);
      input({ from, data: data.toString('latin1') });
      const before = m.members.get(from);
      const detail = { topic: membersTopic('swarmmq'), type: 'signed', from: { toString: () => from }, data };
      pubsub.dispatchEvent(Object.assign(new Event('message'), { detail }));
      const after = m.members.get(from);
      if (after !== undefined) C.memberInfo(after, 'member');
      C.prototypeClean('membership');
      return after !== undefined && after !== before ? 'accepted' : 'refused';
    },
    () => {
      m.stop();
      // Discovery dials these once the member is gone (M1.6): each must parse.
      for (const k of m.known.values()) C.memberInfo({ ...heartbeat(), mesh: k.mesh }, 'known member');
    },
  );
}
