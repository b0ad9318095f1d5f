/**
 * Wire tests of durable destinations (protocol/DURABLE.md): a real node on a
 * real TCP port, spoken to with the SEND/PULL/ACK/NAK/WIP/TERM/CREATE/DESTS
 * verbs. Each test cites the rule it checks. Nothing here sleeps in place of
 * an event: where a test must show that something did not happen before a
 * time, it waits for a later positive event and checks its timestamp.
 */
import test from 'ava';
import type { SwarmNode } from '../../src/node.js';
import { Prefix, parseMessageKey, prefixRange, quarantineKey } from '../../src/store/keys.js';
import { RawClient, startTestNode, waitFor } from '../helpers/wire.js';
import {
  ERR_RE,
  expectErr,
  expectStored,
  open,
  openVerbose,
  pull,
  readPulled,
  send,
  sendFrame,
} from '../helpers/durable-wire.js';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

// ---- helpers ---------------------------------------------------------------

interface DestLine {
  name: string;
  depth: number;
  bytes: number;
  lastSeq: number;
  groups: string;
}

/** DESTS (D7.2), parsed; checks the line format and the count. */
async function dests(c: RawClient): Promise<Map<string, DestLine>> {
  c.send('DESTS\r\n');
  const out = new Map<string, DestLine>();
  for (;;) {
    const m = await c.expect(
      /^(?:DEST ([^ \r\n]+) depth=(\d+) bytes=(\d+) last_seq=(\d+) groups=(-|(?:[A-Za-z0-9_-]+:\d+\/\d+\/\d+)(?:,[A-Za-z0-9_-]+:\d+\/\d+\/\d+)*)\r\n|\+DESTS (\d+)\r\n)/,
    );
    if (m[6] !== undefined) {
      if (Number(m[6]) !== out.size) throw new Error(`+DESTS ${m[6]} after ${out.size} lines`);
      return out;
    }
    out.set(m[1]!, {
      name: m[1]!,
      depth: Number(m[2]),
      bytes: Number(m[3]),
      lastSeq: Number(m[4]),
      groups: m[5]!,
    });
  }
}

async function dest(c: RawClient, name: string): Promise<DestLine> {
  const d = (await dests(c)).get(name);
  if (d === undefined) throw new Error(`no destination ${name} in DESTS`);
  return d;
}

/** Waits until `name` is listed with this depth (for what the engine does on its own time). */
async function waitDepth(node: SwarmNode, name: string, depth: number, timeoutMs = 10_000): Promise<void> {
  await waitFor(
    () => node.durable.list().find((d) => d.name === name)?.depth === depth,
    `${name} to hold ${depth}`,
    timeoutMs,
  );
}

/** The stored messages, as LevelDB has them now. */
async function storedKeys(node: SwarmNode): Promise<{ destId: number; priority: number; seq: number }[]> {
  const out: { destId: number; priority: number; seq: number }[] = [];
  for await (const k of node.durable.db.keys(prefixRange(Prefix.Message))) out.push(parseMessageKey(k));
  return out;
}

/**
 * Holds every LevelDB batch write until release() (so a test can show that
 * nothing is confirmed before the sync), and counts the batches.
 */
function gateWrites(node: SwarmNode): { release: () => void; batches: () => number } {
  type Batch = { write: (o?: unknown) => Promise<void> };
  const db = node.durable.db as unknown as { batch: () => Batch };
  const original = db.batch.bind(db);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let batches = 0;
  db.batch = () => {
    const b = original();
    batches++;
    const write = b.write.bind(b);
    b.write = async (o?: unknown) => {
      await gate;
      return write(o);
    };
    return b;
  };
  return { release, batches: () => batches };
}

/** Holds the first message read of a PULL (LevelDB getMany) until the returned function is called. */
function gateFirstRead(node: SwarmNode): () => void {
  type GetMany = (keys: Buffer[]) => Promise<(Buffer | undefined)[]>;
  const db = node.durable.db as unknown as { getMany: GetMany };
  const original = db.getMany.bind(db);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let first = true;
  db.getMany = async (keys) => {
    if (!first) return original(keys);
    first = false;
    await gate;
    return original(keys);
  };
  return release;
}

/** Bytes of the files in a directory. */
function dirBytes(dir: string): number {
  let n = 0;
  for (const f of readdirSync(dir)) n += statSync(path.join(dir, f)).size;
  return n;
}

/** Waits until the wall clock has reached `ms` (for a time a rule names, never for an event). */
async function until(ms: number): Promise<void> {
  await waitFor(() => Date.now() >= ms, `time ${ms}`, Math.max(1000, ms - Date.now() + 5000));
}

// ---- D1: destinations --------------------------------------------------------

test('D1.1 invalid destination names are refused; the connection stays open', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  for (const bad of ['a..b', '.a', 'a.', 'a.*', '*', '>', 'a.>', 'x'.repeat(256)]) {
    c.send(sendFrame(bad, 'p'));
    t.regex(await expectErr(c), /^invalid destination name/, bad);
    c.send(`CREATE ${bad}\r\n`);
    t.regex(await expectErr(c), /^invalid destination name/, bad);
  }
  // 255 bytes is fine; '*' or '>' inside a longer token is a literal.
  const long = 'y'.repeat(255);
  t.is((await send(c, long, 'p')).seq, 1);
  t.is((await send(c, 'a*.b>', 'p')).seq, 1);
  t.is(await c.flushed(), '');
  t.false(c.closed);
});

test('D1.1 a UTF-8 destination name is taken as bytes and sent back byte for byte', async (t) => {
  const name = 'bestellungen.café.à.日本';
  const { port } = await startTestNode(t, { destinations: [{ name: 'config.é', settings: { maxMsgs: 1 } }] });
  const c = await open(t, port);
  const wire = Buffer.from(name, 'utf8').toString('latin1');
  c.send(Buffer.from(`SEND ${name} 1\r\nx\r\nSEND config.é 1\r\ny\r\nSEND config.é 1\r\nz\r\n`, 'utf8'));
  const s = await expectStored(c);
  t.is(s.dest, wire);
  t.is(s.seq, 1);
  const s2 = await expectStored(c);
  t.is(s2.dest, Buffer.from('config.é', 'utf8').toString('latin1'));
  t.is(s2.seq, 1);
  // The config's max_msgs applies: the config destination and the wire name are one.
  t.regex(await expectErr(c), /is full \(max_msgs 1\)/);
  c.send(Buffer.from(`PULL ${name} g\r\n`, 'utf8'));
  const [m] = await readPulled(c, wire);
  t.is(m!.handle, `1/1/g/${wire}`);
  t.deepEqual([...(await dests(c)).keys()].sort(), [wire, s2.dest].sort());
});

test('D1.2 a destination comes into being on its first SEND or by CREATE; a core PUB creates none', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  c.send('PUB not.a.dest 2\r\nhi\r\n');
  await c.flushed();
  t.is((await dests(c)).size, 0);
  await send(c, 'by.send', 'x');
  c.send('CREATE by.create\r\n');
  await c.expect(/^\+CREATED by\.create\r\n/);
  t.deepEqual([...(await dests(c)).keys()], ['by.create', 'by.send']);
});

test('D1.2 destinations: from the config exist at start with their settings', async (t) => {
  const { node, port } = await startTestNode(t, {
    destinations: [
      { name: 'cfg.q', settings: { maxMsgs: 2 } },
      { name: 'cfg.plain', settings: {} },
    ],
  });
  t.true(node.durable.isDestination('cfg.q'));
  const c = await open(t, port);
  const all = await dests(c);
  t.deepEqual(all.get('cfg.q'), { name: 'cfg.q', depth: 0, bytes: 0, lastSeq: 0, groups: '-' });
  t.truthy(all.get('cfg.plain'));
  // It exists, so a PULL does not say "unknown destination".
  t.deepEqual(await pull(c, 'cfg.q', 'g'), []);
  c.send(sendFrame('cfg.q', 'a') + sendFrame('cfg.q', 'b') + sendFrame('cfg.q', 'c'));
  await expectStored(c);
  await expectStored(c);
  t.is(await expectErr(c), 'destination cfg.q is full (max_msgs 2)');
  // A core PUB to it is stored too (D3.7).
  c.send('CREATE cfg.plain\r\n');
  await c.expect(/^\+EXISTS cfg\.plain\r\n/);
  c.send('PUB cfg.plain 4\r\ncore\r\n');
  await waitDepth(node, 'cfg.plain', 1);
  const [m] = await pull(c, 'cfg.plain', 'g');
  t.is(m!.payload, 'core');
});

test('D1.3/D6.2 X.DLQ is an ordinary destination without a dead-letter destination or delivery limit', async (t) => {
  const { node, port } = await startTestNode(t, { maxDeliveries: 1 });
  const c = await open(t, port);
  await send(c, 'q', 'payload', 'id=m1');
  const [m] = await pull(c, 'q', 'g');
  c.send(`TERM ${m!.handle}\r\n`);
  await waitDepth(node, 'q.DLQ', 1);
  // Pulled, nak'ed and redelivered more often than max_deliveries allows elsewhere.
  for (let i = 1; i <= 3; i++) {
    const [d] = await pull(c, 'q.DLQ', 'ops');
    t.is(d!.id, 'm1');
    t.is(d!.deliveries, i);
    c.send(`NAK ${d!.handle}\r\n`);
  }
  const [d] = await pull(c, 'q.DLQ', 'ops');
  c.send(`TERM ${d!.handle}\r\n`);
  await waitDepth(node, 'q.DLQ', 0);
  const all = await dests(c);
  t.deepEqual([...all.keys()], ['q', 'q.DLQ']);
  t.is(all.get('q.DLQ')!.groups, 'ops:0/0/0');
});

