/**
 * Durability of the real `swarmmq start` process (protocol/DURABLE.md
 * section 8): kill -9 in the middle of a send stream, unsettled deliveries
 * after a crash, group state across a graceful restart, the ack timeout,
 * tampered records, and a full disk. Every node runs in a child process on
 * a temp data dir; every loop is bounded in count and time.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { Level } from 'level';
import { runCli, tempDir, type CliProcess } from '../helpers/process.js';
import { DurableClient, prng, pullAll, type Delivery, type SendReply } from '../helpers/durable-client.js';

interface RunningNode {
  proc: CliProcess;
  port: number;
}

const started = (l: Record<string, unknown>): boolean => l.msg === 'node started';

async function startNode(t: ExecutionContext, dataDir: string, flags: string[] = []): Promise<RunningNode> {
  const proc = runCli(t, ['start', '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir, ...flags]);
  const line = await proc.waitForLog(started, 30_000);
  return { proc, port: line.port as number };
}

async function connect(t: ExecutionContext, node: RunningNode): Promise<DurableClient> {
  const c = await DurableClient.connect(node.port);
  t.teardown(() => c.close());
  return c;
}

/** SIGTERM and wait: a graceful stop must exit 0. */
async function stopGracefully(t: ExecutionContext, node: RunningNode): Promise<void> {
  node.proc.child.kill('SIGTERM');
  t.is(await node.proc.exited, 0, `graceful stop failed: ${node.proc.stderr}`);
}

async function kill9(node: RunningNode): Promise<void> {
  node.proc.child.kill('SIGKILL');
  await node.proc.exited;
}

/** Pulls (with a server-side wait) until `want` distinct ids arrived or the deadline passed. */
async function pullUntil(
  c: DurableClient,
  dest: string,
  group: string,
  want: number,
  timeoutMs: number,
  extra = '',
): Promise<Delivery[]> {
  const out: Delivery[] = [];
  const seen = new Set<string>();
  const deadline = Date.now() + timeoutMs;
  while (seen.size < want && Date.now() < deadline) {
    const got = await c.pull(dest, group, 100, '500ms', extra);
    for (const m of got) {
      out.push(m);
      seen.add(m.id);
    }
  }
  return out;
}

/** Deterministic payload of `len` bytes for an id, so content is checked too. */
function payloadFor(id: string, len: number): Buffer {
  const b = Buffer.alloc(len);
  const seed = Buffer.from(`${id}|`);
  for (let i = 0; i < len; i++) b[i] = seed[i % seed.length]!;
  return b;
}

const byId = (msgs: Delivery[]): Map<string, Delivery> => new Map(msgs.map((m) => [m.id, m]));

// ---------------------------------------------------------------- kill -9 mid-stream

const CRASH_ROUNDS = 4;
/** Outstanding SENDs: more than the node's 1024, so its backpressure (D3.6) is in play. */
const SEND_WINDOW = 1500;
const CRASH_SEED = Number(process.env.SWARMMQ_CRASH_SEED ?? 0x5eed);

