/**
 * Attacks against a live node, one per limit a client can push against
 * (protocol/SECURITY.md SEC5.1, "no input takes a node down"; README.md
 * "Limits"; protocol/CLIENT.md C1.5, C1.6, C2.7, C4.4, C6.4, C6.5, C6.9,
 * C6.10). Each attack is bounded in bytes, connections and time,
 * and each test checks two things:
 *
 * - the attacker is refused or cut off with its named reason (the exact
 *   `-ERR` text of the Limits table, or the close reason the node logs and
 *   counts), and what the node holds stays bounded: the resident memory of a
 *   real node process (`/proc/<pid>/status`) for the memory attacks, the
 *   subscription and connection counts of an in-process node for the others;
 * - a well-behaved client (test/helpers/bystander.ts) keeps doing confirmed
 *   durable SENDs and core request/reply while the attack goes on, and every
 *   message it had confirmed is pulled back afterwards.
 *
 * Attacking connections come from loopback addresses of their own
 * (127.1.x.y): they stand for other hosts, and the per-address connection
 * rate limit is not what these tests exercise. The tests run one at a time:
 * each is a load on a small machine, and the memory figures are per process.
 */
import { randomBytes } from 'node:crypto';
import test from 'ava';
import { connect } from '@nats-io/transport-node';
import {
  ATTACK_WINDOW_MS,
  MAX_RSS_GROWTH_BYTES,
  MiB,
  ROUNDS_UNDER_ATTACK,
  assertMemoryBounded,
  attackerAddress,
  closedFor,
  countLogs,
  expectRefused,
  memoryBytes,
  mib,
  openMute,
  startChildNode,
  stopCleanly,
  underAttack,
} from '../helpers/attack.js';
import { Bystander } from '../helpers/bystander.js';
import { QUIET, RawClient, startTestNode, waitFor } from '../helpers/wire.js';
import { parseAuthorization } from '../../src/auth/config.js';
import { hashApiKey, newApiKey } from '../../src/auth/credentials.js';

// ---- attacks ---------------------------------------------------------------

test.serial(
  'a. a 1 GB length field (PUB, HPUB, SEND) is refused on its control line; memory stays flat',
  async (t) => {
    const node = await startChildNode(t);
    const b = await Bystander.start(t, node.port);
    await b.advance(5, 'before the attack');
    const before = memoryBytes(node.pid);
    // C1.6/C6.4: each announces about a gigabyte (or ten) and then really sends
    // payload bytes, as fast as the node takes them, until it is cut off.
    const heads = [
      'PUB attack 1000000000\r\n',
      'PUB attack reply.to 9999999999\r\n',
      'HPUB attack 999999999 1000000000\r\n',
      'HPUB attack reply.to 1000000000 1000000000\r\n',
      `SEND ${b.destination} 1000000000\r\n`,
      'SEND attack.dest id=x priority=9 1000000000\r\n',
    ];
    const payload = Buffer.alloc(64 * 1024, 'x');
    const attacks = await underAttack(b, { minTimes: 2 * heads.length, maxTimes: 200 }, (i) =>
      expectRefused(
        t,
        node.port,
        heads[i % heads.length]!,
        payload,
        4 * MiB,
        'Maximum Payload Violation',
        QUIET,
      ),
    );
    t.log(`${attacks} attackers refused`);
    // The node names the reason it closed each of them.
    await waitFor(
      () => countLogs(node.p, closedFor('max_payload_exceeded')) === attacks,
      `${attacks} max_payload_exceeded closes logged`,
    );
    assertMemoryBounded(t, node, before);
    await b.advance(5, 'after the attack');
    await b.finish(t);
    await stopCleanly(t, node);
  },
);

