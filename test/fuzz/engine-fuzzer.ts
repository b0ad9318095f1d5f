/**
 * The mesh handlers in front of a real durable engine (a LevelDB store in a
 * temp dir): mutated replica messages and changes, hand-off requests and
 * forwarded calls. Refusals are fine (MalformedMessage, DurableError, an
 * unknown method); a TypeError, a timer that throws later (a stored message
 * the ready queue cannot place), or engine state a peer bent out of shape
 * (a seq that is not a number, a group timeout that is not one) is not.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KeyRing } from '../../src/crypto/seal.js';
import { DurableEngine } from '../../src/durable/engine.js';
import { DurableError } from '../../src/errors.js';
import { MalformedMessage, type ChannelHandlers } from '../../src/mesh/channel.js';
import { DURABLE_PROTOCOL } from '../../src/mesh/durable-routing.js';
import { HANDOFF_PROTOCOL, Handoff } from '../../src/mesh/handoff.js';
import { REPLICA_PROTOCOL, Replicator } from '../../src/mesh/replication.js';
import * as C from './contracts.js';
import { FakeChannel, fakeLinks, ownerRouting, silentLog, type Sample } from './fakes.js';
import { mutated } from './mesh-fuzzers.js';
import { fuzz, type FuzzSummary, type Outcome } from './runner.js';
import { PEER, samples, SELF } from './samples.js';

function refusal(err: unknown): Outcome {
  if (err instanceof MalformedMessage || err instanceof DurableError) return 'refused';
  if (
    err instanceof Error &&
    err.constructor === Error &&
    /^(unknown .* request|too many hand-backs)/.test(err.message)
  ) {
    return 'refused';
  }
  throw err;
}

/** Times in a sample made near: the engine's release and expiry timers fire while the fuzzer runs. */
function soon(head: Record<string, unknown>): Record<string, unknown> {
  const msg = head.msg as Record<string, unknown> | undefined;
  if (msg === undefined) return head;
  const now = Date.now();
  const near = (v: unknown, ms: number): unknown => (typeof v === 'number' && v > 0 ? now + ms : v);
  return {
    ...head,
    msg: { ...msg, notBeforeMs: near(msg.notBeforeMs, 10), expiresAtMs: near(msg.expiresAtMs, 40) },
  };
}

/** What the engine holds must still be what it can schedule, store and show. */
function checkEngine(engine: DurableEngine): void {
  for (const [name, d] of engine.dests) {
    C.check(d.name === name && C.isInt(d.lastSeq), `destination ${name}`);
    C.settings({ ...d.settings, deadLetter: d.settings.deadLetter }, `${name} settings`);
    for (const m of d.msgs.values()) {
      C.check(C.isInt(m.seq, 1) && C.isInt(m.priority, 1, 10), `${name} message ${m.seq}`);
      C.check(C.isInt(m.expiresAtMs) && C.isInt(m.notBeforeMs), `${name} message ${m.seq} times`);
    }
    for (const g of d.groups.values()) {
      C.groupName(g.name, `${name} group`);
      C.check(C.isInt(g.ackTimeoutMs) && C.isInt(g.maxDeliveries), `${name} group ${g.name} numbers`);
      for (const [seq, f] of g.inflight) {
        C.check(
          C.isInt(seq) && typeof f.deadlineMs === 'number' && !Number.isNaN(f.deadlineMs),
          `${name} in flight`,
        );
      }
    }
  }
}

export async function engine(seed: number, count: number, first = 0): Promise<FuzzSummary> {
  const s = await samples();
  const dir = mkdtempSync(path.join(tmpdir(), 'swarmmq-fuzz-'));
  const eng = await DurableEngine.open(
    {
      dataDir: dir,
      maxDestinations: 64,
      maxDiskBytes: 1 << 30,
      dedupWindowMs: 60_000,
      maxGroupsPerDestination: 8,
      maxPullBytes: 1 << 20,
      defaults: {
        defaultTtlMs: 0,
        maxMsgs: 10_000,
        maxBytes: 1 << 26,
        deadLetterExpired: true,
        maxDeliveries: 3,
        ackTimeoutMs: 50,
      },
      destinations: [],
    },
    new KeyRing(Buffer.alloc(32, 7)),
    silentLog,
  );
  const { links, handlers } = fakeLinks(() => new FakeChannel({ request: async () => ({}) }));
  const replicator = new Replicator({ engine: eng, links, replicasOf: () => [], writeQuorum: 0 }, silentLog);
  const handoff = new Handoff(
    { engine: eng, links, selfId: PEER, preferenceOf: () => [SELF, PEER], peers: () => [SELF] },
    silentLog,
  );
  const routing = ownerRouting(eng, links, PEER);
  await replicator.start();
  await handoff.start();
  await routing.start();
  const at = (protocol: string): ChannelHandlers => handlers.get(protocol)!(SELF);
  // Replica traffic twice as often: it reaches the store and the timers without an owner's checks.
  const targets: [ChannelHandlers, Sample][] = [
    ...[...s.replica, ...s.replica].map((x): [ChannelHandlers, Sample] => [at(REPLICA_PROTOCOL), x]),
    ...s.handoff.map((e): [ChannelHandlers, Sample] => [at(HANDOFF_PROTOCOL), e.request]),
    ...s.durable.map((e): [ChannelHandlers, Sample] => [at(DURABLE_PROTOCOL), e.request]),
  ];
  const donors = targets.map(([, x]) => x.head);
  // Pulls may wait (up to their waitMs): not awaited per run; closing the engine ends them.
  const waiting: Promise<unknown>[] = [];
  try {
    return await fuzz(
      'engine',
      seed,
      count,
      first,
      async ({ rand, input }) => {
        const [h, sample] = rand.pick(targets);
        const { head, data } = mutated(rand, { ...sample, head: soon(sample.head) }, donors);
        input({ method: sample.method, head, data });
        try {
          if (sample.method === 'change') h.event!('change', head, data);
          else {
            const p = h.request!(sample.method, head, data);
            if (sample.method === 'pull') {
              waiting.push(Promise.resolve(p).catch(refusal));
              return 'accepted';
            }
            await p;
          }
        } catch (err) {
          return refusal(err);
        }
        return 'accepted';
      },
      async () => {
        // Let the release and expiry timers of what was stored fire, then look at what is held.
        await new Promise((r) => setTimeout(r, 60));
        checkEngine(eng);
      },
    );
  } finally {
    handoff.stop();
    replicator.stop();
    await eng.close();
    await Promise.all(waiting);
    rmSync(dir, { recursive: true, force: true });
  }
}
