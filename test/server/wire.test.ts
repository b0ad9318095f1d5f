/**
 * Wire tests: a real node on a real TCP port, spoken to byte by byte.
 * Each test cites the rule of protocol/CLIENT.md it checks.
 */
import test from 'ava';
import { QUIET, RawClient, startTestNode, waitFor } from '../helpers/wire.js';

test('C2.1 INFO on connect carries the fields clients need', async (t) => {
  const { port } = await startTestNode(t, { name: 'n-info', maxPayloadBytes: 2048 });
  const [, info] = await RawClient.open(t, port);
  t.is(info.server_name, 'n-info');
  t.is(info.proto, 1);
  t.is(info.port, port);
  t.is(info.host, '127.0.0.1');
  t.is(info.headers, true);
  t.is(info.max_payload, 2048);
  t.is(typeof info.server_id, 'string');
  t.is(typeof info.version, 'string');
  t.is(typeof info.client_id, 'number');
  t.is(info.client_ip, '127.0.0.1');
});

test('C2.2/C2.8 verbose and pedantic start on: CONNECT {} and later ops get +OK', async (t) => {
  const { port } = await startTestNode(t);
  const [c] = await RawClient.open(t, port);
  c.send('CONNECT {}\r\n');
  await c.expect(/^\+OK\r\n/);
  c.send('SUB a 1\r\nPUB a 2\r\nhi\r\nUNSUB 1\r\n');
  // The PUB's +OK comes before the delivery it causes (as nats-server).
  await c.expect(/^\+OK\r\n\+OK\r\nMSG a 1 2\r\nhi\r\n\+OK\r\n/);
  // PING gets PONG only, no +OK.
  t.is(await c.flushed(), '');
});

test('C2.2 operations before CONNECT are accepted', async (t) => {
  const { port } = await startTestNode(t);
  const [c] = await RawClient.open(t, port);
  c.send('SUB x 9\r\nPUB x 1\r\n!\r\n');
  await c.expect(/^\+OK\r\n\+OK\r\nMSG x 9 1\r\n!\r\n/);
  t.pass();
});

test('C2.3 CONNECT that is not a JSON object: -ERR then close', async (t) => {
  const { port } = await startTestNode(t);
  for (const bad of ['{not json', '[1,2]', '']) {
    const [c] = await RawClient.open(t, port);
    c.send(`CONNECT ${bad}\r\n`);
    await c.expect(/^-ERR 'Invalid CONNECT: [^']*'\r\n/);
    await c.waitClosed();
  }
  t.pass();
});

test('C2.4 CONNECT with protocol 2: invalid client protocol, closed', async (t) => {
  const { port } = await startTestNode(t);
  const [c] = await RawClient.open(t, port);
  c.send('CONNECT {"protocol":2}\r\n');
  await c.expect(/^-ERR 'invalid client protocol'\r\n/);
  await c.waitClosed();
  t.pass();
});

test('C2.5 no_responders without headers: refused and closed', async (t) => {
  const { port } = await startTestNode(t);
  const [c] = await RawClient.open(t, port);
  c.send('CONNECT {"no_responders":true,"headers":false}\r\n');
  await c.expect(/^-ERR 'no responders requires headers support'\r\n/);
  await c.waitClosed();
  t.pass();
});

test('C2.6 PING answered with PONG before CONNECT, in order with earlier ops', async (t) => {
  const { port } = await startTestNode(t);
  const [c] = await RawClient.open(t, port);
  c.send('PING\r\n');
  await c.expect(/^PONG\r\n/);
  c.send('CONNECT {"verbose":false}\r\nSUB s 1\r\nPUB s 3\r\nabc\r\nPING\r\n');
  await c.expect(/^MSG s 1 3\r\nabc\r\nPONG\r\n/);
  t.pass();
});

