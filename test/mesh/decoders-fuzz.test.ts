/**
 * Every decoder of what a node receives from a peer (protocol/MESH.md M4.1,
 * M4.6), fuzzed with seeded mutations of the messages the protocols build
 * (test/fuzz/fuzzers.ts; `npm run fuzz` runs them for longer), then the
 * inputs that broke them before M4.6, one test each.
 *
 * SWARMMQ_FUZZ_SEED and SWARMMQ_FUZZ_ROUNDS (runs per fuzzer) change the run.
 */
import test from 'ava';
import { encodeFrame, FrameDecoder, FrameKind, type Frame } from '../../src/mesh/codec.js';
import { Channel, MalformedMessage, PeerError, type ChannelHandlers } from '../../src/mesh/channel.js';
import { HANDOFF_PROTOCOL, Handoff } from '../../src/mesh/handoff.js';
import { ROUTE_PROTOCOL, Routes } from '../../src/mesh/routes.js';
import { inventoryPage, memberInfo, replicaChange, replicaMessage, routeMsg } from '../../src/mesh/schema.js';
import { Router } from '../../src/server/router.js';
import type { Stream } from '@libp2p/interface';
import { fuzzers } from '../fuzz/fuzzers.js';
import { ContractEngine, FakeChannel, fakeLinks, sampleSettings, silentLog } from '../fuzz/fakes.js';
import { heartbeat, PEER, SELF } from '../fuzz/samples.js';

const SEED = Number(process.env.SWARMMQ_FUZZ_SEED ?? 4242);
const ROUNDS =
  process.env.SWARMMQ_FUZZ_ROUNDS === undefined ? undefined : Number(process.env.SWARMMQ_FUZZ_ROUNDS);

/** Runs per fuzzer: thousands, fewer where one run costs more; each takes under a second here (2 cores). */
const RUNS: Record<string, number> = {
  frames: 1500,
  channel: 800,
  schema: 3000,
  routes: 2000,
  durable: 2000,
  replica: 2000,
  handoff: 2000,
  'handoff-sync': 1000,
  membership: 1000,
  engine: 1000,
};

// Serial: each fuzzer's time is its own, not shared with the others'.
for (const [name, runs] of Object.entries(RUNS)) {
  test.serial(
    `M4.6 ${name}: seeded mutations of valid messages are refused or fit to use, never a crash`,
    async (t) => {
      const s = await fuzzers[name]!(SEED, ROUNDS ?? runs);
      t.log(`seed ${s.seed}: ${s.runs} runs, ${s.accepted} accepted, ${s.refused} refused, ${s.ms} ms`);
      t.true(s.accepted > 0 && s.refused > 0, 'both paths taken');
    },
  );
}

// ---- the inputs that got through before M4.6 ----------------------------------------