test('every +STORED message survives kill -9 at a random point in a pipelined stream, round after round (D8.1, D3.3)', async (t) => {
  t.timeout(110_000);
  const dir = tempDir(t);
  const rand = prng(CRASH_SEED);
  t.log(`seed ${CRASH_SEED} (set SWARMMQ_CRASH_SEED to replay another)`);
  /** Every confirmed id: its seq, priority and payload length. */
  const confirmed = new Map<string, { seq: number; priority: number; len: number }>();
  const sent = new Map<string, { priority: number; len: number }>();
  let maxConfirmedSeq = 0;
  let nextId = 0;

  const verify = async (c: DurableClient, round: number): Promise<void> => {
    // A new group sees every message still stored (D2.3); nothing is acked, so nothing goes away.
    const got = await pullAll(c, 'crash', `verify${round}`);
    const ids = got.map((m) => m.id);
    t.is(new Set(ids).size, ids.length, `round ${round}: an id was delivered twice in one pass`);
    const delivered = byId(got);
    const missing = [...confirmed.keys()].filter((id) => !delivered.has(id));
    t.deepEqual(missing.slice(0, 20), [], `round ${round}: ${missing.length} confirmed messages lost`);
    let bad = 0;
    for (const m of got) {
      const want = sent.get(m.id);
      if (
        want === undefined ||
        m.priority !== want.priority ||
        !m.payload.equals(payloadFor(m.id, want.len))
      ) {
        bad++;
      }
    }
    t.is(bad, 0, `round ${round}: delivered messages whose content differs from what was sent`);
    t.log(
      `round ${round}: ${confirmed.size} confirmed, ${got.length} stored (${got.length - confirmed.size} sent but unconfirmed)`,
    );
  };

  for (let round = 1; round <= CRASH_ROUNDS; round++) {
    const node = await startNode(t, dir, ['--ack-timeout', '60s']);
    const c = await connect(t, node);
    if (round > 1) await verify(c, round);

    const killAt = 300 + Math.floor(rand() * 2700);
    let confirmedThisRound = 0;
    let firstSeqThisRound = 0;
    const refusals: string[] = [];
    let wake: (() => void) | undefined;
    c.onSendReply = (r: SendReply) => {
      if (r.ok) {
        confirmed.set(r.id, { seq: r.seq, ...sent.get(r.id)! });
        if (firstSeqThisRound === 0) firstSeqThisRound = r.seq;
        if (++confirmedThisRound === killAt) node.proc.child.kill('SIGKILL');
      } else refusals.push(r.error ?? '');
      wake?.();
    };
    const deadline = Date.now() + 30_000;
    let sentThisRound = 0;
    while (!c.closed && Date.now() < deadline && sentThisRound < killAt + 50_000) {
      while (c.pendingSends < SEND_WINDOW && !c.closed) {
        const id = `r${round}-m${nextId++}`;
        const priority = 1 + Math.floor(rand() * 10);
        const len = Math.floor(rand() * 600);
        sent.set(id, { priority, len });
        c.send('crash', payloadFor(id, len), { id, priority }).catch(() => undefined); // unconfirmed
        sentThisRound++;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 50);
      });
    }
    await node.proc.exited;
    t.deepEqual(refusals, [], `round ${round}: sends were refused`);
    t.true(confirmedThisRound >= killAt, `round ${round}: only ${confirmedThisRound} of ${killAt} confirmed`);
    // D3.3: seq never goes back: the first seq of a round is past every earlier confirmed one.
    t.true(
      firstSeqThisRound > maxConfirmedSeq,
      `round ${round}: seq ${firstSeqThisRound} reused (had ${maxConfirmedSeq})`,
    );
    for (const v of confirmed.values()) if (v.seq > maxConfirmedSeq) maxConfirmedSeq = v.seq;
    t.log(
      `round ${round}: killed after ${confirmedThisRound} confirmed (target ${killAt}), ${sentThisRound} sent`,
    );
  }
  const seqs = new Set([...confirmed.values()].map((v) => v.seq));
  t.is(seqs.size, confirmed.size, 'two confirmed messages share a seq');

  const node = await startNode(t, dir, ['--ack-timeout', '60s']);
  const c = await connect(t, node);
  await verify(c, CRASH_ROUNDS + 1);
  await stopGracefully(t, node);
});

// ---------------------------------------------------------------- unacked deliveries after kill -9

test('deliveries not settled before kill -9 come back after the restart with deliveries 2 (D8.2, D4.6)', async (t) => {
  t.timeout(60_000);
  const dir = tempDir(t);
  const flags = ['--ack-timeout', '500ms'];
  let node = await startNode(t, dir, flags);
  let c = await connect(t, node);
  const ids = Array.from({ length: 10 }, (_, i) => `u${i + 1}`);
  const replies = await Promise.all(ids.map((id) => c.send('jobs', `job ${id}`, { id })));
  t.true(replies.every((r) => r.ok));
  const pulledAt = Date.now(); // the ack deadlines are at least 500 ms after this
  const first = await c.pull('jobs', 'workers', 4);
  t.deepEqual(
    first.map((m) => [m.id, m.deliveries]),
    ids.slice(0, 4).map((id) => [id, 1]),
  );
  // Group commit writes batches in order: once this send is confirmed, the
  // delivery records of the pull above are synced too (STORAGE.md S4.1).
  t.true((await c.send('barrier', 'x')).ok);
  await kill9(node);

  node = await startNode(t, dir, flags);
  c = await connect(t, node);
  // From now on a long ack timeout (kept by the group), so nothing pulled here times out again meanwhile.
  const got = await pullUntil(c, 'jobs', 'workers', ids.length, 15_000, ' ack_timeout=60s');
  t.true(Date.now() - pulledAt >= 500, 'came back before the ack timeout');
  const seen = byId(got);
  t.deepEqual([...seen.keys()].sort(), [...ids].sort(), 'every message is delivered again');
  for (const id of ids.slice(0, 4))
    t.is(seen.get(id)?.deliveries, 2, `${id}: delivery count after the restart`);
  for (const id of ids.slice(4)) t.is(seen.get(id)?.deliveries, 1, `${id}: never delivered before`);
  for (const m of got) t.is(m.payload.toString(), `job ${m.id}`);
  c.ack(...got.map((m) => m.handle));
  await c.ping();
  const dests = await c.dests();
  t.true(
    dests.some((l) => l.startsWith('DEST jobs depth=0 ')),
    `after acking everything: ${dests.join(' | ')}`,
  );
  await stopGracefully(t, node);
});