test('C2.7 server PINGs an idle client; PONG keeps it; silence closes it as stale', async (t) => {
  const { node, port } = await startTestNode(t, { pingIntervalMs: 200, maxPingsOut: 2 });
  const [c] = await RawClient.open(t, port);
  c.send('CONNECT {"verbose":false}\r\n');
  await c.expect(/^PING\r\n/);
  c.send('PONG\r\n');
  await c.expect(/^PING\r\n/);
  // Stop answering: after max_pings_out unanswered pings comes the stale error.
  await c.expect(/^(PING\r\n)*-ERR 'Stale Connection'\r\n/);
  await c.waitClosed();
  await waitFor(() => node.server.stats().closes.stale_connection === 1, 'stale close counted');
  t.pass();
});

test('C1.1/C1.2/C1.7 LF endings, any case, tabs and blank lines', async (t) => {
  const { port } = await startTestNode(t);
  const [c] = await RawClient.open(t, port);
  c.send('connect {"verbose":false}\n\n   \r\nsUb\tfoo.bar   7\npub foo.bar\t 5\nhello\n');
  await c.expect(/^MSG foo\.bar 7 5\r\nhello\r\n/);
  t.pass();
});

test('C1.3 zero-length payload and payload holding CRLF', async (t) => {
  const { port } = await startTestNode(t);
  const [c] = await RawClient.open(t, port, QUIET);
  c.send('SUB z 1\r\nPUB z 0\r\n\r\nPUB z 6\r\na\r\nb\r\n\r\n');
  await c.expect(/^MSG z 1 0\r\n\r\nMSG z 1 6\r\na\r\nb\r\n\r\n/);
  t.pass();
});

test('C1.2 subjects and sids round-trip byte for byte (UTF-8 subject)', async (t) => {
  const { port } = await startTestNode(t);
  const [c] = await RawClient.open(t, port, QUIET);
  const subject = Buffer.from('caf\u00e9.\u00fcber', 'utf8').toString('latin1');
  c.send(`SUB ${subject} s\u00ff1\r\nPUB ${subject} 1\r\nx\r\n`);
  const m = await c.expect(/^MSG (\S+) (\S+) 1\r\nx\r\n/);
  t.is(m[1], subject);
  t.is(m[2], 's\u00ff1');
});

test('C1.4 operations split across writes at every byte', async (t) => {
  const { port } = await startTestNode(t);
  const [c] = await RawClient.open(t, port, QUIET);
  const frame = 'SUB sp 1\r\nPUB sp r 5\r\nhello\r\nHPUB sp 12 14\r\nNATS/1.0\r\n\r\nhi\r\n';
  for (const ch of frame) {
    c.send(ch);
    await new Promise((r) => setImmediate(r));
  }
  await c.expect(/^MSG sp 1 r 5\r\nhello\r\nHMSG sp 1 12 14\r\nNATS\/1\.0\r\n\r\nhi\r\n/);
  t.pass();
});

test('C1.5/C6.5 a control line that never ends is cut at the limit', async (t) => {
  const { node, port } = await startTestNode(t, { maxControlLineBytes: 1024 });
  const [c] = await RawClient.open(t, port, QUIET);
  // No line end at all: the server must not wait for one.
  c.send('SUB ' + 'a'.repeat(2000));
  await c.expect(/^-ERR 'maximum control line exceeded'\r\n/);
  await c.waitClosed();
  t.is(node.server.stats().closes.max_control_line_exceeded, 1);
});

test('C1.6/C6.4 declared payload above max_payload refused before the payload is sent', async (t) => {
  const { node, port } = await startTestNode(t, { maxPayloadBytes: 1000 });
  const [c] = await RawClient.open(t, port, QUIET);
  c.send('PUB big 1073741824\r\n'); // a gigabyte, announced; nothing follows
  await c.expect(/^-ERR 'Maximum Payload Violation'\r\n/);
  await c.waitClosed();
  t.is(node.server.stats().closes.max_payload_exceeded, 1);
  // At the limit is fine.
  const [d] = await RawClient.open(t, port, QUIET);
  d.send(`SUB big 1\r\nPUB big 1000\r\n${'x'.repeat(1000)}\r\n`);
  await d.expect(/^MSG big 1 1000\r\nx{1000}\r\n/);
});