// ---- D2: consumer groups -------------------------------------------------------

test('D2.1 invalid group names are refused; the connection stays open', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  await send(c, 'q', 'x');
  for (const bad of ['a.b', 'a/b', 'a*', 'g'.repeat(65), 'ü']) {
    c.send(`PULL q ${bad}\r\n`);
    t.regex(await expectErr(c), /^invalid group name/, bad);
  }
  const [m] = await pull(c, 'q', `A-z_0${'9'.repeat(59)}`);
  t.is(m!.payload, 'x');
  t.is((await dest(c, 'q')).groups, `A-z_0${'9'.repeat(59)}:0/1/0`);
});

test('D2.2/D2.4 two groups each get every message; it is removed only when both acked', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  for (const p of ['a', 'b', 'c']) await send(c, 'q', p);
  const a = await pull(c, 'q', 'A');
  const b = await pull(c, 'q', 'B');
  t.deepEqual(
    a.map((m) => m.payload),
    ['a', 'b', 'c'],
  );
  t.deepEqual(
    b.map((m) => m.payload),
    ['a', 'b', 'c'],
  );
  for (const m of a) c.send(`ACK ${m.handle}\r\n`);
  let d = await dest(c, 'q');
  t.is(d.depth, 3);
  t.is(d.groups, 'A:0/0/3,B:0/3/0');
  c.send(`ACK ${b[0]!.handle}\r\n`);
  d = await dest(c, 'q');
  t.is(d.depth, 2);
  t.is(d.groups, 'A:0/0/2,B:0/2/0');
  for (const m of b.slice(1)) c.send(`ACK ${m.handle}\r\n`);
  d = await dest(c, 'q');
  t.is(d.depth, 0);
  t.is(d.bytes, 0);
  t.is(d.groups, 'A:0/0/0,B:0/0/0');
});

test('D2.2 while a destination has no group its messages stay', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  for (let i = 0; i < 3; i++) await send(c, 'q', `m${i}`);
  const d = await dest(c, 'q');
  t.is(d.depth, 3);
  t.true(d.bytes > 0);
  t.is(d.groups, '-');
});

test('D2.3 a new group sees every message still stored', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  for (const p of ['1', '2', '3']) await send(c, 'q', p);
  const first = await pull(c, 'q', 'early', '1');
  t.is(first[0]!.payload, '1');
  c.send(`ACK ${first[0]!.handle}\r\n`); // the only group: message 1 is gone
  await send(c, 'q', '4');
  const late = await pull(c, 'q', 'late');
  t.deepEqual(
    late.map((m) => m.payload),
    ['2', '3', '4'],
  );
  // The early group still gets the rest too.
  t.deepEqual(
    (await pull(c, 'q', 'early')).map((m) => m.payload),
    ['2', '3', '4'],
  );
});

test('D2.4 members of one group on two connections never get the same message while in flight', async (t) => {
  const { port } = await startTestNode(t);
  const c1 = await open(t, port);
  const c2 = await open(t, port);
  for (let i = 0; i < 20; i++) await send(c1, 'q', `m${i}`);
  c1.send('PULL q g 7\r\n');
  c2.send('PULL q g 7\r\n');
  const [a, b] = await Promise.all([readPulled(c1, 'q'), readPulled(c2, 'q')]);
  t.is(a.length, 7);
  t.is(b.length, 7);
  const seqs = new Set([...a, ...b].map((m) => m.seq));
  t.is(seqs.size, 14);
  // The rest goes to whoever asks; nothing in flight is handed out again.
  const rest = await pull(c2, 'q', 'g', '100');
  t.is(rest.length, 6);
  for (const m of rest) t.false(seqs.has(m.seq));
  t.deepEqual(await pull(c1, 'q', 'g'), []);
});

test('D2.4 two waiting members: each message goes to exactly one of them', async (t) => {
  const { port } = await startTestNode(t);
  const c1 = await open(t, port);
  const c2 = await open(t, port);
  const producer = await open(t, port);
  c1.send('CREATE q\r\n');
  await c1.expect(/^\+CREATED q\r\n/);
  c1.send('PULL q g 10 10s\r\n');
  c2.send('PULL q g 10 10s\r\n');
  // PING barriers: both pulls are registered and waiting.
  t.is(await c1.flushed(), '');
  t.is(await c2.flushed(), '');
  const a = readPulled(c1, 'q', 15_000);
  const b = readPulled(c2, 'q', 15_000);
  await send(producer, 'q', 'first');
  // Whoever got the first is done; the second message wakes the other member.
  await Promise.race([a, b]);
  await send(producer, 'q', 'second');
  const got = [await a, await b].map((ms) => ms.map((m) => m.payload));
  t.deepEqual(got.flat().sort(), ['first', 'second']);
  t.true(got.every((ms) => ms.length === 1));
});

// ---- D3: sending -----------------------------------------------------------------

test('D3.1 +STORED is sent only once the message is in the store', async (t) => {
  const { node, port } = await startTestNode(t);
  const c = await open(t, port);
  await send(c, 'q', 'warm-up');
  const gate = gateWrites(node);
  c.send(sendFrame('q', 'held'));
  // The PONG proves the SEND was handled: no +STORED may come while the sync is held.
  t.is(await c.flushed(), '');
  t.deepEqual(
    (await storedKeys(node)).map((k) => k.seq),
    [1],
  );
  gate.release();
  const s = await expectStored(c);
  t.is(s.seq, 2);
  const keys = await storedKeys(node);
  t.true(keys.some((k) => k.seq === 2 && k.priority === 5));
});

test('D3.1 many sends share one sync (group commit)', async (t) => {
  const { node, port } = await startTestNode(t);
  const c = await open(t, port);
  await send(c, 'q', 'warm-up');
  const gate = gateWrites(node);
  const n = 200;
  let frames = '';
  for (let i = 0; i < n; i++) frames += sendFrame('q', `m${i}`);
  c.send(frames);
  t.is(await c.flushed(), '');
  gate.release();
  for (let i = 0; i < n; i++) t.is((await expectStored(c)).seq, i + 2);
  t.true(gate.batches() <= n / 10, `${gate.batches()} batches for ${n} sends`);
});

test('D3.1/D3.2 assigned ids are 32 hex digits, given ids are kept; the record exists after +STORED', async (t) => {
  const { node, port } = await startTestNode(t);
  const c = await open(t, port);
  const a = await send(c, 'orders', 'first order');
  t.is(a.dest, 'orders');
  t.regex(a.id, /^[0-9a-f]{32}$/);
  const b = await send(c, 'orders', 'second');
  t.regex(b.id, /^[0-9a-f]{32}$/);
  t.not(a.id, b.id);
  const given = await send(c, 'orders', 'third', 'id=order-42/eu:x');
  t.is(given.id, 'order-42/eu:x');
  const long = 'i'.repeat(128);
  t.is((await send(c, 'orders', 'x', `id=${long}`)).id, long);
  const keys = await storedKeys(node);
  t.deepEqual(
    keys.map((k) => k.seq),
    [1, 2, 3, 4],
  );
  const msgs = await pull(c, 'orders', 'g');
  t.deepEqual(
    msgs.map((m) => m.id),
    [a.id, b.id, 'order-42/eu:x', long],
  );
});

test('D3.2 ids: empty or over 128 bytes refused', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  c.send(sendFrame('q', 'x', 'id='));
  t.regex(await expectErr(c), /^id must be 1-128 bytes/);
  c.send(sendFrame('q', 'x', `id=${'i'.repeat(129)}`));
  t.regex(await expectErr(c), /^id must be 1-128 bytes/);
  t.is((await send(c, 'q', 'ok')).seq, 1);
});

test('D3.2 a given UTF-8 id comes back byte for byte in +STORED and DMSG', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  const id = 'bestellung-à-ü-€-日本';
  const wire = Buffer.from(id, 'utf8').toString('latin1');
  // 128 bytes of UTF-8 (64 two-byte letters) is within the limit.
  const two = 'é'.repeat(64);
  const twoWire = Buffer.from(two, 'utf8').toString('latin1');
  c.send(Buffer.from(`SEND q id=${id} 1\r\na\r\nSEND q id=${two} 1\r\nb\r\n`, 'utf8'));
  t.is((await expectStored(c)).id, wire);
  t.is((await expectStored(c)).id, twoWire);
  const msgs = await pull(c, 'q', 'g');
  t.deepEqual(
    msgs.map((m) => m.id),
    [wire, twoWire],
  );
});