class FakeStream extends EventTarget {
  readonly sent: Uint8Array[] = [];
  constructor(private readonly accepts = true) {
    super();
  }
  send(b: Uint8Array): boolean {
    this.sent.push(b);
    return this.accepts;
  }
  abort(): void {}
  feed(data: Buffer): void {
    this.dispatchEvent(Object.assign(new Event('message'), { data }));
  }
  /** The frames the channel wrote. */
  frames(): Frame[] {
    const out: Frame[] = [];
    const d = new FrameDecoder(1 << 30);
    for (const b of this.sent) d.push(b, (f) => out.push(f));
    return out;
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('M4.6 a failure whose message is not text still fails its request (it used to leave the caller waiting)', async (t) => {
  const stream = new FakeStream();
  const limits = { maxFrameBytes: 1 << 20, maxPendingBytes: 1 << 20, requestTimeoutMs: 60_000 };
  const ch = new Channel(stream as unknown as Stream, {}, limits, silentLog);
  const call = ch.request('x', {});
  const head = { name: { toString: 1 }, message: 'line one\r\n-ERR injected' };
  stream.feed(encodeFrame(FrameKind.Failure, 1, head));
  const err = await t.throwsAsync(call, { instanceOf: PeerError });
  t.is(err.code, 'Error');
  t.false(/[\r\n]/.test(err.message), 'one line');
  ch.close();
});

test('M4.6 a stored message its ready queue cannot place is refused (priority 11 crashed a release timer)', (t) => {
  const msg = {
    seq: 1,
    id: 'a',
    priority: 11,
    timestampMs: 1,
    expiresAtMs: 0,
    notBeforeMs: 2,
    dedup: false,
    hl: -1,
  };
  t.throws(() => replicaMessage({ d: 'orders', msg }, Buffer.from('x')), {
    instanceOf: MalformedMessage,
    message: /priority/,
  });
  // An array-like producer used to be allocated byte by byte while sealing (minutes for 1e9).
  const producer = { length: 1e9 };
  t.throws(() => replicaMessage({ d: 'orders', msg: { ...msg, priority: 5, producer } }, Buffer.from('x')), {
    instanceOf: MalformedMessage,
    message: /producer/,
  });
});

test('M4.6 settings with fields no destination has are left behind (a deep one broke every later write)', (t) => {
  const settings = {
    ...sampleSettings(),
    x: JSON.parse(`${'['.repeat(20_000)}${']'.repeat(20_000)}`) as unknown,
  };
  const { change } = replicaChange({ d: 'orders', c: { op: 'dest', settings } });
  t.notThrows(() => JSON.stringify(change));
  t.false('x' in (change as { settings: object }).settings);
  t.throws(() => replicaChange({ d: 'a\r\nb', c: { op: 'drop', group: 'g' } }), {
    instanceOf: MalformedMessage,
  });
});

test('M4.6 a core message whose subject or reply would break a client line is refused', (t) => {
  const data = Buffer.from('hi');
  for (const s of ['a b', 'a\nb', '\u010d\u010a', 'a.>', '']) {
    t.throws(() => routeMsg({ s, hl: -1 }, data), { instanceOf: MalformedMessage }, JSON.stringify(s));
  }
  t.throws(() => routeMsg({ s: 'a', r: 'x\r\nPING', hl: -1 }, data), { instanceOf: MalformedMessage });
  t.throws(
    () => routeMsg({ s: 'a', hl: 3 }, data),
    { instanceOf: MalformedMessage },
    'headers beyond the data',
  );
  t.is(routeMsg({ s: 'a\rb', hl: -1 }, data).subject, 'a\rb', 'CR is a byte a client may publish');
});

test('M4.6 an inventory page that does not move past the last one is refused (paging went on forever)', (t) => {
  const inv = {
    settings: sampleSettings(),
    lastSeq: 9,
    groups: [],
    items: [],
    removed: [],
  };
  t.is(inventoryPage({ inv: { ...inv, next: 9 } }, 4, 10)?.next, 9);
  for (const next of [4, 0, -1, 1.5, '9']) {
    t.throws(
      () => inventoryPage({ inv: { ...inv, next } }, 4, 10),
      { instanceOf: MalformedMessage },
      String(next),
    );
  }
  t.throws(
    () => inventoryPage({ inv: { ...inv, items: Array(11).fill({ seq: 1, id: 'a', p: 5, st: [] }) } }, 0, 10),
    {
      instanceOf: MalformedMessage,
    },
  );
});

test('M4.6 a heartbeat whose address does not parse is dropped (discovery threw on it from a timer)', (t) => {
  t.throws(() => memberInfo({ ...heartbeat(), mesh: ['not a multiaddr'] }), { instanceOf: MalformedMessage });
  t.throws(() => memberInfo({ ...heartbeat(), startedAtMs: {} }), { instanceOf: MalformedMessage });
  t.throws(() => memberInfo({ ...heartbeat(), client: '127.0.0.1:4222\r\nINFO' }), {
    instanceOf: MalformedMessage,
  });
  t.deepEqual(memberInfo({ ...heartbeat(), extra: 1 }), heartbeat(), 'only the fields of M2.1 are kept');
});

test('M4.1 a frame in 1 KiB chunks is joined once (8 MiB took seconds of copying)', (t) => {
  const frame = encodeFrame(FrameKind.Event, 0, { m: 'msg' }, Buffer.alloc(8 * 1024 * 1024 - 64));
  const d = new FrameDecoder(8 * 1024 * 1024);
  let frames = 0;
  const started = Date.now();
  for (let i = 0; i < frame.length; i += 1024) d.push(frame.subarray(i, i + 1024), () => frames++);
  const ms = Date.now() - started;
  t.is(frames, 1);
  t.is(d.bufferedBytes, 0);
  // Linear: ~60 ms here; the copying decoder took ~4.5 s.
  t.true(ms < 2000, `${ms} ms`);
});

// ---- what a peer can make a node hold (M4.6) ------------------------------------------

test('M4.6 a peer has at most 65,536 requests handled at once; more are answered PeerBusy', async (t) => {
  const stream = new FakeStream();
  const never: ChannelHandlers = { request: () => new Promise(() => undefined) };
  const limits = { maxFrameBytes: 1 << 20, maxPendingBytes: 1 << 30, requestTimeoutMs: 60_000 };
  const ch = new Channel(stream as unknown as Stream, never, limits, silentLog);
  const requests = Array.from({ length: 65_537 }, (_, i) =>
    encodeFrame(FrameKind.Request, i + 1, { m: 'pull' }),
  );
  stream.feed(Buffer.concat(requests));
  await tick();
  const answers = stream.frames();
  t.is(answers.length, 1);
  t.is(answers[0]!.id, 65_537);
  t.is(answers[0]!.head.name, 'PeerBusy');
  ch.close();
});

test('M4.3/M4.6 answers to a peer that does not read them stop at the link limit', async (t) => {
  const stream = new FakeStream(false); // the stream stays full: no 'drain'
  const answer: ChannelHandlers = { request: () => ({ head: { pad: 'x'.repeat(600) } }) };
  const limits = { maxFrameBytes: 1 << 20, maxPendingBytes: 1000, requestTimeoutMs: 60_000 };
  const ch = new Channel(stream as unknown as Stream, answer, limits, silentLog);
  for (let i = 1; i <= 50; i++) {
    stream.feed(encodeFrame(FrameKind.Request, i, { m: 'fetch' }));
    await tick();
  }
  t.true(ch.pendingBytes <= 1000 + 700, `${ch.pendingBytes} bytes queued`);
  ch.close();
});

test('M4.6 the interest of a peer stops at 1,000,000 subject tokens, 32 a subject (SEC5.1)', async (t) => {
  const { links, handlers } = fakeLinks(() => new FakeChannel());
  const router = new Router(0);
  const routes = new Routes(
    {
      router,
      links,
      selfId: SELF,
      localDestinations: () => [],
      onHeartbeat: () => undefined,
      onDestinations: () => undefined,
    },
    silentLog,
  );
  await routes.start();
  const inbound = handlers.get(ROUTE_PROTOCOL)!(PEER);
  // 32 tokens each, sharing 31: the budget counts tokens, whatever the index shares.
  const prefix = Array<string>(31).fill('p').join('.');
  const subs = Array.from({ length: 31_251 }, (_, i) => ({ subject: `${prefix}.${i}` }));
  inbound.event!('interest', { subs }, Buffer.alloc(0));
  t.is(router.subscriptionCount, 31_250);
  t.throws(() => inbound.event!('sub', { s: `${prefix}.a.b` }, Buffer.alloc(0)), {
    instanceOf: MalformedMessage,
    message: /32 tokens/,
  });
  routes.stop();
  t.is(router.subscriptionCount, 0);
});

test('M4.6 at most 4096 hand-backs wait for the view of this node; a repeated one adds nothing', async (t) => {
  const { links, handlers } = fakeLinks(() => new FakeChannel());
  const h = new Handoff(
    {
      engine: new ContractEngine().asEngine(),
      links,
      selfId: SELF,
      preferenceOf: () => [SELF],
      peers: () => [PEER],
    },
    silentLog,
  );
  await h.start();
  const peer = handlers.get(HANDOFF_PROTOCOL)!(PEER);
  for (let i = 0; i < 4096; i++) await peer.request!('claim', { d: `d${i}` }, Buffer.alloc(0));
  await t.notThrowsAsync(async () => peer.request!('claim', { d: 'd0' }, Buffer.alloc(0)));
  await t.throwsAsync(async () => peer.request!('claim', { d: 'one-more' }, Buffer.alloc(0)), {
    message: /too many hand-backs/,
  });
  h.stop();
});