test('C3.1/C5.3 HPUB reaches header clients as HMSG and others as MSG without headers', async (t) => {
  const { port } = await startTestNode(t);
  const [h] = await RawClient.open(t, port, { ...QUIET, headers: true });
  const [p] = await RawClient.open(t, port, { ...QUIET, headers: false });
  h.send('SUB h 1\r\n');
  p.send('SUB h 2\r\n');
  await h.flushed();
  await p.flushed();
  h.send('HPUB h re 22 33\r\nNATS/1.0\r\nBar: Baz\r\n\r\nHello NATS!\r\n');
  await h.expect(/^HMSG h 1 re 22 33\r\nNATS\/1\.0\r\nBar: Baz\r\n\r\nHello NATS!\r\n/);
  await p.expect(/^MSG h 2 re 11\r\nHello NATS!\r\n/);
  t.pass();
});

test('C3.2/C6.3 PUB with bad arguments: -ERR says what was expected, then close', async (t) => {
  const { port } = await startTestNode(t);
  const cases = ['PUB onlysubject', 'PUB a b c 5', 'PUB a x5', 'HPUB a 10 5', 'HPUB a 5'];
  for (const line of cases) {
    const [c] = await RawClient.open(t, port, QUIET);
    c.send(`${line}\r\n`);
    await c.expect(/^-ERR 'Invalid H?PUB arguments, expected: H?PUB <subject> [^']*'\r\n/);
    await c.waitClosed();
  }
  t.pass();
});

test('C3.3 pedantic: bad publish subject reported, still routed, connection stays open', async (t) => {
  const { port } = await startTestNode(t);
  const [c] = await RawClient.open(t, port);
  c.send('CONNECT {"verbose":true,"pedantic":true}\r\n');
  await c.expect(/^\+OK\r\n/);
  c.send('SUB > 1\r\n');
  await c.expect(/^\+OK\r\n/);
  c.send('PUB foo.* 1\r\nx\r\nPUB foo..bar 1\r\nx\r\n');
  await c.expect(
    /^-ERR 'Invalid Publish Subject'\r\n\+OK\r\nMSG foo\.\* 1 1\r\nx\r\n-ERR 'Invalid Publish Subject'\r\n\+OK\r\n/,
  );
  t.is(await c.flushed(), '');
});

test('C3.5 HPUB from a client without headers: -ERR and close', async (t) => {
  const { port } = await startTestNode(t);
  const [c] = await RawClient.open(t, port, { ...QUIET, headers: false });
  c.send('HPUB h 12 12\r\nNATS/1.0\r\n\r\n\r\n');
  await c.expect(/^-ERR 'message headers not supported \(send CONNECT \{"headers":true\} first\)'\r\n/);
  await c.waitClosed();
  t.pass();
});

test('C5.7 a subject with an empty token reaches nobody', async (t) => {
  const { port } = await startTestNode(t);
  const [c] = await RawClient.open(t, port, QUIET);
  c.send('SUB > 1\r\nPUB a..b 1\r\nx\r\nPUB .a 1\r\nx\r\nPUB a. 1\r\nx\r\nPUB a.b 1\r\ny\r\n');
  t.is(await c.flushed(), 'MSG a.b 1 1\r\ny\r\n');
});

test('C3.4 without pedantic the publish subject is not checked', async (t) => {
  const { port } = await startTestNode(t);
  const [c] = await RawClient.open(t, port, QUIET);
  c.send('SUB foo.* 1\r\nPUB foo.* 1\r\nx\r\n');
  await c.expect(/^MSG foo\.\* 1 1\r\nx\r\n/);
  t.pass();
});