test.serial('b. a control line that never ends is cut off at the limit; memory stays flat', async (t) => {
  const node = await startChildNode(t);
  const b = await Bystander.start(t, node.port);
  await b.advance(5, 'before the attack');
  const before = memoryBytes(node.pid);
  // C1.5/C6.5: up to 10 MiB without a line feed, in chunks large and small,
  // after no verb, a payload verb, a subscription, a CONNECT and a SEND.
  const noLf = (n: number): Buffer => {
    const b = randomBytes(n);
    for (let i = 0; i < n; i++) if (b[i] === 0x0a) b[i] = 0x20;
    return b;
  };
  const lines: [string, Buffer][] = [
    ['', noLf(64 * 1024)],
    ['PUB ', Buffer.alloc(1024, 'a')],
    ['SUB ', Buffer.alloc(100, 'b')],
    ['CONNECT {"name":"', Buffer.alloc(4096, 'n')],
    [`SEND ${b.destination} id=`, Buffer.alloc(16 * 1024, 'i')],
  ];
  const attacks = await underAttack(b, { minTimes: 2 * lines.length, maxTimes: 200 }, (i) => {
    const [head, filler] = lines[i % lines.length]!;
    return expectRefused(t, node.port, head, filler, 10 * MiB, 'maximum control line exceeded');
  });
  t.log(`${attacks} attackers cut off`);
  await waitFor(
    () => countLogs(node.p, closedFor('max_control_line_exceeded')) === attacks,
    `${attacks} max_control_line_exceeded closes logged`,
  );
  assertMemoryBounded(t, node, before);
  await b.advance(5, 'after the attack');
  await b.finish(t);
  await stopCleanly(t, node);
});

test.serial(
  'c. ten thousand SUBs on one connection: past 4096 each is refused, the connection stays open',
  async (t) => {
    const { node, port } = await startTestNode(t); // the default limit, 4096
    const b = await Bystander.start(t, port);
    await b.advance(5, 'before the attack');
    const baseSubs = node.server.stats().subscriptions;
    const [c] = await RawClient.open(t, port, QUIET, attackerAddress());
    const burst = (from: number, n: number): string => {
      let s = '';
      for (let i = from; i < from + n; i++) s += `SUB attack.${i} ${i}\r\n`;
      return s;
    };
    // C4.4: nothing but the refusals comes back, one per SUB past the limit.
    c.send(burst(1, 10_000));
    const first = (await c.flushed(20_000)).split('\r\n').filter((l) => l !== '');
    t.is(first.length, 10_000 - 4096);
    t.true(first.every((l) => l === "-ERR 'maximum subscriptions exceeded'"));
    t.is(node.server.stats().subscriptions, baseSubs + 4096);
    // The 4096th SUB holds, the 4097th does not.
    c.send('PUB attack.4096 1\r\nx\r\nPUB attack.4097 1\r\ny\r\n');
    t.is(await c.flushed(), 'MSG attack.4096 4096 1\r\nx\r\n');
    // The connection stays open and is refused again; an UNSUB frees one slot.
    const during = b.advance(ROUNDS_UNDER_ATTACK, 'while the attacker holds 4096 subscriptions');
    c.send(burst(10_001, 10_000));
    const second = (await c.flushed(20_000)).split('\r\n').filter((l) => l !== '');
    t.is(second.length, 10_000);
    t.true(second.every((l) => l === "-ERR 'maximum subscriptions exceeded'"));
    c.send(`UNSUB 1\r\n${burst(20_001, 2)}`);
    t.is(await c.flushed(), "-ERR 'maximum subscriptions exceeded'\r\n");
    t.is(node.server.stats().subscriptions, baseSubs + 4096);
    await during;
    c.socket.destroy();
    await waitFor(() => node.server.stats().subscriptions === baseSubs, 'the attacker’s subscriptions to go');
    await b.finish(t);
  },
);

