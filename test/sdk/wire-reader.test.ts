/**
 * Unit tests of the wire client reader of server frames (src/sdk/wire/reader.ts):
 * no sockets. Every frame a node sends (CLIENT.md C2.1, C5.1, C5.3; DURABLE.md
 * D3.1, D4.1), split at every byte; the limits; malformed input.
 */
import test from 'ava';
import { ServerReader, type ReaderLimits, type ServerOp } from '../../src/sdk/wire/reader.js';

const LIMITS: ReaderLimits = { maxControlLineBytes: 4096, maxPayloadBytes: 1024 * 1024 };

/** Ops with their buffers as text, so they compare with deepEqual. */
function read(chunks: readonly Buffer[], limits: ReaderLimits = LIMITS): unknown[] {
  const out: unknown[] = [];
  const reader = new ServerReader((op: ServerOp) => {
    const o: Record<string, unknown> = { ...op };
    for (const k of ['headers', 'payload']) {
      if (Buffer.isBuffer(o[k])) o[k] = (o[k] as Buffer).toString('latin1');
    }
    out.push(o);
  }, limits);
  for (const c of chunks) reader.feed(c);
  return out;
}

const STREAM = [
  'INFO {"server_id":"N1","max_payload":1048576,"headers":true}\r\n',
  'MSG greet.joe 1 5\r\nhello\r\n',
  'MSG greet.ann 2 _INBOX.x.1 0\r\n\r\n',
  'HMSG h 9 22 33\r\nNATS/1.0\r\nBar: Baz\r\n\r\nHello NATS!\r\n',
  'HMSG _INBOX.x.2 3 16 16\r\nNATS/1.0 503\r\n\r\n\r\n',
  'PING\r\nPONG\r\n+OK\r\n',
  '-ERR \'Permissions Violation for Send to "orders"\'\r\n',
  '+STORED orders 7 5d0e3a2b duplicate\r\n',
  '+STORED orders 8 id-1\r\n',
  'DMSG orders 8/1/billing/orders id-1 9 1 1795717373898 0 12\r\nfirst\r\norder\r\n',
  'DMSG orders 9/2/billing/orders id-2 5 2 1795717373899 12 14\r\nNATS/1.0\r\n\r\nhi\r\n',
  '+PULLED orders 2\r\n',
  '+CREATED orders\r\n',
].join('');

const EXPECTED = [
  { kind: 'INFO', info: { server_id: 'N1', max_payload: 1048576, headers: true } },
  { kind: 'MSG', subject: 'greet.joe', sid: '1', reply: undefined, headers: undefined, payload: 'hello' },
  { kind: 'MSG', subject: 'greet.ann', sid: '2', reply: '_INBOX.x.1', headers: undefined, payload: '' },
  {
    kind: 'MSG',
    subject: 'h',
    sid: '9',
    reply: undefined,
    headers: 'NATS/1.0\r\nBar: Baz\r\n\r\n',
    payload: 'Hello NATS!',
  },
  {
    kind: 'MSG',
    subject: '_INBOX.x.2',
    sid: '3',
    reply: undefined,
    headers: 'NATS/1.0 503\r\n\r\n',
    payload: '',
  },
  { kind: 'PING' },
  { kind: 'PONG' },
  { kind: 'OK' },
  { kind: 'ERR', message: 'Permissions Violation for Send to "orders"' },
  { kind: 'STORED', destination: 'orders', seq: 7, id: '5d0e3a2b', duplicate: true },
  { kind: 'STORED', destination: 'orders', seq: 8, id: 'id-1', duplicate: false },
  {
    kind: 'DMSG',
    destination: 'orders',
    handle: '8/1/billing/orders',
    id: 'id-1',
    priority: 9,
    deliveries: 1,
    timestampMs: 1795717373898,
    headers: undefined,
    payload: 'first\r\norder',
  },
  {
    kind: 'DMSG',
    destination: 'orders',
    handle: '9/2/billing/orders',
    id: 'id-2',
    priority: 5,
    deliveries: 2,
    timestampMs: 1795717373899,
    headers: 'NATS/1.0\r\n\r\n',
    payload: 'hi',
  },
  { kind: 'PULLED', destination: 'orders', count: 2 },
  { kind: 'LINE', line: '+CREATED orders' },
];