test('C4.1/C5.1 wildcards, and one MSG per matching sid', async (t) => {
  const { port } = await startTestNode(t);
  const [c] = await RawClient.open(t, port, QUIET);
  c.send('SUB a.* 1\r\nSUB a.> 2\r\nSUB > 3\r\nSUB a.b.c 4\r\nSUB a 5\r\n');
  c.send('PUB a.b 1\r\nx\r\n');
  const got = await c.flushed();
  const sids = [...got.matchAll(/MSG a\.b (\d) 1\r\nx\r\n/g)].map((m) => m[1]).sort();
  t.deepEqual(sids, ['1', '2', '3']);
  c.send('PUB a.b.c 1\r\ny\r\n');
  const got2 = await c.flushed();
  t.deepEqual([...got2.matchAll(/MSG a\.b\.c (\d) 1/g)].map((m) => m[1]).sort(), ['2', '3', '4']);
  c.send('PUB a 1\r\nz\r\n');
  const got3 = await c.flushed();
  t.deepEqual([...got3.matchAll(/MSG a (\d) 1/g)].map((m) => m[1]).sort(), ['3', '5']);
});

test('C4.2 invalid SUB subjects get -ERR and the connection stays open', async (t) => {
  const { port } = await startTestNode(t);
  const [c] = await RawClient.open(t, port, QUIET);
  for (const s of ['foo.', '.foo', 'foo..bar', 'foo.>.bar']) {
    c.send(`SUB ${s} 1\r\n`);
    await c.expect(/^-ERR 'Invalid Subject'\r\n/);
  }
  c.send('SUB ok 1\r\nPUB ok 1\r\n1\r\n');
  await c.expect(/^MSG ok 1 1\r\n1\r\n/);
  t.pass();
});

test('C4.3 a reused sid is ignored', async (t) => {
  const { port } = await startTestNode(t);
  const [c] = await RawClient.open(t, port, QUIET);
  c.send('SUB first 1\r\nSUB second 1\r\nPUB second 1\r\nx\r\nPUB first 1\r\ny\r\n');
  t.is(await c.flushed(), 'MSG first 1 1\r\ny\r\n');
});

test('C4.4 subscriptions beyond the limit are refused; the connection stays open', async (t) => {
  const { node, port } = await startTestNode(t, { maxSubscriptions: 100 });
  const [c] = await RawClient.open(t, port, QUIET);
  let subs = '';
  for (let i = 0; i < 10_000; i++) subs += `SUB s.${i} ${i}\r\n`;
  c.send(subs);
  const got = await c.flushed(10_000);
  t.is(got.split('\r\n').filter((l) => l === "-ERR 'maximum subscriptions exceeded'").length, 9_900);
  t.is(node.server.stats().subscriptions, 100);
  c.send('PUB s.5 1\r\nx\r\n');
  await c.expect(/^MSG s\.5 5 1\r\nx\r\n/);
});

test('C4.5/C4.6 UNSUB now, after max, at once when reached; unknown sid ignored', async (t) => {
  const { port } = await startTestNode(t);
  const [c] = await RawClient.open(t, port, QUIET);
  c.send('SUB u 1\r\nUNSUB 1 2\r\n');
  c.send('PUB u 1\r\na\r\nPUB u 1\r\nb\r\nPUB u 1\r\nc\r\n');
  t.is(await c.flushed(), 'MSG u 1 1\r\na\r\nMSG u 1 1\r\nb\r\n');
  c.send('SUB v 2\r\nPUB v 1\r\na\r\nUNSUB 2 1\r\nPUB v 1\r\nb\r\n');
  t.is(await c.flushed(), 'MSG v 2 1\r\na\r\n');
  c.send('SUB w 3\r\nUNSUB 3\r\nUNSUB 99\r\nPUB w 1\r\na\r\n');
  t.is(await c.flushed(), '');
});

test('C5.2 a queue group gets each message exactly once, spread over its members', async (t) => {
  const { port } = await startTestNode(t);
  const members = await Promise.all([0, 1, 2].map(() => RawClient.open(t, port, QUIET)));
  const [plain] = await RawClient.open(t, port, QUIET);
  for (const [c] of members) c.send('SUB work.* workers 1\r\n');
  plain.send('SUB work.* 1\r\n');
  for (const [c] of members) await c.flushed();
  await plain.flushed();
  const [pub] = await RawClient.open(t, port, QUIET);
  const n = 600;
  let batch = '';
  for (let i = 0; i < n; i++) batch += `PUB work.${i} 1\r\nx\r\n`;
  pub.send(batch);
  await pub.flushed();
  const counts: number[] = [];
  for (const [c] of members) counts.push((await c.flushed()).split('MSG ').length - 1);
  t.is(
    counts.reduce((a, b) => a + b, 0),
    n,
  );
  for (const k of counts) t.true(k > 100, `member got ${k} of ${n}`);
  t.is((await plain.flushed()).split('MSG ').length - 1, n);
});

