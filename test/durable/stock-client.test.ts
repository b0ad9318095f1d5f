/**
 * Durable destinations seen from a stock NATS client (@nats-io/transport-node),
 * protocol/DURABLE.md D3.7: a PUB to an existing destination is stored (and
 * still delivered to core subscribers); a request gets a JetStream-shaped
 * JSON ack. Raw PULLs check what was stored.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { QUIET, RawClient, startTestNode, waitFor } from '../helpers/wire.js';

const te = new TextEncoder();
const td = new TextDecoder();

async function client(t: ExecutionContext, port: number, name?: string): Promise<NatsConnection> {
  const nc = await connect({ servers: `127.0.0.1:${port}`, reconnect: false, ...(name ? { name } : {}) });
  t.teardown(async () => {
    if (!nc.isClosed()) await nc.close();
  });
  return nc;
}

async function raw(t: ExecutionContext, port: number): Promise<RawClient> {
  const [c] = await RawClient.open(t, port, QUIET);
  return c;
}

async function create(c: RawClient, name: string, opts = ''): Promise<void> {
  c.send(`CREATE ${name}${opts === '' ? '' : ` ${opts}`}\r\n`);
  await c.expect(/^\+(?:CREATED|EXISTS) \S+\r\n/);
}

interface Dmsg {
  handle: string;
  id: string;
  headers: Buffer;
  payload: Buffer;
}

/** A raw PULL: the DMSG frames up to +PULLED. */
async function pull(c: RawClient, dest: string, group: string, args = ''): Promise<Dmsg[]> {
  c.send(`PULL ${dest} ${group}${args === '' ? '' : ` ${args}`}\r\n`);
  const out: Dmsg[] = [];
  for (;;) {
    const m = await c.expect(
      /^(?:DMSG \S+ (\S+) ([^ \r\n]+) \d+ \d+ \d+ (\d+) (\d+)\r\n|\+PULLED \S+ (\d+)\r\n)/,
    );
    if (m[5] !== undefined) {
      if (Number(m[5]) !== out.length) throw new Error(`+PULLED ${m[5]} after ${out.length} DMSG`);
      return out;
    }
    const body = await c.expect(new RegExp(`^([\\s\\S]{${m[4]}})\\r\\n`));
    const bytes = Buffer.from(body[1]!, 'latin1');
    const h = Number(m[3]);
    out.push({ handle: m[1]!, id: m[2]!, headers: bytes.subarray(0, h), payload: bytes.subarray(h) });
  }
}

function ack(data: Uint8Array): Record<string, unknown> {
  return JSON.parse(td.decode(data)) as Record<string, unknown>;
}

test('D3.7 a request to an existing destination gets {"stream","seq"} once stored', async (t) => {
  const { node, port } = await startTestNode(t);
  const c = await raw(t, port);
  await create(c, 'orders');
  const nc = await client(t, port);
  for (let i = 1; i <= 3; i++) {
    const r = await nc.request('orders', te.encode(`order ${i}`), { timeout: 5000 });
    t.deepEqual(ack(r.data), { stream: 'orders', seq: i });
  }
  t.is(node.durable.stats.stored, 3);
  const msgs = await pull(c, 'orders', 'g');
  t.deepEqual(
    msgs.map((m) => m.payload.toString()),
    ['order 1', 'order 2', 'order 3'],
  );
  // Without Nats-Msg-Id the node assigns the id (D3.2).
  for (const m of msgs) t.regex(m.id, /^[0-9a-f]{32}$/);
});

test('D3.7/D3.4 Nats-Msg-Id is the id: the second request with it answers duplicate:true', async (t) => {
  const { port } = await startTestNode(t);
  const c = await raw(t, port);
  await create(c, 'pay');
  const nc = await client(t, port);
  const h = headers();
  h.set('Nats-Msg-Id', 'payment-7');
  const first = await nc.request('pay', te.encode('100 EUR'), { headers: h, timeout: 5000 });
  t.deepEqual(ack(first.data), { stream: 'pay', seq: 1 });
  const second = await nc.request('pay', te.encode('100 EUR again'), { headers: h, timeout: 5000 });
  t.deepEqual(ack(second.data), { stream: 'pay', seq: 1, duplicate: true });
  const msgs = await pull(c, 'pay', 'g');
  t.is(msgs.length, 1);
  t.is(msgs[0]!.id, 'payment-7');
  t.is(msgs[0]!.payload.toString(), '100 EUR');
  // A raw SEND with the same id is a duplicate of it too.
  c.send('SEND pay id=payment-7 1\r\nx\r\n');
  await c.expect(/^\+STORED pay 1 payment-7 duplicate\r\n/);
});