test.serial(
  'c2. deep subjects: 2041 tokens are refused, 4096 SUBs of the deepest allowed (32 tokens) stay within memory bounds',
  async (t) => {
    const node = await startChildNode(t);
    const b = await Bystander.start(t, node.port);
    await b.advance(5, 'before the attack');
    const before = memoryBytes(node.pid);
    const [c] = await RawClient.open(t, node.port, QUIET, attackerAddress());
    // A SUB line under the 4 KiB control line holds 2041 tokens; before the
    // token limit each cost the subject index about 1.2 MiB and some 3,300 of
    // them exhausted the node's heap. Now they are refused (SEC5.1)...
    c.send(`SUB deep${'.a'.repeat(2040)} x\r\n`.repeat(10));
    t.is(await c.flushed(), `-ERR 'Invalid Subject: more than 32 tokens'\r\n`.repeat(10));
    // ...and the deepest allowed, 32 tokens, 4096 times with no two sharing a
    // trie path, is the most one connection can make the index hold.
    const tail = '.a'.repeat(31);
    const max = 4096;
    const perBatch = 64;
    let sent = 0;
    let refused = 0;
    let growth = 0;
    const during = b.advance(ROUNDS_UNDER_ATTACK, 'while the attacker subscribes');
    const deadline = Date.now() + ATTACK_WINDOW_MS;
    // Bounded in SUBs and time, and it stops as soon as the node's memory grew
    // past the bound, so a node that fails this never takes the machine's memory.
    while (sent < max && growth < MAX_RSS_GROWTH_BYTES && Date.now() < deadline) {
      let lines = '';
      for (let i = 0; i < perBatch; i++, sent++) lines += `SUB deep${sent}${tail} ${sent}\r\n`;
      c.send(lines);
      const got = await c.flushed(20_000);
      refused += got.split('\r\n').filter((l) => l.startsWith('-ERR')).length;
      growth = memoryBytes(node.pid).peak - before.rss;
    }
    t.log(`${sent} deep SUBs sent, ${refused} refused, peak growth ${(growth / 2 ** 20).toFixed(1)} MiB`);
    t.is(refused, 0);
    assertMemoryBounded(t, node, before);
    t.is(sent, max, 'every SUB was sent (the attack stops early only when memory grew past the bound)');
    t.false(c.closed, 'the connection stays open');
    await during;
    c.socket.destroy();
    await b.advance(5, 'after the attack');
    await b.finish(t);
    await stopCleanly(t, node);
  },
);

test.serial(
  'd. a subscriber that never reads is cut off as a slow consumer; publisher and others go on',
  async (t) => {
    const node = await startChildNode(t, ['--max-pending', '1MB']);
    const b = await Bystander.start(t, node.port);
    // A subscriber that keeps up: the publisher waits for it after each batch,
    // so its own queue never holds more than one batch.
    const fast = await connect({ servers: `127.0.0.1:${node.port}`, reconnect: false, name: 'fast' });
    t.teardown(async () => {
      if (!fast.isClosed()) await fast.close();
    });
    let fastGot = 0;
    fast.subscribe('busy', {
      callback: () => {
        fastGot++;
      },
    });
    await fast.flush();
    const [slow, info] = await RawClient.open(t, node.port, QUIET, attackerAddress());
    slow.send('SUB busy 1\r\n');
    await slow.flushed();
    slow.socket.pause(); // C6.9: from now on it reads nothing; the kernel buffers fill, then the node's
    const [pub] = await RawClient.open(t, node.port, QUIET);
    await b.advance(5, 'before the attack');
    const before = memoryBytes(node.pid);
    const perBatch = 128;
    let batch = '';
    for (let i = 0; i < perBatch; i++) batch += `PUB busy 1024\r\n${'p'.repeat(1024)}\r\n`;
    let published = 0;
    const publish = async (): Promise<void> => {
      pub.send(batch);
      published += perBatch;
      await pub.flushed(10_000);
      await waitFor(() => fastGot >= published, 'the fast subscriber to get the batch');
    };
    const slowCut = (): boolean =>
      countLogs(node.p, (l) => closedFor('slow_consumer')(l) && l.cid === info.client_id) === 1;
    // Bounded: at most 640 batches of 128 KiB (80 MiB), far more than the kernel buffers and 1 MiB hold.
    const batches = await underAttack(b, { minTimes: 1, maxTimes: 640, done: slowCut }, publish);
    t.log(`slow consumer cut off after ${batches} batches (${mib(published * 1024)} MiB published)`);
    // The publisher goes on after the cut, and the fast subscriber still gets every message.
    await underAttack(b, { minTimes: 5, maxTimes: 100, rounds: 5 }, publish);
    await fast.flush();
    t.is(fastGot, published);
    t.is(countLogs(node.p, closedFor('slow_consumer')), 1, 'only the reader that never reads was cut off');
    slow.socket.resume(); // it reads what the kernel held, then the end
    await slow.waitClosed(10_000);
    assertMemoryBounded(t, node, before);
    await b.finish(t);
    await fast.close();
    pub.socket.destroy();
    await stopCleanly(t, node);
  },
);