test('C5.4 no responders: 503 status on the requester’s reply subscription', async (t) => {
  const { port } = await startTestNode(t);
  const [c] = await RawClient.open(t, port, { ...QUIET, headers: true, no_responders: true });
  c.send('SUB _INBOX.abc.* 7\r\nPUB nobody.home _INBOX.abc.1 2\r\nhi\r\n');
  await c.expect(/^HMSG _INBOX\.abc\.1 7 16 16\r\nNATS\/1\.0 503\r\n\r\n\r\n/);
  // Without no_responders nothing comes back.
  const [d] = await RawClient.open(t, port, QUIET);
  d.send('SUB _INBOX.d.* 1\r\nPUB nobody.home _INBOX.d.1 2\r\nhi\r\n');
  t.is(await d.flushed(), '');
});

test('C5.5 echo off: own messages are not delivered to own subscriptions', async (t) => {
  const { port } = await startTestNode(t);
  const [c] = await RawClient.open(t, port, { ...QUIET, echo: false, no_responders: true });
  const [other] = await RawClient.open(t, port, QUIET);
  other.send('SUB e 1\r\n');
  await other.flushed();
  c.send('SUB e 1\r\nSUB _INBOX.q 2\r\nPUB e 1\r\nx\r\n');
  t.is(await c.flushed(), '');
  await other.expect(/^MSG e 1 1\r\nx\r\n/);
  // A requester whose only listener is itself gets no responders.
  c.send('SUB req 3\r\nPUB req _INBOX.q 1\r\n?\r\n');
  await c.expect(/^HMSG _INBOX\.q 2 16 16\r\nNATS\/1\.0 503\r\n\r\n\r\n/);
});

test('C5.6 request/reply over raw protocol', async (t) => {
  const { port } = await startTestNode(t);
  const [svc] = await RawClient.open(t, port, QUIET);
  const [req] = await RawClient.open(t, port, QUIET);
  svc.send('SUB time 1\r\n');
  await svc.flushed();
  req.send('SUB _INBOX.r 1\r\nPUB time _INBOX.r 0\r\n\r\n');
  const m = await svc.expect(/^MSG time 1 (\S+) 0\r\n\r\n/);
  svc.send(`PUB ${m[1]} 3\r\nnow\r\n`);
  await req.expect(/^MSG _INBOX\.r 1 3\r\nnow\r\n/);
  t.pass();
});

test('C6.1 unknown verb: -ERR naming it, connection stays open', async (t) => {
  const { port } = await startTestNode(t);
  const [c] = await RawClient.open(t, port, QUIET);
  c.send('FOO bar\r\n');
  await c.expect(/^-ERR 'Unknown Protocol Operation: "FOO" \(send HELP for the list of verbs\)'\r\n/);
  t.is(await c.flushed(), '');
});

test('C6.2 SUB/UNSUB with wrong arguments: -ERR with usage, stays open', async (t) => {
  const { port } = await startTestNode(t);
  const [c] = await RawClient.open(t, port, QUIET);
  c.send('SUB onlyone\r\n');
  await c.expect(/^-ERR 'Invalid SUB arguments, expected: SUB <subject> \[queue-group\] <sid>'\r\n/);
  c.send('UNSUB 1 many\r\n');
  await c.expect(/^-ERR 'Invalid UNSUB arguments, expected: UNSUB <sid> \[max-msgs\]'\r\n/);
  t.is(await c.flushed(), '');
});