test('every server frame is read (C2.1, C5.1, C5.3, C5.4, D3.1, D3.4, D4.1)', (t) => {
  t.deepEqual(read([Buffer.from(STREAM)]), EXPECTED);
});

test('the same stream split at every byte, and one byte at a time, reads the same (C1.4)', (t) => {
  const all = Buffer.from(STREAM);
  for (let i = 1; i < all.length; i++) {
    t.deepEqual(read([all.subarray(0, i), all.subarray(i)]), EXPECTED, `split at ${i}`);
  }
  t.deepEqual(read(Array.from(all, (b) => Buffer.from([b]))), EXPECTED);
});

test('names and ids are UTF-8 (D3.2)', (t) => {
  const ops = read([Buffer.from('+STORED commandes 1 reçu-1\r\nMSG café 1 2\r\nok\r\n')]);
  t.like(ops[0], { destination: 'commandes', id: 'reçu-1' });
  t.like(ops[1], { subject: 'café', payload: 'ok' });
});

test('a line over the limit is a fatal error, found before the line ends', (t) => {
  const limits = { maxControlLineBytes: 16, maxPayloadBytes: 64 };
  t.deepEqual(read([Buffer.from('MSG a 1 2\r\nhi\r\n')], limits).length, 1);
  const ops = read([Buffer.from('INFO {"a":"0123456789"')], limits);
  t.deepEqual(ops, [{ kind: 'error', message: 'a line from the server is longer than 16 bytes' }]);
});

test('a frame over the payload limit is refused from its control line, and input after it is ignored', (t) => {
  const limits = { maxControlLineBytes: 64, maxPayloadBytes: 4 };
  const ops = read([Buffer.from('MSG a 1 5\r\n'), Buffer.from('hello\r\nPING\r\n')], limits);
  t.is(ops.length, 1);
  t.like(ops[0], { kind: 'error' });
  t.regex((ops[0] as { message: string }).message, /5-byte message, over this client's limit of 4/);
});

test('malformed frames are fatal errors', (t) => {
  for (const bad of [
    'MSG a\r\n',
    'MSG a 1 x\r\n',
    'HMSG a 1 10 5\r\n',
    'DMSG d h id 5 1\r\n',
    'DMSG d h id five 1 1 0 0\r\n',
    'INFO [1]\r\n',
    'INFO {\r\n',
    '+STORED d x id\r\n',
    '+PULLED d\r\n',
    'MSG a 1 2\r\nhello\r\n',
  ]) {
    const ops = read([Buffer.from(bad)]);
    t.is(ops.length, 1, bad);
    t.is((ops[0] as ServerOp).kind, 'error', bad);
  }
});

test('a payload straddling chunks is copied; one in a single chunk is a view (no copy)', (t) => {
  const got: Buffer[] = [];
  const reader = new ServerReader((op) => {
    if (op.kind === 'MSG') got.push(op.payload);
  }, LIMITS);
  const chunk = Buffer.from('MSG a 1 5\r\nhello\r\n');
  reader.feed(chunk);
  t.is(got[0]!.buffer, chunk.buffer);
  reader.feed(Buffer.from('MSG a 1 5\r\nhe'));
  t.is(reader.bufferedBytes, 2 + 5); // the body and its CRLF, allocated once
  reader.feed(Buffer.from('llo\r\n'));
  t.is(got[1]!.toString(), 'hello');
  t.is(reader.bufferedBytes, 0);
});

test('setMaxPayloadBytes raises the limit for later frames (INFO max_payload)', (t) => {
  const ops: ServerOp[] = [];
  const reader = new ServerReader((op) => ops.push(op), { maxControlLineBytes: 64, maxPayloadBytes: 2 });
  reader.setMaxPayloadBytes(5);
  reader.feed(Buffer.from('MSG a 1 5\r\nhello\r\n'));
  t.is(ops[0]!.kind, 'MSG');
});