test.serial(
  'e. a flood of connections past the limit: INFO, -ERR, close; slots come back after it',
  async (t) => {
    const max = 100;
    const { node, port } = await startTestNode(t, { maxConnections: max });
    const b = await Bystander.start(t, port);
    await b.advance(5, 'before the attack');
    const base = node.server.stats();
    const free = max - base.connections;
    const floodSize = 300;
    const refused = floodSize - free;
    // C6.10: 300 sockets at once; those past the limit are refused as they are accepted.
    const flood = await Promise.all(
      Array.from({ length: floodSize }, () => RawClient.connect(t, port, attackerAddress())),
    );
    await waitFor(() => {
      const s = node.server.stats();
      return s.connections === max && s.closes.max_connections_exceeded === refused;
    }, 'every flood connection to be accepted or refused');
    const during = b.advance(ROUNDS_UNDER_ATTACK, 'while the flood holds every connection slot');
    await waitFor(
      () => flood.filter((c) => c.closed).length === refused,
      'the refused connections to close',
      15_000,
    );
    const [closed, open] = [flood.filter((c) => c.closed), flood.filter((c) => !c.closed)];
    for (const c of closed)
      t.regex(c.buffer, /^INFO \{[^\r\n]*\}\r\n-ERR 'maximum connections exceeded'\r\n$/);
    t.is(open.length, free);
    // Those let in are served.
    await Promise.all(
      open.map(async (c) => {
        await c.expect(/^INFO \{[^\r\n]*\}\r\n/);
        c.send(`CONNECT ${JSON.stringify(QUIET)}\r\nPING\r\n`);
        await c.expect(/^PONG\r\n/, 10_000);
      }),
    );
    await during;
    t.is(node.server.stats().totalConnections, base.totalConnections + floodSize);
    // The flood ends: its slots come back, and the limit still holds.
    for (const c of open) c.socket.destroy();
    await waitFor(() => node.server.stats().connections === base.connections, 'the flood connections to go');
    const again = await Promise.all(
      Array.from({ length: free }, () => RawClient.open(t, port, QUIET, attackerAddress())),
    );
    t.is(node.server.stats().connections, max);
    const [extra] = await RawClient.open(t, port, undefined, attackerAddress());
    await extra.expect(/^-ERR 'maximum connections exceeded'\r\n$/);
    await extra.waitClosed();
    for (const [c] of again) c.socket.destroy();
    await waitFor(() => node.server.stats().connections === base.connections, 'the second wave to go');
    await b.finish(t);
  },
);

test.serial('f. half-open connections that never speak are closed as stale', async (t) => {
  const { node, port } = await startTestNode(t, { pingIntervalMs: 200 });
  t.is(node.server.options.maxPingsOut, 2, 'the default max pings out');
  const b = await Bystander.start(t, port);
  await b.advance(5, 'before the attack');
  const base = node.server.stats().connections;
  // C2.7: 200 that neither send nor read, and 5 that read but never send
  // (they see the reason). Only server PINGs can tell they are dead.
  const mute = await Promise.all(Array.from({ length: 200 }, () => openMute(t, port)));
  const deaf = await Promise.all(
    Array.from({ length: 5 }, () => RawClient.connect(t, port, attackerAddress())),
  );
  await waitFor(() => node.server.stats().connections === base + 205, 'every half-open connection accepted');
  await b.advance(ROUNDS_UNDER_ATTACK, 'while the half-open connections are held');
  for (const c of deaf) {
    await c.expect(/^INFO \{[^\r\n]*\}\r\nPING\r\nPING\r\n-ERR 'Stale Connection'\r\n$/, 10_000);
    await c.waitClosed();
  }
  await waitFor(() => {
    const s = node.server.stats();
    return s.connections === base && s.closes.stale_connection === 205;
  }, 'every half-open connection closed as stale');
  // The node ended the mute ones too: each sees the end as soon as it reads.
  for (const m of mute) m.socket.resume();
  await waitFor(() => mute.every((m) => m.closed()), 'the mute sockets to see the close');
  await b.advance(5, 'after the attack');
  t.is(node.server.stats().connections, base, 'only the bystander’s connections are left');
  await b.finish(t);
});