test('C6.6 payload longer than declared: -ERR and close', async (t) => {
  const { node, port } = await startTestNode(t);
  const [c] = await RawClient.open(t, port, QUIET);
  c.send('PUB a 3\r\nabcdef\r\n');
  await c.expect(/^-ERR 'Unknown Protocol Operation: payload is longer than its declared 3 bytes/);
  await c.waitClosed();
  t.is(node.server.stats().closes.parse_error, 1);
});

test('C6.7/C6.8 client +OK and INFO ignored; client -ERR closes', async (t) => {
  const { node, port } = await startTestNode(t);
  const [c] = await RawClient.open(t, port, QUIET);
  c.send('+OK\r\nINFO {}\r\n');
  t.is(await c.flushed(), '');
  c.send("-ERR 'oops'\r\n");
  await c.waitClosed();
  t.is(node.server.stats().closes.client_sent_err, 1);
});

test('C6.9 a connection that never reads is cut off as a slow consumer; others go on', async (t) => {
  const { node, port } = await startTestNode(t, { maxPendingBytes: 256 * 1024 });
  const [slow] = await RawClient.open(t, port, QUIET);
  slow.send('SUB flood 1\r\n');
  await slow.flushed();
  slow.socket.pause(); // stop reading: the kernel buffers fill, then ours
  const [fast] = await RawClient.open(t, port, QUIET);
  fast.send('SUB flood 1\r\n');
  await fast.flushed();
  const [pub] = await RawClient.open(t, port, QUIET);
  const payload = 'p'.repeat(1024);
  let sent = 0;
  // Bounded: at most 64 MiB in all, far above what the kernel and the limit can hold.
  while (!node.server.stats().closes.slow_consumer && sent < 64 * 1024) {
    let batch = '';
    for (let i = 0; i < 256; i++) batch += `PUB flood 1024\r\n${payload}\r\n`;
    pub.send(batch);
    sent += 256;
    await pub.flushed();
    fast.buffer = ''; // the fast reader keeps reading; drop what it got
  }
  t.is(node.server.stats().closes.slow_consumer, 1);
  t.true(sent < 64 * 1024);
  fast.buffer = '';
  fast.send('SUB after 2\r\n');
  await fast.flushed();
  pub.send('PUB after 2\r\nok\r\n');
  await fast.expect(/^(MSG flood[^\n]*\n[^\n]*\n)*MSG after 2 2\r\nok\r\n/);
});

test('C6.10 connections beyond the limit get INFO, -ERR and are closed', async (t) => {
  const { node, port } = await startTestNode(t, { maxConnections: 3 });
  const open = await Promise.all([0, 1, 2].map(() => RawClient.open(t, port, QUIET)));
  const [extra] = await RawClient.open(t, port);
  await extra.expect(/^-ERR 'maximum connections exceeded'\r\n/);
  await extra.waitClosed();
  t.is(node.server.stats().closes.max_connections_exceeded, 1);
  // A slot frees up when one leaves.
  open[0]![0].socket.destroy();
  await waitFor(() => node.server.stats().connections === 2, 'connection count to drop');
  const [again] = await RawClient.open(t, port, QUIET);
  t.is(await again.flushed(), '');
});

test('C7.2 HELP lists every verb with its usage', async (t) => {
  const { port } = await startTestNode(t);
  const [c] = await RawClient.open(t, port, QUIET);
  c.send('help\r\n');
  const text = await c.flushed();
  for (const verb of [
    'PUB <subject>',
    'HPUB',
    'SUB <subject>',
    'UNSUB <sid>',
    'CONNECT <json>',
    'PING',
    'HELP',
  ]) {
    t.true(text.includes(verb), `HELP mentions ${verb}`);
  }
  for (const line of text.trimEnd().split('\r\n')) t.true(line.startsWith('#'), line);
});

test('C6.11 closes are counted by reason', async (t) => {
  const { node, port } = await startTestNode(t);
  const [c] = await RawClient.open(t, port, QUIET);
  c.socket.end();
  await waitFor(() => node.server.stats().closes.client_closed === 1, 'client_closed to be counted');
  t.is(node.server.stats().connections, 0);
});