// ---------------------------------------------------------------- group state across a graceful restart

test('a graceful restart keeps each group’s acks, its pending messages and the seq counter (D2.5, D3.3)', async (t) => {
  t.timeout(60_000);
  const dir = tempDir(t);
  const flags = ['--ack-timeout', '500ms'];
  let node = await startNode(t, dir, flags);
  let c = await connect(t, node);
  t.is(await c.create('orders'), 'CREATED');
  // Group B exists before any message (a PULL creates it; nothing to take yet).
  t.deepEqual(await c.pull('orders', 'B', 1), []);
  const ids = Array.from({ length: 20 }, (_, i) => `o${i + 1}`);
  const replies = await Promise.all(ids.map((id) => c.send('orders', `order ${id}`, { id })));
  t.deepEqual(
    replies.map((r) => r.seq),
    ids.map((_, i) => i + 1),
  );
  const h = (msgs: Delivery[]): Map<string, string> => new Map(msgs.map((m) => [m.id, m.handle]));

  // Group A: acks o1-o5 and o16-o20, naks o6-o10, leaves o11-o15 in flight.
  const a = h(await c.pull('orders', 'A', 20));
  t.is(a.size, 20);
  c.ack(...[...ids.slice(0, 5), ...ids.slice(15)].map((id) => a.get(id)!));
  for (const id of ids.slice(5, 10)) c.nak(a.get(id)!);
  // Group B: acks o1-o3 and the newest five o16-o20, naks o4-o15.
  const b = h(await c.pull('orders', 'B', 20));
  t.is(b.size, 20);
  c.ack(...[...ids.slice(0, 3), ...ids.slice(15)].map((id) => b.get(id)!));
  for (const id of ids.slice(3, 15)) c.nak(b.get(id)!);
  await c.ping();
  t.deepEqual(c.errors, []);
  // o1-o3 and o16-o20 are done by both groups: removed (D2.2), including the newest messages.
  const before = await c.dests();
  t.true(
    before.some((l) => l.startsWith('DEST orders depth=12 ') && l.includes(' last_seq=20 ')),
    before.join(' | '),
  );
  await stopGracefully(t, node);

  node = await startNode(t, dir, flags);
  c = await connect(t, node);
  // A: exactly o6-o15 (the nak'ed ones and, after their deadline, the in-flight ones), each delivered before once.
  // A long ack timeout from now on, so that nothing pulled here times out again meanwhile.
  const gotA = await pullUntil(c, 'orders', 'A', 10, 10_000, ' ack_timeout=60s');
  const seenA = byId(gotA);
  t.deepEqual([...seenA.keys()].sort(), ids.slice(5, 15).sort(), 'group A after the restart');
  for (const m of seenA.values()) t.is(m.deliveries, 2, `A ${m.id}`);
  c.ack(...gotA.map((m) => m.handle));
  // B: o4-o15.
  const gotB = await pullUntil(c, 'orders', 'B', 12, 10_000, ' ack_timeout=60s');
  const seenB = byId(gotB);
  t.deepEqual([...seenB.keys()].sort(), ids.slice(3, 15).sort(), 'group B after the restart');
  for (const m of seenB.values()) t.is(m.deliveries, 2, `B ${m.id}`);
  // Nothing else comes for A once it acked them (a short wait finds nothing).
  await c.ping();
  t.deepEqual(await c.pull('orders', 'A', 100, '300ms'), [], 'A got a message it had acked');
  // A new group sees what is still stored: o4-o15 (A is done with o6-o15 but B is not).
  const gotC = await pullAll(c, 'orders', 'C');
  t.deepEqual(gotC.map((m) => m.id).sort(), ids.slice(3, 15).sort(), 'a new group after the restart');
  // Seq continues after 20 although 16-20 were removed before the restart.
  const next = await c.send('orders', 'after restart', { id: 'o21' });
  t.true(next.ok);
  t.is(next.seq, 21, 'seq after the restart');
  await stopGracefully(t, node);
});