test.serial(
  'g. a burst of connections from one address past its rate is refused; others go on (SEC5.2)',
  async (t) => {
    const { node, port } = await startTestNode(t, { maxConnectionRate: 20 });
    const [good] = await RawClient.open(t, port, QUIET);
    const from = attackerAddress();
    const burst = await Promise.all(Array.from({ length: 60 }, () => RawClient.connect(t, port, from)));
    let refused = 0;
    for (const c of burst) {
      await c.expect(/^INFO [^\r]*\r\n/);
      // A refused one gets its -ERR and the close; an admitted one answers a PING.
      c.send('PING\r\n');
      const m = await c.expect(/^(PONG|-ERR 'maximum connection rate exceeded')\r\n/);
      if (m[1] !== 'PONG') {
        refused++;
        await c.waitClosed();
      }
    }
    // The bucket holds 20; a few more may refill while 60 connect on a slow machine.
    t.true(refused >= 30 && refused <= 40, `${refused} of 60 refused`);
    t.is(node.server.stats().closes.connection_rate_exceeded, refused);
    // Another address, and a connection made before the burst, are not affected.
    await RawClient.open(t, port, QUIET, attackerAddress());
    good.send('SEND rate.q 2\r\nok\r\n');
    await good.expect(/^\+STORED rate\.q 1 \w+\r\n/);
  },
);

test.serial(
  'h. with auth on, connections that never authenticate are closed at the auth timeout (SEC2.5)',
  async (t) => {
    const key = newApiKey();
    const auth = parseAuthorization({ keys: [{ name: 'good', key_hash: hashApiKey(key) }] });
    const { node, port } = await startTestNode(t, { auth, authTimeoutMs: 300 });
    const [good] = await RawClient.open(t, port, { ...QUIET, auth_token: key });
    good.send('SUB work 1\r\n');
    await good.flushed();
    const silent = await Promise.all(
      Array.from({ length: 100 }, () => RawClient.connect(t, port, attackerAddress())),
    );
    for (const c of silent) {
      await c.expect(/^INFO [^\r]*"auth_required":true[^\r]*\r\n-ERR 'Authentication Timeout'\r\n/, 10_000);
      await c.waitClosed();
    }
    await waitFor(() => node.server.stats().connections === 1, 'only the good connection left');
    t.is(node.server.stats().closes.authentication_timeout, 100);
    good.send('SEND work.q 2\r\nok\r\nPUB work 2\r\nhi\r\n');
    // +STORED follows the sync, so the MSG comes first (DURABLE.md D3.5).
    await good.expect(/^MSG work 1 2\r\nhi\r\n\+STORED work\.q 1 \w+\r\n/);
  },
);

test.serial(
  'c3. the node-wide budget of subscription tokens is shared and given back (SEC5.1)',
  async (t) => {
    const { port } = await startTestNode(t, { maxSubscriptionTokens: 100 });
    const [a] = await RawClient.open(t, port, QUIET);
    const [b] = await RawClient.open(t, port, QUIET);
    a.send(`SUB ${'x.'.repeat(29)}x 1\r\nSUB ${'y.'.repeat(29)}y 2\r\nSUB ${'z.'.repeat(29)}z 3\r\n`);
    t.is(await a.flushed(), '', '90 of 100 tokens taken');
    b.send(`SUB ${'w.'.repeat(10)}w 1\r\nSUB ${'v.'.repeat(9)}v 2\r\n`);
    t.is(await b.flushed(), `-ERR 'maximum subscriptions exceeded'\r\n`, '11 tokens refused, 10 taken');
    b.send('SUB more 3\r\n');
    t.is(await b.flushed(), `-ERR 'maximum subscriptions exceeded'\r\n`);
    a.socket.destroy();
    await waitFor(async () => {
      b.send(`SUB ${'w.'.repeat(10)}w 4\r\n`);
      return (await b.flushed()) === '';
    }, 'the closed connection to give its tokens back');
  },
);
