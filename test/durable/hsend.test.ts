/**
 * Wire tests of HSEND, a durable send with headers (protocol/DURABLE.md
 * D3.9): a real node on a real TCP port spoken to in raw protocol, and the
 * wire client of src/sdk/wire sending with headers. Each test cites the rule
 * it checks; waits poll with a deadline.
 */
import test from 'ava';
import { parseAuthorization } from '../../src/auth/config.js';
import { hashApiKey, newApiKey } from '../../src/auth/credentials.js';
import { connect } from '../../src/sdk/wire/connection.js';
import { ClientError, ClientErrorCode } from '../../src/sdk/wire/errors.js';
import { QUIET, RawClient, startTestNode } from '../helpers/wire.js';
import { expectErr, expectStored, open, pull, type Stored } from '../helpers/durable-wire.js';

// ---- helpers ---------------------------------------------------------------

/** A NATS/1.0 header block (C3.1) with the given fields. */
function block(fields: Record<string, string> = {}): string {
  return `NATS/1.0\r\n${Object.entries(fields)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
}

/** An HSEND frame (D3.9); sizes in bytes of the latin1 text. */
function hsendFrame(dest: string, headers: string, payload: string, opts = ''): string {
  const h = Buffer.byteLength(headers, 'latin1');
  const total = h + Buffer.byteLength(payload, 'latin1');
  return `HSEND ${dest}${opts === '' ? '' : ` ${opts}`} ${h} ${total}\r\n${headers}${payload}\r\n`;
}

async function hsend(
  c: RawClient,
  dest: string,
  headers: string,
  payload: string,
  opts = '',
): Promise<Stored> {
  c.send(hsendFrame(dest, headers, payload, opts));
  return expectStored(c);
}

/** PULL (D4.1) and what this file checks of each delivery: id, priority, header block and payload as latin1 text. */
async function pullText(
  c: RawClient,
  dest: string,
  group: string,
): Promise<{ id: string; priority: number; headers: string; payload: string }[]> {
  return (await pull(c, dest, group)).map((d) => ({
    id: d.id,
    priority: d.priority,
    headers: d.headers.toString('latin1'),
    payload: d.payload,
  }));
}

// ---- D3.9 over raw TCP ---------------------------------------------------------

test('D3.9 HSEND is stored and answered +STORED; its DMSG carries the header block byte for byte', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  const headers = block({ 'X-Order': 'o-1', 'X-Bin': '\u00e9\u00ff' });
  const s = await hsend(c, 'orders', headers, 'first order', 'priority=9');
  t.is(s.dest, 'orders');
  t.is(s.seq, 1);
  t.regex(s.id, /^[0-9a-f]{32}$/, 'D3.2: assigned ids are 32 hex digits');
  t.false(s.duplicate);
  // The same destination takes plain SENDs too; they come without headers (D4.1: 0 header bytes).
  c.send('SEND orders 6\r\nsecond\r\n');
  const plain = await expectStored(c);
  t.is(plain.seq, 2);
  t.deepEqual(await pullText(c, 'orders', 'g'), [
    { id: s.id, priority: 9, headers, payload: 'first order' },
    { id: plain.id, priority: 5, headers: '', payload: 'second' },
  ]);
});

test('D3.9 an empty payload and an empty header block are accepted; an empty block is no headers', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  await hsend(c, 'q', block({ A: '1' }), '');
  await hsend(c, 'q', '', 'body');
  const got = await pullText(c, 'q', 'g');
  t.deepEqual(
    got.map((m) => [m.headers, m.payload]),
    [
      [block({ A: '1' }), ''],
      ['', 'body'],
    ],
  );
});

test('D3.9/D3.7/D3.4 without id= the Nats-Msg-Id header is the id, and de-duplicates', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  const first = await hsend(c, 'q', block({ 'Nats-Msg-Id': 'order-7' }), 'a');
  t.like(first, { seq: 1, id: 'order-7', duplicate: false });
  // The header name is case-insensitive, as for a stock client's HPUB (D3.7).
  const again = await hsend(c, 'q', block({ 'nats-msg-id': 'order-7' }), 'b');
  t.like(again, { seq: 1, id: 'order-7', duplicate: true });
  // A SEND with that id is the same message (D3.4).
  c.send('SEND q id=order-7 1\r\nc\r\n');
  t.like(await expectStored(c), { seq: 1, id: 'order-7', duplicate: true });
  // id= wins over the header.
  const given = await hsend(c, 'q', block({ 'Nats-Msg-Id': 'order-7' }), 'd', 'id=order-8');
  t.like(given, { seq: 2, id: 'order-8', duplicate: false });
  const got = await pullText(c, 'q', 'g');
  t.deepEqual(
    got.map((m) => [m.id, m.payload]),
    [
      ['order-7', 'a'],
      ['order-8', 'd'],
    ],
  );
  t.is(got[0]!.headers, block({ 'Nats-Msg-Id': 'order-7' }), 'the header stays in the stored block');
});

test('D3.9/D3.5/D3.8 HSEND answers come in send order with SENDs, refusals included; the connection stays open', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  c.send(
    [
      hsendFrame('q', block({ N: '1' }), 'one'),
      'SEND q 3\r\ntwo\r\n',
      hsendFrame('q', block(), 'x', 'priority=11'),
      hsendFrame('q', block(), 'x', 'colour=red'),
      hsendFrame('bad..name', block(), 'x'),
      hsendFrame('q', block({ N: '3' }), 'three'),
    ].join(''),
  );
  t.like(await expectStored(c), { seq: 1 });
  t.like(await expectStored(c), { seq: 2 });
  t.regex(await expectErr(c), /^priority must be 1-10/);
  t.regex(await expectErr(c), /^unknown SEND option "colour=red"/);
  t.regex(await expectErr(c), /^invalid destination name/);
  t.like(await expectStored(c), { seq: 3 });
  t.is(await c.flushed(), '');
  t.deepEqual(
    (await pullText(c, 'q', 'g')).map((m) => m.payload),
    ['one', 'two', 'three'],
    'D3.8: nothing refused is stored',
  );
});

test('D3.9/C2.8 under verbose HSEND gets no +OK, as SEND: only its +STORED', async (t) => {
  const { port } = await startTestNode(t);
  const c = await open(t, port);
  c.send('CONNECT {"verbose":true,"headers":true}\r\n');
  await c.expect(/^\+OK\r\n/);
  c.send(`SEND q 1\r\na\r\n${hsendFrame('q', block(), 'b')}`);
  // Anchored: an +OK before either answer fails the match.
  await c.expect(/^\+STORED q 1 [0-9a-f]{32}\r\n\+STORED q 2 [0-9a-f]{32}\r\n/);
  t.is(await c.flushed(), '', 'and none after them');
  // Verbose is on: a PUB gets its +OK.
  c.send('PUB core 1\r\nc\r\n');
  t.is(await c.flushed(), '+OK\r\n');
});

const malformed: { title: string; frame: string; err: RegExp; maxPayloadBytes?: number }[] = [
  {
    title: 'one size only',
    frame: 'HSEND q 5\r\nhello\r\n',
    err: /^Invalid HSEND arguments, expected: HSEND <destination> .* <#header-bytes> <#total-bytes>$/,
  },
  { title: 'header bytes above total', frame: 'HSEND q 14 12\r\n', err: /^Invalid HSEND arguments/ },
  { title: 'a size that is not a number', frame: 'HSEND q 12 x\r\n', err: /^Invalid HSEND arguments/ },
  { title: 'no destination', frame: 'HSEND 12 14\r\n', err: /^Invalid HSEND arguments/ },
  // C1.6: headers count towards max_payload, refused from the control line.
  {
    title: 'total above max_payload',
    frame: 'HSEND q 12 1025\r\n',
    err: /^Maximum Payload Violation$/,
    maxPayloadBytes: 1024,
  },
];

for (const m of malformed) {
  test(`D3.9/C6.3/C6.4 malformed HSEND (${m.title}): -ERR and close, nothing stored`, async (t) => {
    const { node, port } = await startTestNode(
      t,
      m.maxPayloadBytes === undefined ? {} : { maxPayloadBytes: m.maxPayloadBytes },
    );
    const c = await open(t, port);
    c.send(`${m.frame}SEND q 1\r\nx\r\n`);
    t.regex(await expectErr(c), m.err);
    await c.waitClosed();
    t.false(node.durable.isDestination('q'), 'nothing after the bad line was read');
  });
}

test('D3.9/C3.5 HSEND from a connection without headers:true is refused as HPUB is, and closed', async (t) => {
  const { node, port } = await startTestNode(t);
  const c = await open(t, port, { ...QUIET, headers: false });
  c.send(hsendFrame('q', block(), 'x'));
  t.is(await expectErr(c), 'message headers not supported (send CONNECT {"headers":true} first)');
  await c.waitClosed();
  t.false(node.durable.isDestination('q'));
});

test('D3.9/SEC3.4 HSEND needs the send right, as SEND; a refusal leaves the connection open', async (t) => {
  const key = newApiKey();
  const auth = parseAuthorization({
    keys: [
      {
        name: 'orders-only',
        key_hash: hashApiKey(key),
        permissions: { destinations: { send: ['orders'], pull: ['orders'], admin: [] } },
      },
    ],
  });
  const { port } = await startTestNode(t, { auth });
  const c = await open(t, port, { ...QUIET, auth_token: key } as typeof QUIET);
  c.send(hsendFrame('billing', block(), 'x'));
  t.is(await expectErr(c), 'Permissions Violation for Send to "billing"');
  t.like(await hsend(c, 'orders', block({ A: '1' }), 'y'), { dest: 'orders', seq: 1 });
});

// ---- the wire client (src/sdk/wire) ---------------------------------------------

test('D3.9 the wire client sends with headers as HSEND; a pull gives them back', async (t) => {
  const { port } = await startTestNode(t, { maxPayloadBytes: 1024 });
  const client = await connect({ host: '127.0.0.1', port });
  t.teardown(() => client.close());
  const headers = Buffer.from(block({ 'Nats-Msg-Id': 'w-1', 'X-Trace': 'abc' }), 'latin1');
  const stored = await client.send('orders', Buffer.from('with headers'), { headers, priority: 7 });
  t.like(stored, { destination: 'orders', seq: 1, id: 'w-1', duplicate: false });
  t.like(await client.send('orders', Buffer.from('again'), { headers }), { seq: 1, duplicate: true });
  const plain = await client.send('orders', Buffer.from('plain'));
  t.is(plain.seq, 2);
  const got = await client.pull('orders', 'g', { batch: 10 });
  t.deepEqual(
    got.map((d) => [d.id, d.priority, d.headers?.toString('latin1'), d.payload.toString()]),
    [
      ['w-1', 7, headers.toString('latin1'), 'with headers'],
      [plain.id, 5, undefined, 'plain'],
    ],
  );
  // The size check counts the headers (C1.6): 1000 bytes of payload fit alone, not with the block.
  const err = t.throws(() => client.send('orders', Buffer.alloc(1000), { headers }), {
    instanceOf: ClientError,
  });
  t.is(err?.code, ClientErrorCode.Invalid);
  t.is((await client.send('orders', Buffer.alloc(1000))).seq, 3);
});