// ---------------------------------------------------------------- ack timeout

test('an unsettled delivery is redelivered one ack timeout after its own delivery, not earlier (D4.6)', async (t) => {
  t.timeout(60_000);
  const dir = tempDir(t);
  const ACK_TIMEOUT_MS = 1000;
  /**
   * Slack allowed below the timeout: the client clocks each delivery when it
   * arrives, and the first one may have spent longer between the node's take
   * (which sets the deadline) and the socket than the second (a GC pause, a
   * busy CI machine).
   */
  const TOLERANCE_MS = 100;
  const node = await startNode(t, dir, ['--ack-timeout', '1s']);
  const c = await connect(t, node);
  const ids = ['t1', 't2', 't3'];
  for (const id of ids) t.true((await c.send('timed', `m ${id}`, { id })).ok);
  const firstAt = new Map<string, number>();
  // Three deliveries 300 ms apart: each has its own deadline.
  for (let i = 0; i < ids.length; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 300));
    const [m] = await c.pull('timed', 'g', 1);
    t.is(m?.id, ids[i]);
    t.is(m?.deliveries, 1);
    firstAt.set(m!.id, m!.receivedAt);
  }
  const again = new Map<string, Delivery>();
  const deadline = Date.now() + 10_000;
  while (again.size < ids.length && Date.now() < deadline) {
    for (const m of await c.pull('timed', 'g', 1, '2s')) {
      t.false(again.has(m.id), `${m.id} came back twice before it was settled`);
      again.set(m.id, m);
      c.ack(m.handle);
    }
  }
  t.is(again.size, ids.length, 'every unsettled delivery came back within 10 s');
  for (const [id, m] of again) {
    const gap = m.receivedAt - firstAt.get(id)!;
    t.log(`${id}: redelivered ${gap.toFixed(1)} ms after its first delivery`);
    t.true(gap >= ACK_TIMEOUT_MS - TOLERANCE_MS, `${id} redelivered after ${gap.toFixed(1)} ms`);
    t.true(gap < ACK_TIMEOUT_MS + 2000, `${id} redelivered only after ${gap.toFixed(1)} ms`);
    t.is(m.deliveries, 2);
  }
  await stopGracefully(t, node);
});

// ---------------------------------------------------------------- tampered records