test('D3.2 priority must be 1-10; default 5', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  for (const bad of ['0', '11', '100']) {
    c.send(sendFrame('q', 'x', `priority=${bad}`));
    t.regex(await expectErr(c), /^priority must be 1-10/);
  }
  for (const bad of ['x', '-1', '1.5', '']) {
    c.send(sendFrame('q', 'x', `priority=${bad}`));
    t.regex(await expectErr(c), /^priority/);
  }
  await send(c, 'q', 'p1', 'priority=1');
  await send(c, 'q', 'p10', 'PRIORITY=10');
  await send(c, 'q', 'p5');
  const msgs = await pull(c, 'q', 'g');
  t.deepEqual(
    msgs.map((m) => [m.payload, m.priority]),
    [
      ['p10', 10],
      ['p5', 5],
      ['p1', 1],
    ],
  );
});

test('D3.3 seq numbers a destination from 1 and never goes back', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  for (let i = 1; i <= 5; i++) t.is((await send(c, 'a', 'x')).seq, i);
  t.is((await send(c, 'b', 'x')).seq, 1);
  const msgs = await pull(c, 'a', 'g');
  for (const m of msgs) c.send(`ACK ${m.handle}\r\n`);
  const d = await dest(c, 'a');
  t.is(d.depth, 0);
  t.is(d.lastSeq, 5);
  t.is((await send(c, 'a', 'x')).seq, 6);
});

test('D3.4 a second send with the same id is a duplicate with the original seq', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  const first = await send(c, 'q', 'one', 'id=abc');
  t.deepEqual(first, { dest: 'q', seq: 1, id: 'abc', duplicate: false });
  await send(c, 'q', 'other');
  const dup = await send(c, 'q', 'two', 'id=abc');
  t.deepEqual(dup, { dest: 'q', seq: 1, id: 'abc', duplicate: true });
  // Per destination: the same id elsewhere is new.
  t.deepEqual(await send(c, 'r', 'one', 'id=abc'), { dest: 'r', seq: 1, id: 'abc', duplicate: false });
  const msgs = await pull(c, 'q', 'g');
  t.deepEqual(
    msgs.map((m) => m.payload),
    ['one', 'other'],
  );
  // Still a duplicate after it was acked and removed, within the window.
  for (const m of msgs) c.send(`ACK ${m.handle}\r\n`);
  t.deepEqual(await send(c, 'q', 'three', 'id=abc'), { dest: 'q', seq: 1, id: 'abc', duplicate: true });
  t.is((await dest(c, 'q')).depth, 0);
});

test('D3.4 inside the dedup window a duplicate; after it the same id is stored again', async (t) => {
  const window = 1000;
  const { port } = await startTestNode(t, { dedupWindowMs: window });
  const c = await open(t, port);
  // The first send is stored at a time >= t0 and the second judged at a time
  // <= t2: when t2 - t0 < window it must be a duplicate. A run so slow that
  // it cannot tell is tried again with a new id.
  let t1 = 0;
  let id = '';
  for (let attempt = 0; ; attempt++) {
    id = `k${attempt}`;
    const t0 = Date.now();
    const first = await send(c, 'q', 'one', `id=${id}`);
    t.false(first.duplicate);
    t1 = Date.now();
    const second = await send(c, 'q', 'again', `id=${id}`);
    if (Date.now() - t0 < window) {
      t.deepEqual(second, { ...first, duplicate: true });
      break;
    }
    if (attempt === 4) t.fail('five attempts, none inside the window');
  }
  // The first was stored by t1: once t1 + window has passed it is outside.
  await until(t1 + window + 1);
  const again = await send(c, 'q', 'later', `id=${id}`);
  t.false(again.duplicate);
  t.is(again.id, id);
  t.is((await dest(c, 'q')).lastSeq, again.seq);
});

test('D3.4 concurrent sends with one id in one write: one stored, the others duplicates', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  const c2 = await open(t, port);
  c.send(sendFrame('q', 'a', 'id=same') + sendFrame('q', 'b', 'id=same') + sendFrame('q', 'c', 'id=same'));
  const got = [await expectStored(c), await expectStored(c), await expectStored(c)];
  t.deepEqual(
    got.map((s) => [s.seq, s.duplicate]),
    [
      [1, false],
      [1, true],
      [1, true],
    ],
  );
  t.deepEqual(await send(c2, 'q', 'd', 'id=same'), { dest: 'q', seq: 1, id: 'same', duplicate: true });
  const d = await dest(c, 'q');
  t.is(d.depth, 1);
  t.is(d.lastSeq, 1);
  const msgs = await pull(c, 'q', 'g');
  t.deepEqual(
    msgs.map((m) => m.payload),
    ['a'],
  );
});

test('D3.5 answers come in send order, errors included, even while the sync is held', async (t) => {
  const { node, port } = await startTestNode(t);
  const c = await open(t, port);
  await send(c, 'q', 'first', 'id=known');
  const gate = gateWrites(node);
  c.send(
    sendFrame('q', 'a') +
      sendFrame('q', 'b', 'priority=0') +
      sendFrame('q', 'c', 'id=known') +
      sendFrame('bad..name', 'd') +
      sendFrame('q', 'e', 'id=e'),
  );
  // Every later answer waits for the first send's sync.
  t.is(await c.flushed(), '');
  gate.release();
  const seq2 = await expectStored(c);
  t.is(seq2.seq, 2);
  t.regex(await expectErr(c), /^priority must be 1-10/);
  t.deepEqual(await expectStored(c), { dest: 'q', seq: 1, id: 'known', duplicate: true });
  t.regex(await expectErr(c), /^invalid destination name/);
  t.deepEqual(await expectStored(c), { dest: 'q', seq: 3, id: 'e', duplicate: false });
});

test('D3.5 SEND then PULL, CREATE or DESTS on one connection sees the message', async (t) => {
  const { node, port } = await startTestNode(t);
  const c = await open(t, port);
  await send(c, 'warm', 'x');
  const gate = gateWrites(node);
  c.send(`${sendFrame('q', 'hello')}PULL q g\r\n`);
  t.is(await c.flushed(), '');
  gate.release();
  await expectStored(c);
  const [m] = await readPulled(c, 'q');
  t.is(m!.payload, 'hello');
  // In one write, without a gate, too.
  c.send(`${sendFrame('q2', 'x')}DESTS\r\n`);
  await expectStored(c);
  const m2 = await c.expect(
    /^DEST q depth=1 [^\r\n]*\r\nDEST q2 depth=1 [^\r\n]*\r\nDEST warm [^\r\n]*\r\n\+DESTS 3\r\n/,
  );
  t.truthy(m2);
  c.send(`${sendFrame('q3', 'x')}CREATE q3 max_msgs=5\r\n`);
  await expectStored(c);
  await c.expect(/^\+EXISTS q3\r\n/);
});

test('D3.6 backpressure: with 1024 sends awaiting their sync the node stops reading the connection', async (t) => {
  const { node, port } = await startTestNode(t);
  const c = await open(t, port);
  await send(c, 'q', 'warm-up');
  const gate = gateWrites(node);
  const n = 1200;
  const payload = 'p'.repeat(1024); // 1 KiB sends: 1024 of them span many socket reads
  let frames = '';
  for (let i = 0; i < n; i++) frames += sendFrame('q', payload);
  c.send(`${frames}PING\r\n`);
  const conn = [...node.server.connections.values()][0]!;
  await waitFor(() => conn.socket.isPaused(), 'the node to stop reading');
  // Paused before it read the PING: no answer at all yet.
  t.is(c.buffer, '');
  gate.release();
  // Reading resumes once half are answered: the PONG comes after at least 512 +STORED.
  const m = await c.expect(/^((?:\+STORED q \d+ [0-9a-f]{32}\r\n)*)PONG\r\n/, 10_000);
  const before = m[1]!.split('\r\n').length - 1;
  t.true(before >= 512, `${before} answers before the PONG`);
  for (let i = before; i < n; i++) await expectStored(c);
  t.false(conn.socket.isPaused());
  t.is((await dest(c, 'q')).depth, n + 1);
});

test('D3.8 refused sends store nothing, the connection stays open, and what was confirmed is kept', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  c.send('CREATE q max_msgs=1\r\n');
  await c.expect(/^\+CREATED q\r\n/);
  await send(c, 'q', 'kept');
  c.send(sendFrame('q', 'refused'));
  t.is(await expectErr(c), 'destination q is full (max_msgs 1)');
  const d = await dest(c, 'q');
  t.is(d.depth, 1);
  t.is(d.lastSeq, 1);
  const [m] = await pull(c, 'q', 'g');
  t.is(m!.payload, 'kept');
  c.send(`ACK ${m!.handle}\r\n`);
  t.is((await send(c, 'q', 'next')).seq, 2);
});

// ---- D4: pulling and settling ------------------------------------------------------

test('D4.1 DMSG format, handle, and +PULLED', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  const before = Date.now();
  const s = await send(c, 'orders', 'first order', 'priority=9');
  const after = Date.now();
  c.send('PULL orders billing 10 5s\r\n');
  const m = await c.expect(/^DMSG orders (\S+) (\S+) 9 1 (\d+) 0 11\r\nfirst order\r\n\+PULLED orders 1\r\n/);
  t.is(m[1], `${s.seq}/1/billing/orders`);
  t.is(m[2], s.id);
  const ts = Number(m[3]);
  t.true(ts >= before && ts <= after, `${before} <= ${ts} <= ${after}`);
  c.send(`ACK ${m[1]}\r\nDESTS\r\n`);
  await c.expect(/^DEST orders depth=0 bytes=0 last_seq=1 groups=billing:0\/0\/0\r\n\+DESTS 1\r\n/);
  t.pass();
});