test('D3.7 a UTF-8 Nats-Msg-Id and a raw SEND id are the same id', async (t) => {
  const { port } = await startTestNode(t);
  const c = await raw(t, port);
  await create(c, 'q');
  const nc = await client(t, port);
  const id = 'zahlung-à-€';
  const h = headers();
  h.set('Nats-Msg-Id', id);
  t.deepEqual(ack((await nc.request('q', te.encode('a'), { headers: h, timeout: 5000 })).data), {
    stream: 'q',
    seq: 1,
  });
  const wire = Buffer.from(id, 'utf8').toString('latin1');
  c.send(Buffer.from(`SEND q id=${id} 1\r\nb\r\n`, 'utf8'));
  const m = await c.expect(/^\+STORED q (\d+) ([^ \r\n]+)( duplicate)?\r\n/);
  t.is(m[1], '1');
  t.is(m[2], wire);
  t.is(m[3], ' duplicate');
  const [d] = await pull(c, 'q', 'g');
  t.is(d!.id, wire);
});

test('D3.7 a PUB without reply to a destination is stored', async (t) => {
  const { port } = await startTestNode(t);
  const c = await raw(t, port);
  await create(c, 'events');
  const nc = await client(t, port);
  nc.publish('events', te.encode('fire and forget'));
  await nc.flush();
  // flush() saw the PONG, so the PUB was handled; the store answers once synced.
  const [m] = await pull(c, 'events', 'g', '1 5s');
  t.is(m!.payload.toString(), 'fire and forget');
  t.is(m!.headers.length, 0);
});

test('D1.2 a PUB to a subject that is not a destination is only core pub/sub', async (t) => {
  const { node, port } = await startTestNode(t);
  const c = await raw(t, port);
  await create(c, 'known');
  const nc = await client(t, port);
  const sub = nc.subscribe('unknown.subject', { max: 1 });
  nc.publish('unknown.subject', te.encode('core only'));
  nc.publish('known', te.encode('stored'));
  for await (const m of sub) t.is(td.decode(m.data), 'core only');
  await waitFor(() => node.durable.stats.stored === 1, 'the PUB to the destination to be stored');
  await nc.flush();
  t.is(node.durable.stats.stored, 1);
  t.false(node.durable.isDestination('unknown.subject'));
  c.send('DESTS\r\n');
  await c.expect(/^DEST known depth=1 [^\r\n]*\r\n\+DESTS 1\r\n/);
  t.pass();
});

test('D3.7/C5.4 a request to a destination with no core subscriber gets the JSON ack, not no-responders', async (t) => {
  const { port } = await startTestNode(t);
  const c = await raw(t, port);
  await create(c, 'lonely');
  const nc = await client(t, port);
  // The client asks for no-responders (503) by default: the stored message counts as a responder.
  const r = await nc.request('lonely', te.encode('anyone?'), { timeout: 5000 });
  t.falsy(r.headers?.code);
  t.deepEqual(ack(r.data), { stream: 'lonely', seq: 1 });
  // A subject that is not a destination still fails fast with no responders.
  const err = await t.throwsAsync(nc.request('not.a.destination', te.encode('?'), { timeout: 20_000 }));
  t.regex(String(err), /no responders|503/i);
});

test('D3.7 core subscribers still receive PUBs to a destination subject', async (t) => {
  const { port } = await startTestNode(t);
  const c = await raw(t, port);
  await create(c, 'orders.eu');
  const subscriber = await client(t, port);
  const got: string[] = [];
  const done = new Promise<void>((resolve) => {
    subscriber.subscribe('orders.*', {
      callback: (_e, m) => {
        got.push(`${m.subject}:${td.decode(m.data)}`);
        if (got.length === 2) resolve();
      },
    });
  });
  await subscriber.flush();
  const nc = await client(t, port);
  const r = await nc.request('orders.eu', te.encode('one'), { timeout: 5000 });
  t.deepEqual(ack(r.data), { stream: 'orders.eu', seq: 1 });
  nc.publish('orders.eu', te.encode('two'));
  await done;
  t.deepEqual(got, ['orders.eu:one', 'orders.eu:two']);
  const stored = await pull(c, 'orders.eu', 'g', '10 5s');
  t.true(stored.length >= 1);
  const all = stored.length === 2 ? stored : [...stored, ...(await pull(c, 'orders.eu', 'g', '10 5s'))];
  t.deepEqual(
    all.map((m) => m.payload.toString()),
    ['one', 'two'],
  );
});