test('tampered message records are never delivered: set aside under Q, logged, the rest delivered (D8.3)', async (t) => {
  t.timeout(60_000);
  const dir = tempDir(t);
  let node = await startNode(t, dir);
  let c = await connect(t, node);
  const ids = Array.from({ length: 10 }, (_, i) => `v${i + 1}`);
  for (const id of ids) t.true((await c.send('vault', `secret ${id}`, { id, priority: 5 })).ok);
  await stopGracefully(t, node);

  // Flip one byte inside v3's sealed payload, and change v7's clear priority byte (5 -> 9).
  const storeDir = path.join(dir, 'store');
  const db = new Level<Buffer, Buffer>(storeDir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  const messages: [Buffer, Buffer][] = [];
  for await (const [k, v] of db.iterator({ gte: Buffer.from([0x4d]), lt: Buffer.from([0x4e]) })) {
    messages.push([k, v]);
  }
  t.is(messages.length, ids.length);
  // Key: M destId(4) 10-priority(1) seq(8); seq n is v<n>.
  const bySeq = new Map(messages.map(([k, v]) => [Number(k.readBigUInt64BE(6)), [k, v] as const]));
  const [k3, v3] = bySeq.get(3)!;
  const flipped = Buffer.from(v3);
  const at = flipped.length - 16 - 16 - 4; // inside the ciphertext, before the GCM tag and the MAC
  flipped[at] = flipped[at]! ^ 0x01;
  await db.put(k3, flipped);
  const [k7, v7] = bySeq.get(7)!;
  t.is(v7[2], 5, 'the envelope keeps the priority in its third byte (STORAGE.md 3)');
  const reprioritised = Buffer.from(v7);
  reprioritised[2] = 9;
  await db.put(k7, reprioritised);
  await db.close();

  node = await startNode(t, dir);
  c = await connect(t, node);
  const got = await pullAll(c, 'vault', 'readers', { ack: true, batch: 100 });
  const delivered = got.map((m) => m.id).sort();
  t.deepEqual(delivered, ids.filter((id) => id !== 'v3' && id !== 'v7').sort());
  for (const m of got) {
    t.is(m.payload.toString(), `secret ${m.id}`);
    t.is(m.priority, 5);
  }
  await c.ping();
  // A second group and a second pass: still never delivered.
  t.deepEqual(
    (await pullAll(c, 'vault', 'auditors')).filter((m) => m.id === 'v3' || m.id === 'v7'),
    [],
  );
  await stopGracefully(t, node);
  const errors = node.proc.stdout
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((j) => j.level === 50 && /integrity/i.test(String(j.msg)));
  t.is(errors.length, 2, `error log lines about the integrity check: ${JSON.stringify(errors)}`);
  t.deepEqual(errors.map((e) => e.seq).sort(), [3, 7]);

  const after = new Level<Buffer, Buffer>(storeDir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await after.open();
  const quarantined: Buffer[] = [];
  for await (const k of after.keys({ gte: Buffer.from([0x51]), lt: Buffer.from([0x52]) }))
    quarantined.push(k);
  const remaining: Buffer[] = [];
  for await (const k of after.keys({ gte: Buffer.from([0x4d]), lt: Buffer.from([0x4e]) })) remaining.push(k);
  await after.close();
  t.deepEqual(
    quarantined.map((k) => k.subarray(1).toString('hex')).sort(),
    [k3, k7].map((k) => k.toString('hex')).sort(),
    'Q records hold the failed records under their M keys',
  );
  t.false(
    remaining.some((k) => k.equals(k3) || k.equals(k7)),
    'the tampered M records are gone',
  );
});

// ---------------------------------------------------------------- full disk

const TMPFS_MIB = 8;

function tryMountTmpfs(t: ExecutionContext): string | undefined {
  if (process.getuid?.() !== 0) {
    t.log('skipped: needs root to mount a tmpfs');
    return undefined;
  }
  const mnt = mkdtempSync(path.join(tmpdir(), 'swarmmq-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_MIB}m,mode=0700`, 'tmpfs', mnt], {
      stdio: 'pipe',
    });
  } catch (err) {
    rmSync(mnt, { recursive: true, force: true });
    t.log(`skipped: mount -t tmpfs failed (${String((err as Error).message).split('\n')[0]})`);
    return undefined;
  }
  return mnt;
}

function unmount(mnt: string): void {
  try {
    execFileSync('umount', [mnt], { stdio: 'pipe' });
  } catch {
    execFileSync('umount', ['-l', mnt], { stdio: 'pipe' });
  }
  rmSync(mnt, { recursive: true, force: true });
}

/**
 * Fills a small tmpfs through pipelined 4 KiB SENDs (with `id=` or with
 * assigned ids) and checks D3.8/D8.1/D8.4: refused sends get -ERR, the
 * connection and the node stay up, and after a restart every confirmed
 * message is there and no refused one is.
 */
async function fullDisk(t: ExecutionContext, givenIds: boolean): Promise<void> {
  const mnt = tryMountTmpfs(t);
  if (mnt === undefined) {
    t.pass();
    return;
  }
  // Registered first so that it runs last (ava runs teardowns in reverse), after the node is killed.
  t.teardown(() => unmount(mnt));
  const dir = path.join(mnt, 'data');
  const flags = ['--max-disk-usage', '1GiB'];
  let node = await startNode(t, dir, flags);
  let c = await connect(t, node);
  const rand = prng(givenIds ? 42 : 43);
  /** Each payload starts with its key (f<n>, 16 bytes), so a delivery names its send whatever its id. */
  const keyOf = (payload: Buffer): string => payload.toString('latin1', 0, 16).trimEnd();
  const confirmed = new Set<string>();
  const refused = new Set<string>();
  const refusals: string[] = [];
  let wake: (() => void) | undefined;
  c.onSendReply = (r) => {
    if (!r.ok) refusals.push(r.error ?? '');
    wake?.();
  };
  // 4 KiB of random bytes each; LevelDB's first table write (after about 4 MiB) fills the 8 MiB.
  const WINDOW = 256;
  const MAX_SENDS = 20_000;
  let n = 0;
  const deadline = Date.now() + 60_000;
  while (refusals.length < 200 && n < MAX_SENDS && Date.now() < deadline && !c.closed) {
    while (c.pendingSends < WINDOW && n < MAX_SENDS) {
      const key = `f${n++}`;
      const payload = Buffer.alloc(4096);
      for (let i = 16; i < payload.length; i += 4) payload.writeUInt32LE((rand() * 2 ** 32) >>> 0, i);
      payload.write(key.padEnd(16), 0, 'latin1');
      c.send('big', payload, givenIds ? { id: key } : {}).then(
        (r) => (r.ok ? confirmed : refused).add(key),
        () => undefined, // unanswered: the connection died
      );
    }
    await new Promise<void>((resolve) => {
      wake = resolve;
      setTimeout(resolve, 50);
    });
  }
  // Let every outstanding send be answered (bounded).
  for (let i = 0; i < 100 && c.pendingSends > 0 && !c.closed; i++)
    await new Promise((r) => setTimeout(r, 50));
  t.log(`${n} sent, ${confirmed.size} confirmed, ${refusals.length} refused; first refusal: ${refusals[0]}`);
  // Checked at the end, so that the data is checked even when the node died.
  const survival: string[] = [];
  const alive = node.proc.child.exitCode === null && node.proc.child.signalCode === null;
  if (!alive) survival.push(`the node exited: ${node.proc.stderr.slice(0, 600)}`);
  if (c.closed) survival.push('the connection was closed');
  if (refusals.length === 0) survival.push('no send was refused with -ERR');
  const texts = [...new Set(refusals)];
  if (!texts.every((r) => r.startsWith('message not stored')))
    survival.push(`refusal texts: ${texts.join(' | ')}`);
  t.true(confirmed.size > 0);
  if (alive) {
    await c.ping(); // still answers
    node.proc.child.kill('SIGTERM');
    t.log(`exit code on SIGTERM with a full disk: ${String(await node.proc.exited)}`);
  }
  const df = (): string => execFileSync('df', ['-k', mnt], { encoding: 'utf8' }).trim().split('\n').pop()!;
  t.log(`tmpfs after the stop: ${df()}`);

  // Restart on the same tmpfs, nothing deleted. LevelDB's recovery writes the
  // old log into a table first, which may not fit; then give the tmpfs more room.
  const again = runCli(t, ['start', '--host', '127.0.0.1', '--port', '0', '--data-dir', dir, ...flags]);
  const first = await Promise.race([
    again.waitForLog(started, 30_000).then((l) => l.port as number),
    again.exited.then(() => undefined),
  ]);
  if (first !== undefined) {
    node = { proc: again, port: first };
    t.log('restarted on the unchanged full tmpfs');
  } else {
    t.log(
      `restart on the unchanged tmpfs failed (${again.stderr.trim()}); growing it to ${2 * TMPFS_MIB} MiB`,
    );
    execFileSync('mount', ['-o', `remount,size=${2 * TMPFS_MIB}m`, mnt], { stdio: 'pipe' });
    node = await startNode(t, dir, flags);
  }
  c = await connect(t, node);
  const got = await pullAll(c, 'big', 'check');
  const keys = new Set(got.map((m) => keyOf(m.payload)));
  const lost = [...confirmed].filter((k) => !keys.has(k));
  t.deepEqual(lost.slice(0, 20), [], `${lost.length} of ${confirmed.size} confirmed messages lost`);
  const storedAnyway = [...refused].filter((k) => keys.has(k));
  t.deepEqual(storedAnyway.slice(0, 20), [], `${storedAnyway.length} refused sends were stored (D3.8)`);
  t.log(`after the restart: ${got.length} stored, ${confirmed.size} confirmed; tmpfs ${df()}`);
  node.proc.child.kill('SIGKILL');
  await node.proc.exited;
  t.deepEqual(survival, [], 'while the disk was full');
}

test.serial(
  'a full disk: sends are refused with -ERR, the node stays up, nothing confirmed is lost (D3.8, D8.1, D8.4)',
  async (t) => {
    t.timeout(110_000);
    await fullDisk(t, false);
  },
);

test.serial('a full disk, sends with id=: the same, and the node does not exit (D3.8, D8.1)', async (t) => {
  t.timeout(110_000);
  await fullDisk(t, true);
});