test('D4.1 PULL takes up to batch (default performance.batch_size) and empty payloads', async (t) => {
  const { port } = await startTestNode(t, { batchSize: 3 });
  const c = await open(t, port);
  for (let i = 0; i < 5; i++) await send(c, 'q', i === 0 ? '' : `m${i}`);
  const a = await pull(c, 'q', 'g');
  t.is(a.length, 3);
  t.is(a[0]!.payload, '');
  t.is((await pull(c, 'q', 'g', '1')).length, 1);
  t.is((await pull(c, 'q', 'g', '100')).length, 1);
  t.deepEqual(await pull(c, 'q', 'g', '100'), []);
});

test('D4.1 a PULL with wait gets a later SEND from another connection', async (t) => {
  const { port } = await startTestNode(t);
  const consumer = await open(t, port);
  const producer = await open(t, port);
  consumer.send('CREATE q\r\n');
  await consumer.expect(/^\+CREATED q\r\n/);
  consumer.send('PULL q g 10 10s\r\n');
  t.is(await consumer.flushed(), '');
  const started = Date.now();
  await send(producer, 'q', 'late');
  const msgs = await readPulled(consumer, 'q');
  t.is(msgs.length, 1);
  t.is(msgs[0]!.payload, 'late');
  t.true(Date.now() - started < 9000);
});

test('D4.1 a PULL with wait and nothing sent answers +PULLED 0 after the wait', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  c.send('CREATE q\r\n');
  await c.expect(/^\+CREATED q\r\n/);
  const started = Date.now();
  c.send('PULL q g 1 300ms\r\n');
  // Other verbs are answered while the pull waits.
  t.is(await c.flushed(), '');
  t.deepEqual(await readPulled(c, 'q'), []);
  t.true(Date.now() - started >= 295, `answered after ${Date.now() - started} ms`);
  c.send('PULL q g 1 0\r\n');
  t.deepEqual(await readPulled(c, 'q'), []);
});

test('D4.1 PULL of a name that is not a destination: unknown destination', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  c.send('PULL nowhere g\r\n');
  t.regex(await expectErr(c), /^unknown destination/);
  t.is(await c.flushed(), '');
});

test('D4.1 ack_timeout= on PULL sets the group ack timeout from then on', async (t) => {
  const { port } = await startTestNode(t); // default ack timeout 5 s
  const c = await open(t, port);
  await send(c, 'q', 'a');
  await send(c, 'q', 'b');
  // In one write: the second pull, without the option, keeps the group's 2 s.
  c.send('PULL q g 1 0 ack_timeout=2s\r\nPULL q g 1\r\n');
  const [a] = await readPulled(c, 'q');
  const [b] = await readPulled(c, 'q');
  t.is(a!.payload, 'a');
  t.is(b!.payload, 'b');
  // A 4 s wait ends before the default 5 s: only the 2 s timeout can redeliver in it.
  const again = await pull(c, 'q', 'g', '2 4s');
  t.true(again.length >= 1);
  t.is(again[0]!.payload, 'a');
  t.is(again[0]!.deliveries, 2);
});

test('D4.2 ACK removes the message; DESTS shows it', async (t) => {
  const { node, port } = await startTestNode(t);
  const c = await open(t, port);
  await send(c, 'q', 'a');
  await send(c, 'q', 'b');
  const msgs = await pull(c, 'q', 'g');
  t.is((await dest(c, 'q')).groups, 'g:0/2/0');
  c.send(`ACK ${msgs[0]!.handle}\r\n`);
  const d = await dest(c, 'q');
  t.is(d.depth, 1);
  t.is(d.groups, 'g:0/1/0');
  await waitFor(async () => (await storedKeys(node)).length === 1, 'the acked record to be deleted');
  t.deepEqual(
    (await storedKeys(node)).map((k) => k.seq),
    [2],
  );
});

test('D4.3 NAK delivers again at once with deliveries+1', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  const s = await send(c, 'q', 'again', 'id=n1');
  const [m1] = await pull(c, 'q', 'g');
  t.is(m1!.deliveries, 1);
  c.send(`NAK ${m1!.handle}\r\n`);
  const [m2] = await pull(c, 'q', 'g');
  t.is(m2!.deliveries, 2);
  t.is(m2!.handle, `${s.seq}/2/g/q`);
  t.is(m2!.id, 'n1');
  t.is(m2!.payload, 'again');
  t.is(m2!.timestampMs, m1!.timestampMs);
});

test('D4.3 NAK with a delay holds the message for the group until the delay ends', async (t) => {
  const delay = 1000;
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  const other = await open(t, port);
  await send(c, 'q', 'held');
  const [m1] = await pull(c, 'q', 'g');
  const nakAt = Date.now();
  // The PULLs go in the same write as the NAK: handled right after it, long before it ends.
  c.send(`NAK ${m1!.handle} ${delay}ms\r\nPULL q g\r\nPULL q h\r\n`);
  // Held for the group...
  t.deepEqual(await readPulled(c, 'q'), []);
  // ...but not for another group.
  const [h] = await readPulled(c, 'q');
  t.is(h!.payload, 'held');
  const [m2] = await pull(other, 'q', 'g', '1 5s');
  t.is(m2!.deliveries, 2);
  t.true(m2!.receivedAt - nakAt >= delay - 5, `redelivered ${m2!.receivedAt - nakAt} ms after the NAK`);
});

test('D4.3/D2.5 a NAK delay still holds the message after a restart', async (t) => {
  const ackTimeout = 1500;
  const delay = 4000; // ends well after the delivery's own ack deadline
  const first = await startTestNode(t, { ackTimeoutMs: ackTimeout });
  const c = await open(t, first.port);
  // If the NAK comes after the ack deadline (-ERR), try again with a new message.
  let nakAt = 0;
  let q = '';
  for (let attempt = 0; ; attempt++) {
    q = `q${attempt}`;
    await send(c, q, 'held');
    const [m1] = await pull(c, q, 'g');
    nakAt = Date.now();
    c.send(`NAK ${m1!.handle} ${delay}ms\r\n`);
    if ((await c.flushed()) === '') break;
    if (attempt === 4) return t.fail('five attempts, no NAK in time');
  }
  await first.node.stop();
  // The same data dir (and so the same master key) on a new node.
  const second = await startTestNode(t, { ackTimeoutMs: ackTimeout, dataDir: first.node.options.dataDir });
  const c2 = await open(t, second.port);
  const [m2] = await pull(c2, q, 'g', '1 10s');
  t.is(m2!.deliveries, 2);
  t.true(m2!.receivedAt - nakAt >= delay - 5, `redelivered ${m2!.receivedAt - nakAt} ms after the NAK`);
});