test('D3.7 headers are stored and come back in the DMSG header bytes', async (t) => {
  const { port } = await startTestNode(t);
  const c = await raw(t, port);
  await create(c, 'traced');
  const nc = await client(t, port);
  const h = headers();
  h.set('Trace-Id', 'abc-123');
  h.append('Multi', 'one');
  h.append('Multi', 'two');
  h.set('Nats-Msg-Id', 'evt-1');
  const r = await nc.request('traced', te.encode('body'), { headers: h, timeout: 5000 });
  t.deepEqual(ack(r.data), { stream: 'traced', seq: 1 });
  const [m] = await pull(c, 'traced', 'g');
  t.is(m!.id, 'evt-1');
  t.is(m!.payload.toString(), 'body');
  const block = m!.headers.toString('latin1');
  t.true(block.startsWith('NATS/1.0\r\n'), block);
  t.true(block.endsWith('\r\n\r\n'), block);
  t.regex(block, /\r\nTrace-Id: abc-123\r\n/);
  t.regex(block, /\r\nMulti: one\r\nMulti: two\r\n/);
  t.regex(block, /\r\nNats-Msg-Id: evt-1\r\n/);
});

test('D3.7/D8.4 a refused PUB is answered {"error":{"code":400,...}} and nothing is stored', async (t) => {
  const { node, port } = await startTestNode(t);
  const c = await raw(t, port);
  await create(c, 'small', 'max_msgs=1');
  const nc = await client(t, port);
  t.deepEqual(ack((await nc.request('small', te.encode('fits'), { timeout: 5000 })).data), {
    stream: 'small',
    seq: 1,
  });
  const r = await nc.request('small', te.encode('does not fit'), { timeout: 5000 });
  const body = ack(r.data) as { error?: { code?: number; description?: string } };
  t.is(body.error?.code, 400);
  t.regex(body.error?.description ?? '', /^destination small is full \(max_msgs 1\)/);
  t.is(node.durable.stats.stored, 1);
  c.send('DESTS\r\n');
  await c.expect(/^DEST small depth=1 [^\r\n]*\r\n\+DESTS 1\r\n/);
});

test('D3.2/D3.7 the producer of a PUB is the client CONNECT name', async (t) => {
  const { node, port } = await startTestNode(t);
  const c = await raw(t, port);
  await create(c, 'q');
  const nc = await client(t, port, 'billing-service');
  await nc.request('q', te.encode('x'), { timeout: 5000 });
  const [d] = await node.durable.pull({ destination: 'q', group: 'inspect', max: 1, waitMs: 0 });
  t.is(d!.producer, 'billing-service');
});

test('D3.7 a raw PUB with a reply subject gets the JSON ack on it', async (t) => {
  const { port } = await startTestNode(t);
  const c = await raw(t, port);
  await create(c, 'q');
  c.send('SUB _INBOX.me 7\r\nPUB q _INBOX.me 5\r\nhello\r\n');
  const m = await c.expect(/^MSG _INBOX\.me 7 (\d+)\r\n([^\r\n]*)\r\n/);
  t.deepEqual(JSON.parse(m[2]!), { stream: 'q', seq: 1 });
});

test('D3.7 a UTF-8 destination name: the PUB is stored and the ack names it as text', async (t) => {
  const { port } = await startTestNode(t);
  const c = await raw(t, port);
  const name = 'bestellungen.café';
  c.send(Buffer.from(`CREATE ${name}\r\n`, 'utf8'));
  await c.expect(/^\+CREATED [^\r\n]+\r\n/);
  const nc = await client(t, port);
  const r = await nc.request(name, te.encode('x'), { timeout: 5000 });
  t.deepEqual(ack(r.data), { stream: name, seq: 1 });
});