test('D4.4 WIP restarts the ack timer: no redelivery before the new deadline', async (t) => {
  const ackTimeout = 1000;
  const { port } = await startTestNode(t, { ackTimeoutMs: ackTimeout });
  const c = await openVerbose(t, port);
  // If the WIP comes too late (the first deadline passed: -ERR), try again with a new message.
  for (let attempt = 0; attempt < 5; attempt++) {
    const q = `q${attempt}`;
    c.send(sendFrame(q, 'slow job'));
    await expectStored(c);
    c.send(`PULL ${q} g\r\n`);
    const [m1] = await readPulled(c, q);
    await until(m1!.receivedAt + ackTimeout / 2);
    const wipAt = Date.now();
    c.send(`WIP ${m1!.handle}\r\n`);
    const answer = await c.expect(/^(?:\+OK|-ERR '[^']*')\r\n/);
    if (answer[0].startsWith('-ERR')) continue;
    // +OK: it was still in flight, and its deadline is now at least wipAt + ackTimeout.
    c.send(`PULL ${q} g 1 5s\r\n`);
    const [m2] = await readPulled(c, q);
    t.is(m2!.deliveries, 2);
    t.true(
      m2!.receivedAt >= wipAt + ackTimeout - 5,
      `redelivered ${m2!.receivedAt - wipAt} ms after WIP (ack timeout ${ackTimeout})`,
    );
    // The old handle is no longer in flight.
    c.send(`ACK ${m1!.handle}\r\n`);
    t.regex((await c.expect(ERR_RE))[1]!, /^unknown or expired handle/);
    return;
  }
  t.fail('five attempts, no WIP in time');
});

test('D4.5/D6.1 TERM moves the message to X.DLQ with its id, priority, headers and payload', async (t) => {
  const { node, port } = await startTestNode(t);
  const c = await open(t, port);
  const s = await send(c, 'q', 'poison', 'id=bad-1 priority=8');
  await send(c, 'q', 'fine');
  const [m] = await pull(c, 'q', 'workers', '1');
  c.send(`TERM ${m!.handle}\r\n`);
  await waitDepth(node, 'q.DLQ', 1);
  const d = await dests(c);
  t.is(d.get('q')!.depth, 1);
  t.is(d.get('q')!.groups, 'workers:1/0/0');
  t.is(d.get('q.DLQ')!.lastSeq, 1);
  const [dl] = await pull(c, 'q.DLQ', 'ops');
  t.is(dl!.id, s.id);
  t.is(dl!.priority, 8);
  t.is(dl!.payload, 'poison');
  t.is(dl!.timestampMs, m!.timestampMs);
  t.is(dl!.handle, '1/1/ops/q.DLQ');
  // D6.1: the DMSG header block says where it came from and why.
  t.is(dl!.headers.toString(), 'NATS/1.0\r\nSwarmMQ-Dead-Letter: q/workers/term\r\n\r\n');
  // The stored producer field says the same.
  const [inspect] = await node.durable.pull({ destination: 'q.DLQ', group: 'inspect', max: 10, waitMs: 0 });
  t.is(inspect!.producer, 'q/workers/term');
  t.is(inspect!.payload.toString(), 'poison');
  t.is(node.durable.stats.deadLettered, 1);
  // The termed handle is gone.
  c.send(`ACK ${m!.handle}\r\n`);
  t.regex(await expectErr(c), /^unknown or expired handle/);
});

test('D4.5 TERM by one group leaves the message for the other', async (t) => {
  const { node, port } = await startTestNode(t);
  const c = await open(t, port);
  await send(c, 'q', 'x');
  const [a] = await pull(c, 'q', 'A');
  const [b] = await pull(c, 'q', 'B');
  c.send(`TERM ${a!.handle}\r\n`);
  await waitDepth(node, 'q.DLQ', 1);
  let d = await dest(c, 'q');
  t.is(d.depth, 1);
  t.is(d.groups, 'A:0/0/1,B:0/1/0');
  c.send(`ACK ${b!.handle}\r\n`);
  d = await dest(c, 'q');
  t.is(d.depth, 0);
});

test('D4.6 a delivery not settled within the ack timeout is delivered again', async (t) => {
  const ackTimeout = 1000;
  const { port } = await startTestNode(t, { ackTimeoutMs: ackTimeout });
  const c = await open(t, port);
  await send(c, 'q', 'retry me');
  const pulledAt = Date.now(); // the deadline is at least this + ackTimeout
  const [m1] = await pull(c, 'q', 'g');
  // The redelivery gets a long timeout, so the ACK below is in time however slow the run.
  const [m2] = await pull(c, 'q', 'g', '1 5s ack_timeout=1m');
  t.is(m2!.payload, 'retry me');
  t.is(m2!.deliveries, 2);
  t.is(m2!.seq, m1!.seq);
  t.is(m2!.handle, `${m1!.seq}/2/g/q`);
  t.true(m2!.receivedAt - pulledAt >= ackTimeout - 5, `${m2!.receivedAt - pulledAt} ms`);
  // The first delivery's handle is stale now.
  c.send(`ACK ${m1!.handle}\r\n`);
  t.regex(await expectErr(c), /^unknown or expired handle/);
  c.send(`ACK ${m2!.handle}\r\n`);
  t.is((await dest(c, 'q')).depth, 0);
});

test('D2.4/D4.6 a delivery that times out while being read is not handed out as well as its redelivery', async (t) => {
  const ackTimeout = 200;
  const { node, port } = await startTestNode(t, { ackTimeoutMs: ackTimeout });
  const c1 = await open(t, port);
  const c2 = await open(t, port);
  await send(c1, 'q', 'contended');
  const release = gateFirstRead(node);
  c1.send('PULL q g\r\n');
  // c1 took delivery 1, whose read is held; it times out and c2 gets delivery 2.
  // (Delivery 2 gets a long timeout, so the ACK below is in time however slow the run.)
  const [m2] = await pull(c2, 'q', 'g', '1 5s ack_timeout=1m');
  t.is(m2!.handle, '1/2/g/q');
  release();
  // Delivery 1 is no longer in flight: c1 must not get the message as well.
  t.deepEqual(await readPulled(c1, 'q'), []);
  c2.send(`ACK ${m2!.handle}\r\n`);
  t.is((await dest(c2, 'q')).depth, 0);
});

test('D4.6/D6.1 a delivery dead-lettered while being read is not handed out', async (t) => {
  const { node, port } = await startTestNode(t, { ackTimeoutMs: 100, maxDeliveries: 1 });
  const c = await open(t, port);
  await send(c, 'q', 'doomed');
  const releaseRead = gateFirstRead(node);
  // Dead-lettering reads the message with get(): hold that too, to look in between.
  const db = node.durable.db as unknown as { get: (k: Buffer) => Promise<Buffer | undefined> };
  const get = db.get.bind(db);
  let getCalled = false;
  let releaseGet!: () => void;
  const getGate = new Promise<void>((r) => (releaseGet = r));
  db.get = async (k) => {
    getCalled = true;
    await getGate;
    return get(k);
  };
  c.send('PULL q g\r\n');
  await waitFor(() => getCalled, 'the timed-out delivery to be dead-lettered');
  releaseRead();
  t.deepEqual(await readPulled(c, 'q'), []);
  releaseGet();
  await waitDepth(node, 'q.DLQ', 1);
  t.is((await dest(c, 'q')).depth, 0);
});

test('D4.6 a consumer that disconnects leaves its deliveries in flight until their deadline', async (t) => {
  const ackTimeout = 1000;
  const { port } = await startTestNode(t, { ackTimeoutMs: ackTimeout });
  const c1 = await open(t, port);
  const c2 = await open(t, port);
  await send(c1, 'q', 'orphan');
  const pulledAt = Date.now();
  const [m1] = await pull(c1, 'q', 'g');
  t.is(m1!.deliveries, 1);
  c1.socket.destroy();
  await c1.waitClosed();
  const [m2] = await pull(c2, 'q', 'g', '1 5s');
  t.is(m2!.payload, 'orphan');
  t.is(m2!.deliveries, 2);
  t.true(m2!.receivedAt - pulledAt >= ackTimeout - 5, `${m2!.receivedAt - pulledAt} ms`);
});

test('D4.6 a message nak-ed once more after max_deliveries goes to X.DLQ', async (t) => {
  const { node, port } = await startTestNode(t, { maxDeliveries: 2 });
  const c = await open(t, port);
  await send(c, 'q', 'doomed', 'id=d1');
  const [m1] = await pull(c, 'q', 'g');
  c.send(`NAK ${m1!.handle}\r\n`);
  const [m2] = await pull(c, 'q', 'g');
  t.is(m2!.deliveries, 2);
  c.send(`NAK ${m2!.handle}\r\n`);
  await waitDepth(node, 'q.DLQ', 1);
  t.deepEqual(await pull(c, 'q', 'g'), []);
  t.is((await dest(c, 'q')).depth, 0);
  const [dl] = await pull(c, 'q.DLQ', 'ops');
  t.is(dl!.id, 'd1');
  t.is(dl!.payload, 'doomed');
  t.is(dl!.deliveries, 1);
  const [inspect] = await node.durable.pull({ destination: 'q.DLQ', group: 'inspect', max: 1, waitMs: 0 });
  t.is(inspect!.producer, 'q/g/max_deliveries');
});

test('D4.6 max_deliveries by ack timeout; max_deliveries=0 via CREATE means no limit', async (t) => {
  const { node, port } = await startTestNode(t, { maxDeliveries: 1, ackTimeoutMs: 150 });
  const c = await open(t, port);
  await send(c, 'q', 'times out');
  // Delivery 1 (not handed out at all if a slow read outlasts its 150 ms: then it timed out already).
  const first = await pull(c, 'q', 'g');
  t.true(first.every((m) => m.deliveries === 1));
  await waitDepth(node, 'q.DLQ', 1);
  t.is((await dest(c, 'q')).depth, 0);
  // q.DLQ takes the node's 150 ms ack timeout and max_deliveries 1 too: a slow read
  // would let the inspecting delivery time out and be dropped, so this group waits longer.
  const [inspect] = await node.durable.pull({
    destination: 'q.DLQ',
    group: 'inspect',
    max: 1,
    waitMs: 0,
    ackTimeoutMs: 60_000,
  });
  t.is(inspect!.producer, 'q/g/max_deliveries');

  c.send('CREATE unlimited max_deliveries=0 ack_timeout=1m\r\n');
  await c.expect(/^\+CREATED unlimited\r\n/);
  await send(c, 'unlimited', 'forever');
  for (let i = 1; i <= 4; i++) {
    const [m] = await pull(c, 'unlimited', 'g');
    t.is(m!.deliveries, i);
    c.send(`NAK ${m!.handle}\r\n`);
  }
  t.false(node.durable.isDestination('unlimited.DLQ'));
});

test('D4.7 PULL limits: batch 1-10000, wait at most 5 min, 64 waiting pulls per connection', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  c.send('CREATE q\r\n');
  await c.expect(/^\+CREATED q\r\n/);
  for (const bad of ['0', '10001', 'x', '-1']) {
    c.send(`PULL q g ${bad}\r\n`);
    t.regex(await expectErr(c), /^PULL batch must be 1-10000/, bad);
  }
  c.send('PULL q g 10000 5m\r\nPULL q g 1 301s\r\n');
  t.regex(await expectErr(c), /^PULL wait must be at most 300000 ms/);
  for (let i = 1; i < 64; i++) c.send('PULL q g 1 30s\r\n');
  t.is(await c.flushed(), '');
  c.send('PULL q g 1 30s\r\n');
  t.regex(await expectErr(c), /^too many PULLs waiting on this connection \(max 64\)/);
  // The connection still works; a send wakes the first waiting pull.
  const other = await open(t, port);
  await send(other, 'q', 'wake');
  const [m] = await readPulled(c, 'q');
  t.is(m!.payload, 'wake');
});

test('D4.8 higher priority first, then seq; a redelivered message takes its place again', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  const prios = [1, 5, 10, 5, 1, 10, 7];
  for (let i = 0; i < prios.length; i++) await send(c, 'q', `s${i + 1}`, `priority=${prios[i]}`);
  const first = await pull(c, 'q', 'g', '3');
  t.deepEqual(
    first.map((m) => [m.payload, m.priority]),
    [
      ['s3', 10],
      ['s6', 10],
      ['s7', 7],
    ],
  );
  const second = await pull(c, 'q', 'g', '1');
  t.deepEqual(
    second.map((m) => m.payload),
    ['s2'],
  );
  // Back go s6 (10) and s2 (5): s6 first again, and s2 before s4.
  c.send(`NAK ${second[0]!.handle}\r\nNAK ${first[1]!.handle}\r\n`);
  const rest = await pull(c, 'q', 'g');
  t.deepEqual(
    rest.map((m) => [m.payload, m.deliveries]),
    [
      ['s6', 2],
      ['s2', 2],
      ['s4', 1],
      ['s1', 1],
      ['s5', 1],
    ],
  );
});

test('D4.8 priority order holds across many messages and a batch boundary', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  let frames = '';
  const sent: { p: number; i: number }[] = [];
  for (let i = 0; i < 300; i++) {
    const p = ((i * 7) % 10) + 1;
    sent.push({ p, i });
    frames += sendFrame('q', `m${i}`, `priority=${p}`);
  }
  c.send(frames);
  for (let i = 0; i < 300; i++) await expectStored(c);
  const got = [...(await pull(c, 'q', 'g', '128')), ...(await pull(c, 'q', 'g', '1000'))];
  const want = [...sent].sort((a, b) => b.p - a.p || a.i - b.i).map((s) => `m${s.i}`);
  t.deepEqual(
    got.map((m) => m.payload),
    want,
  );
});

test('D4.9 stale or unknown handles: -ERR, nothing changes, the connection stays open', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  await send(c, 'q', 'x');
  const [m] = await pull(c, 'q', 'g');
  c.send(`ACK ${m!.handle}\r\n`);
  for (const verb of ['ACK', 'NAK', 'WIP', 'TERM']) {
    c.send(`${verb} ${m!.handle}\r\n`);
    t.is(await expectErr(c), `unknown or expired handle ${m!.handle}`);
  }
  await send(c, 'q', 'y');
  const [m2] = await pull(c, 'q', 'g');
  for (const h of [
    `${m2!.seq}/2/g/q`, // a delivery that never happened
    `${m2!.seq}/1/other/q`, // another group
    `${m2!.seq}/1/g/nowhere`, // another destination
    `99/1/g/q`,
    'garbage',
    '1/1/g',
  ]) {
    c.send(`ACK ${h}\r\n`);
    t.regex(await expectErr(c), /^unknown or expired handle/, h);
  }
  // Nothing changed: the real handle still works.
  t.is((await dest(c, 'q')).groups, 'g:0/1/0');
  c.send(`ACK ${m2!.handle}\r\n`);
  t.is((await dest(c, 'q')).depth, 0);
});

test('D4.9 with verbose on, a successful settle gets +OK', async (t) => {
  const { port } = await startTestNode(t);
  const c = await openVerbose(t, port);
  for (let i = 0; i < 4; i++) {
    c.send(sendFrame('q', `m${i}`));
    await expectStored(c);
  }
  c.send('PULL q g\r\n');
  const [a, b, cc, d] = await readPulled(c, 'q');
  c.send(
    `ACK ${a!.handle}\r\nNAK ${b!.handle}\r\nWIP ${cc!.handle}\r\nTERM ${d!.handle}\r\nACK ${a!.handle}\r\n`,
  );
  await c.expect(/^\+OK\r\n\+OK\r\n\+OK\r\n\+OK\r\n-ERR 'unknown or expired handle [^']*'\r\n/);
  t.pass();
});

// ---- D5: time ---------------------------------------------------------------------------

test('D5.1/D5.2 an expired message is never delivered; it is counted and removed', async (t) => {
  const { node, port } = await startTestNode(t);
  const c = await open(t, port);
  c.send('CREATE q\r\n');
  await c.expect(/^\+CREATED q\r\n/);
  // A group exists before the send, so the message is queued for it.
  t.deepEqual(await pull(c, 'q', 'g'), []);
  await send(c, 'q', 'short', 'ttl=150ms');
  await send(c, 'q', 'long', 'ttl=1h');
  await waitFor(() => node.durable.stats.expired === 1, 'the short one to expire');
  t.is((await dest(c, 'q')).depth, 1);
  const msgs = await pull(c, 'q', 'g');
  t.deepEqual(
    msgs.map((m) => m.payload),
    ['long'],
  );
  t.false(node.durable.isDestination('q.DLQ'));
});

test('D5.1 without a ttl a message gets its destination ttl (CREATE ttl=)', async (t) => {
  const { node, port } = await startTestNode(t);
  const c = await open(t, port);
  c.send('CREATE q ttl=200ms\r\n');
  await c.expect(/^\+CREATED q\r\n/);
  await send(c, 'q', 'default ttl');
  await send(c, 'q', 'own ttl', 'ttl=1h');
  await waitFor(() => node.durable.stats.expired === 1, 'the default-ttl one to expire');
  const msgs = await pull(c, 'q', 'g');
  t.deepEqual(
    msgs.map((m) => m.payload),
    ['own ttl'],
  );
});

test('D5.2 an in-flight message that expires is not redelivered and its handle is stale', async (t) => {
  const { node, port } = await startTestNode(t, { ackTimeoutMs: 60_000 });
  const c = await open(t, port);
  // The PULL in the same write is handled right after the sync, well inside the ttl.
  c.send(`${sendFrame('q', 'x', 'ttl=1s')}PULL q g\r\n`);
  await expectStored(c);
  const [m] = await readPulled(c, 'q');
  t.is(m!.payload, 'x');
  await waitFor(() => node.durable.stats.expired === 1, 'it to expire');
  c.send(`NAK ${m!.handle}\r\n`);
  t.regex(await expectErr(c), /^unknown or expired handle/);
  t.deepEqual(await pull(c, 'q', 'g'), []);
  t.is((await dest(c, 'q')).depth, 0);
});

test('D5.2/D6.1 with dead_letter_expired an expired message goes to X.DLQ', async (t) => {
  const { node, port } = await startTestNode(t);
  const c = await open(t, port);
  c.send('CREATE q dead_letter_expired=true\r\n');
  await c.expect(/^\+CREATED q\r\n/);
  const s = await send(c, 'q', 'stale news', 'ttl=100ms priority=3');
  await waitDepth(node, 'q.DLQ', 1);
  t.is(node.durable.stats.expired, 1);
  t.is((await dest(c, 'q')).depth, 0);
  const [dl] = await pull(c, 'q.DLQ', 'ops');
  t.is(dl!.id, s.id);
  t.is(dl!.payload, 'stale news');
  t.is(dl!.priority, 3);
  const [inspect] = await node.durable.pull({ destination: 'q.DLQ', group: 'inspect', max: 1, waitMs: 0 });
  t.is(inspect!.producer, 'q/*/expired');
  // The copy does not expire in the DLQ.
  t.is(node.durable.list().find((d) => d.name === 'q.DLQ')!.depth, 1);
});

test('D5.3 a delayed message is delivered to no group before timestamp + delay', async (t) => {
  const delay = 1500;
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  // The PULLs wait for the sends (D3.5), then run at once: well inside the delay.
  // 'fresh' is a group made while the message waits.
  c.send(
    `${sendFrame('q', 'later', `delay=${delay}ms`)}${sendFrame('q', 'now')}PULL q g\r\nPULL q fresh\r\n`,
  );
  await expectStored(c);
  await expectStored(c);
  t.deepEqual(
    (await readPulled(c, 'q')).map((m) => m.payload),
    ['now'],
  );
  t.deepEqual(
    (await readPulled(c, 'q')).map((m) => m.payload),
    ['now'],
  );
  t.is((await dest(c, 'q')).depth, 2);
  c.send('PULL q g 1 10s\r\nPULL q fresh 1 10s\r\n');
  const [m] = await readPulled(c, 'q', 15_000);
  const [f] = await readPulled(c, 'q', 15_000);
  for (const d of [m!, f!]) {
    t.is(d.payload, 'later');
    t.true(
      d.receivedAt >= d.timestampMs + delay,
      `delivered ${d.receivedAt - d.timestampMs} ms after its timestamp`,
    );
  }
});

test('D3.1 ttl and delay accept units', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  for (const opt of ['ttl=250000ms', 'ttl=300s', 'ttl=2m', 'ttl=1h', 'delay=0', 'ttl=600000']) {
    await send(c, 'q', 'x', opt);
  }
  for (const bad of ['ttl=soon', 'delay=5x', 'ttl=-1']) {
    c.send(sendFrame('q', 'x', bad));
    t.regex(await expectErr(c), /^(ttl|delay): expected a duration/, bad);
  }
  t.is((await dest(c, 'q')).depth, 6);
});

// ---- D7: administration -------------------------------------------------------------------

test('D7.1 CREATE answers +CREATED, then +EXISTS, and updates settings', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  c.send('CREATE q\r\n');
  await c.expect(/^\+CREATED q\r\n/);
  c.send('create q\r\n');
  await c.expect(/^\+EXISTS q\r\n/);
  for (let i = 0; i < 3; i++) await send(c, 'q', `m${i}`);
  c.send(
    'CREATE q max_msgs=3 ttl=1h max_bytes=100000 max_deliveries=3 ack_timeout=2s dead_letter_expired=false\r\n',
  );
  await c.expect(/^\+EXISTS q\r\n/);
  c.send(sendFrame('q', 'over'));
  t.is(await expectErr(c), 'destination q is full (max_msgs 3)');
  c.send('CREATE q max_msgs=4\r\n');
  await c.expect(/^\+EXISTS q\r\n/);
  t.is((await send(c, 'q', 'fits')).seq, 4);
  c.send('CREATE other\r\n');
  await c.expect(/^\+CREATED other\r\n/);
  t.deepEqual([...(await dests(c)).keys()], ['other', 'q']);
});

test('D7.1 CREATE with bad options: -ERR and the connection continues', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  const cases: [string, RegExp][] = [
    ['CREATE', /^Invalid CREATE arguments, expected: CREATE <destination>/],
    ['CREATE max_msgs=1', /^Invalid CREATE arguments/],
    ['CREATE q bogus=1', /^unknown CREATE option "bogus=1"/],
    ['CREATE q max_msgs', /^unknown CREATE option/],
    ['CREATE q max_msgs=x', /^max_msgs must be a whole number/],
    ['CREATE q ttl=forever', /^ttl: expected a duration/],
    ['CREATE q dead_letter_expired=yes', /^dead_letter_expired must be true or false/],
    [
      'CREATE q ttl=1s ttl=1s ttl=1s ttl=1s ttl=1s ttl=1s ttl=1s ttl=1s bogus=1',
      /^(Invalid CREATE arguments|unknown CREATE option)/,
    ],
  ];
  for (const [line, re] of cases) {
    c.send(`${line}\r\n`);
    t.regex(await expectErr(c), re, line);
  }
  t.is((await dests(c)).size, 0);
  c.send('CREATE q max_msgs=1\r\n');
  await c.expect(/^\+CREATED q\r\n/);
});

test('D7.2 DESTS lists every destination with depth, bytes, last_seq and groups', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  c.send('DESTS\r\n');
  await c.expect(/^\+DESTS 0\r\n/);
  c.send('CREATE empty\r\n');
  await c.expect(/^\+CREATED empty\r\n/);
  for (let i = 0; i < 4; i++) await send(c, 'b.q', 'x'.repeat(10));
  const [m] = await pull(c, 'b.q', 'one', '1');
  await pull(c, 'b.q', 'two', '2');
  c.send(`ACK ${m!.handle}\r\n`);
  const all = await dests(c);
  t.deepEqual([...all.keys()], ['b.q', 'empty']);
  t.deepEqual(all.get('empty'), { name: 'empty', depth: 0, bytes: 0, lastSeq: 0, groups: '-' });
  const b = all.get('b.q')!;
  t.is(b.depth, 4);
  t.is(b.lastSeq, 4);
  t.true(b.bytes >= 4 * 10, `bytes=${b.bytes}`);
  t.is(b.groups, 'one:3/0/1,two:2/2/0');
});

// ---- D8: guarantees and limits ----------------------------------------------------------------

test('D8.3 a stored message whose MAC does not verify is never delivered; it is set aside and counted', async (t) => {
  const { node, port } = await startTestNode(t);
  const c = await open(t, port);
  await send(c, 'q', 'tampered');
  await send(c, 'q', 'intact');
  const [k] = await storedKeys(node);
  const db = node.durable.db;
  const keys: Buffer[] = [];
  for await (const key of db.keys(prefixRange(Prefix.Message))) keys.push(key);
  const key = keys.find((x) => parseMessageKey(x).seq === k!.seq)!;
  const value = Buffer.from((await db.get(key))!);
  value[value.length - 20] = value[value.length - 20]! ^ 1;
  await db.put(key, value);
  const msgs = await pull(c, 'q', 'g');
  t.deepEqual(
    msgs.map((m) => m.payload),
    ['intact'],
  );
  t.is(node.durable.stats.quarantined, 1);
  await waitFor(async () => (await db.get(quarantineKey(key))) !== undefined, 'the record to be set aside');
  t.deepEqual(await db.get(quarantineKey(key)), value);
  t.is((await dest(c, 'q')).depth, 1);
});

test('D8.4 max_msgs per destination: pipelined sends beyond it are refused', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  c.send('CREATE q max_msgs=3\r\n');
  await c.expect(/^\+CREATED q\r\n/);
  let frames = '';
  for (let i = 0; i < 6; i++) frames += sendFrame('q', `m${i}`);
  c.send(frames);
  const answers: string[] = [];
  for (let i = 0; i < 6; i++) {
    const m = await c.expect(/^(?:\+STORED q (\d+) \S+|-ERR '([^']*)')\r\n/);
    answers.push(m[1] ?? m[2]!);
  }
  t.deepEqual(answers, [
    '1',
    '2',
    '3',
    'destination q is full (max_msgs 3)',
    'destination q is full (max_msgs 3)',
    'destination q is full (max_msgs 3)',
  ]);
  t.is((await dest(c, 'q')).depth, 3);
  t.is(await c.flushed(), '');
  t.false(c.closed);
});

test('D8.4 max_bytes per destination: refused before the stored bytes exceed it', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  const max = 2000;
  c.send(`CREATE q max_bytes=${max}\r\n`);
  await c.expect(/^\+CREATED q\r\n/);
  let frames = '';
  for (let i = 0; i < 30; i++) frames += sendFrame('q', 'x'.repeat(100));
  c.send(frames);
  let stored = 0;
  let refused = 0;
  for (let i = 0; i < 30; i++) {
    const m = await c.expect(/^(?:\+STORED q (\d+) \S+|-ERR '([^']*)')\r\n/);
    if (m[1] !== undefined) stored++;
    else {
      t.is(m[2], `destination q is full (max_bytes ${max})`);
      refused++;
    }
  }
  t.true(stored > 0 && refused > 0, `${stored} stored, ${refused} refused`);
  const d = await dest(c, 'q');
  t.is(d.depth, stored);
  t.true(d.bytes <= max, `bytes=${d.bytes} > max_bytes=${max}`);
  t.false(c.closed);
});

test('D8.4 limits.max_destinations: a new destination beyond it is refused', async (t) => {
  const { port } = await startTestNode(t, { maxDestinations: 2 });
  const c = await open(t, port);
  await send(c, 'a', 'x');
  c.send('CREATE b\r\n');
  await c.expect(/^\+CREATED b\r\n/);
  c.send(sendFrame('c', 'x'));
  t.regex(await expectErr(c), /^maximum destinations reached/);
  c.send('CREATE c\r\n');
  t.regex(await expectErr(c), /^maximum destinations reached/);
  // Existing ones still work.
  t.is((await send(c, 'b', 'y')).seq, 1);
  t.deepEqual([...(await dests(c)).keys()], ['a', 'b']);
});

test('D1.3/D8.4 a dead-letter copy is not lost at limits.max_destinations', async (t) => {
  const { node, port } = await startTestNode(t, { maxDestinations: 1 });
  const c = await open(t, port);
  await send(c, 'q', 'precious', 'id=p1');
  const [m] = await pull(c, 'q', 'g');
  c.send(`TERM ${m!.handle}\r\n`);
  await waitDepth(node, 'q.DLQ', 1);
  t.is((await dest(c, 'q')).depth, 0);
  const [d] = await pull(c, 'q.DLQ', 'ops');
  t.is(d!.id, 'p1');
  // New destinations are still refused.
  c.send(sendFrame('r', 'x'));
  t.regex(await expectErr(c), /^maximum destinations reached/);
});

test('D8.4 storage.max_disk_usage: sends are refused once the store would pass it', async (t) => {
  const max = 1024 * 1024;
  const { node, port } = await startTestNode(t, { maxDiskBytes: max });
  const c = await open(t, port);
  const payload = 'z'.repeat(64 * 1024);
  const n = 48; // 3 MiB
  let frames = '';
  for (let i = 0; i < n; i++) frames += sendFrame('q', payload);
  c.send(frames);
  let stored = 0;
  let refused = 0;
  for (let i = 0; i < n; i++) {
    const m = await c.expect(/^(?:\+STORED q (\d+) \S+|-ERR '([^']*)')\r\n/, 10_000);
    if (m[1] !== undefined) stored++;
    else {
      t.regex(m[2]!, /^node disk limit reached/);
      refused++;
    }
  }
  t.true(stored > 0, 'some fit');
  t.true(refused > 0, 'some are refused');
  t.true(stored * payload.length <= max, `${stored} x 64 KiB stored with a 1 MiB limit`);
  const onDisk = dirBytes(path.join(node.options.dataDir, 'store'));
  t.true(onDisk <= max + 32 * 1024, `${onDisk} bytes on disk`);
  // Still open and working: settles free nothing on disk at once, but reads work.
  const d = await dest(c, 'q');
  t.is(d.depth, stored);
  t.is((await pull(c, 'q', 'g', '1')).length, 1);
});

test('D8.4/D3.8 a write that fails is answered -ERR for every send in its batch; later sends are stored', async (t) => {
  const { node, port } = await startTestNode(t);
  const c = await open(t, port);
  await send(c, 'q', 'before');
  type Batch = { write: (o?: unknown) => Promise<void> };
  const db = node.durable.db as unknown as { batch: () => Batch };
  const original = db.batch.bind(db);
  let failing = 2;
  db.batch = () => {
    const batch = original();
    if (failing > 0) {
      failing--;
      batch.write = () => Promise.reject(new Error('IO error: No space left on device'));
    }
    return batch;
  };
  // One write, one batch: a send with an id and one without.
  c.send(sendFrame('q', 'a', 'id=k1') + sendFrame('q', 'b'));
  for (let i = 0; i < 2; i++)
    t.regex(await expectErr(c), /^message not stored: IO error: No space left on device/);
  // A send with an id and its duplicate, written while the first is pending: both refused.
  c.send(sendFrame('q', 'c', 'id=k2') + sendFrame('q', 'd', 'id=k2'));
  for (let i = 0; i < 2; i++)
    t.regex(await expectErr(c), /^message not stored: IO error: No space left on device/);
  // Nothing refused was stored; the node and the connection carry on, and the id is free.
  const again = await send(c, 'q', 'a', 'id=k1');
  t.false(again.duplicate);
  const msgs = await pull(c, 'q', 'g');
  t.deepEqual(
    msgs.map((m) => m.payload),
    ['before', 'a'],
  );
  t.is((await dest(c, 'q')).lastSeq, again.seq);
});

// ---- D9: errors -------------------------------------------------------------------------------

test('D9 bad SEND/PULL/settle arguments: -ERR, the payload is consumed and the connection continues', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  await send(c, 'q', 'x');
  const cases: [string, RegExp][] = [
    [sendFrame('q', 'abc', 'foo=1'), /^unknown SEND option "foo=1", expected: SEND <destination>/],
    [sendFrame('q', 'abc', 'priority'), /^unknown SEND option "priority"/],
    [sendFrame('q', 'abc', 'ttl=1x'), /^ttl: expected a duration/],
    ['PULL q\r\n', /^Invalid PULL arguments, expected: PULL <destination> <group>/],
    ['PULL\r\n', /^Invalid PULL arguments/],
    ['PULL q g 1 1s 2\r\n', /^Invalid PULL arguments/],
    ['PULL q g 1 1s bogus=1\r\n', /^unknown PULL option "bogus=1"/],
    // More arguments than the parser passes on: the excess must not be dropped silently.
    [
      `PULL q g 1 0${' ack_timeout=1s'.repeat(5)} bogus=1\r\n`,
      /^(Invalid PULL arguments|unknown PULL option)/,
    ],
    ['PULL q g 1 soon\r\n', /^wait: expected a duration/],
    ['PULL q g 1 0 ack_timeout=x\r\n', /^ack_timeout: expected a duration/],
    ['ACK\r\n', /^Invalid ACK arguments, expected: ACK <handle>/],
    ['ACK a b\r\n', /^Invalid ACK arguments/],
    ['NAK\r\n', /^Invalid NAK arguments/],
    ['NAK 1/1/g/q soon\r\n', /^delay: expected a duration/],
    ['NAK 1/1/g/q 1s x\r\n', /^Invalid NAK arguments/],
    ['WIP\r\n', /^Invalid WIP arguments/],
    ['TERM 1 2\r\n', /^Invalid TERM arguments/],
  ];
  for (const [frame, re] of cases) {
    c.send(frame);
    t.regex(await expectErr(c), re, JSON.stringify(frame));
  }
  t.is(await c.flushed(), '');
  t.false(c.closed);
  // Nothing was taken by the failed PULLs: the message is still there, delivered once.
  const [m] = await pull(c, 'q', 'g');
  t.is(m!.deliveries, 1);
  t.is((await dest(c, 'q')).depth, 1);
});

test('D9 SEND with an unreadable size closes (the payload cannot be found), as PUB does', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  c.send('SEND q abc\r\n');
  await c.expect(/^-ERR 'Invalid SEND arguments, expected: SEND <destination>[^']*'\r\n/);
  await c.waitClosed();
  t.pass();
});

test('verbs are case-insensitive and LF-only lines work (CLIENT.md C1.1/C1.2)', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  c.send('send q 2\nhi\n');
  await expectStored(c);
  c.send('pull q g\n');
  const [m] = await readPulled(c, 'q');
  t.is(m!.payload, 'hi');
  c.send(`ack ${m!.handle}\ndests\n`);
  await c.expect(/^DEST q depth=0 /);
  t.pass();
});

test('D4.7 one PULL takes at most a quarter of max_pending in bytes, and always at least one message', async (t) => {
  // max_pending 1 MiB: a pull stops once it holds 256 KiB.
  const { port } = await startTestNode(t, { maxPendingBytes: 1024 * 1024 });
  const c = await open(t, port);
  const big = 'x'.repeat(100 * 1024);
  for (let i = 0; i < 10; i++) await send(c, 'big', big);
  const first = await pull(c, 'big', 'g', '10');
  t.is(first.length, 3); // 100 KiB + overhead each: the third passes 256 KiB
  const rest = await pull(c, 'big', 'g', '10');
  t.is(rest.length, 3);
  // A single message larger than the cap still comes, alone.
  const { port: port2 } = await startTestNode(t, { maxPendingBytes: 64 * 1024 });
  const d = await open(t, port2);
  await send(d, 'huge', 'y'.repeat(40 * 1024));
  await send(d, 'huge', 'z');
  t.is((await pull(d, 'huge', 'g', '10')).length, 1);
  t.is((await pull(d, 'huge', 'g', '10')).length, 1);
});

test('D2.6/D7.3 groups per destination are limited; DROP deletes one and frees what only it held', async (t) => {
  const { node, port } = await startTestNode(t, { maxGroupsPerDestination: 2 });
  const c = await open(t, port);
  await send(c, 'q', 'one');
  await send(c, 'q', 'two');
  const [a1] = await pull(c, 'q', 'A', '1');
  await pull(c, 'q', 'B', '10'); // B takes both and never acks
  c.send('PULL q C 1\r\n');
  t.regex(await expectErr(c), /^maximum consumer groups reached for q \(2\); DROP one first/);
  // A acks one; B still holds it.
  c.send(`ACK ${a1!.handle}\r\n`);
  t.is((await dest(c, 'q')).depth, 2);
  c.send('DROP q B\r\n');
  await c.expect(/^\+DROPPED q B\r\n/);
  // Only A is left: the message A acked goes, the other stays for A.
  await waitDepth(node, 'q', 1);
  t.is((await dest(c, 'q')).groups, 'A:1/0/0');
  // B's handles are gone; a new group can be made again.
  const [c1] = await pull(c, 'q', 'C', '1');
  t.is(c1!.payload, 'two');
  c.send('DROP q nosuch\r\n');
  t.regex(await expectErr(c), /^unknown group nosuch of q/);
  c.send('DROP q\r\n');
  t.regex(await expectErr(c), /^Invalid DROP arguments, expected: DROP <destination> <group>/);
});

test('a group that never pulls does not keep stale queue entries for removed messages without bound', async (t) => {
  const { node, port } = await startTestNode(t);
  const c = await open(t, port);
  await send(c, 'q', 'first');
  await pull(c, 'q', 'idle', '1'); // creates the group, which then never pulls again
  await pull(c, 'q', 'busy', '1');
  // 3000 messages pass through: busy acks them; idle never looks; each expires.
  let frames = '';
  for (let i = 0; i < 3000; i++) frames += sendFrame('q', `m${i}`, 'ttl=1');
  c.send(frames);
  for (let i = 0; i < 3000; i++) await expectStored(c);
  await waitFor(() => node.durable.list()[0]!.depth <= 1, 'the messages to expire', 20_000);
  // Only the idle group's queue could hold stale entries; it is rebuilt past 2 x live + 1024.
  const engine = node.durable as unknown as {
    dests: Map<string, { groups: Map<string, { ready: { size: number } }> }>;
  };
  const idle = engine.dests.get('q')!.groups.get('idle')!;
  t.true(idle.ready.size <= 2 * 1 + 1024 + 1, `idle ready queue holds ${idle.ready.size}`);
});
