/**
 * The stock NATS client (@nats-io/transport-node) against a real node:
 * what applications see. Rule numbers refer to protocol/CLIENT.md.
 */
import test from 'ava';
import { connect, headers, type NatsConnection, type Msg } from '@nats-io/transport-node';
import { RawClient, QUIET, startTestNode, waitFor } from '../helpers/wire.js';
import type { ExecutionContext } from 'ava';

async function client(
  t: ExecutionContext,
  port: number,
  opts: Record<string, unknown> = {},
): Promise<NatsConnection> {
  const nc = await connect({ servers: `127.0.0.1:${port}`, reconnect: false, ...opts });
  t.teardown(async () => {
    if (!nc.isClosed()) await nc.close();
  });
  return nc;
}

const te = new TextEncoder();
const td = new TextDecoder();

test('connects, publishes and subscribes (C2.1, C5.1)', async (t) => {
  const { port } = await startTestNode(t, { name: 'stock' });
  const nc = await client(t, port);
  t.is(nc.info?.server_name, 'stock');
  const sub = nc.subscribe('greet.joe', { max: 1 });
  nc.publish('greet.joe', te.encode('hello'));
  for await (const m of sub) t.is(td.decode(m.data), 'hello');
});

test('wildcards * and > (C4.1)', async (t) => {
  const { port } = await startTestNode(t);
  const nc = await client(t, port);
  const got: string[] = [];
  const done = new Promise<void>((resolve) => {
    nc.subscribe('orders.*.created', {
      callback: (_e, m) => {
        got.push(`star:${m.subject}`);
        if (got.length === 5) resolve();
      },
    });
    nc.subscribe('orders.>', {
      callback: (_e, m) => {
        got.push(`tail:${m.subject}`);
        if (got.length === 5) resolve();
      },
    });
  });
  await nc.flush();
  nc.publish('orders.eu.created');
  nc.publish('orders.us.created');
  nc.publish('orders.eu.shipped.today');
  nc.publish('orders');
  await done;
  t.deepEqual(got.sort(), [
    'star:orders.eu.created',
    'star:orders.us.created',
    'tail:orders.eu.created',
    'tail:orders.eu.shipped.today',
    'tail:orders.us.created',
  ]);
});

test('queue group: every message to exactly one member (C5.2)', async (t) => {
  const { port } = await startTestNode(t);
  const n = 3000;
  const seen = new Map<number, number>();
  const perMember = [0, 0, 0];
  const members = await Promise.all([0, 1, 2].map(() => client(t, port)));
  let total = 0;
  const all = new Promise<void>((resolve) => {
    members.forEach((nc, i) =>
      nc.subscribe('jobs', {
        queue: 'workers',
        callback: (_e, m) => {
          const id = Number(td.decode(m.data));
          seen.set(id, (seen.get(id) ?? 0) + 1);
          perMember[i]!++;
          if (++total === n) resolve();
        },
      }),
    );
  });
  await Promise.all(members.map((m) => m.flush()));
  const pub = await client(t, port);
  for (let i = 0; i < n; i++) pub.publish('jobs', te.encode(String(i)));
  await pub.flush();
  await all;
  // Every member has flushed past everything, so no late duplicate can follow.
  await Promise.all(members.map((m) => m.flush()));
  t.is(seen.size, n);
  t.true([...seen.values()].every((c) => c === 1));
  for (const k of perMember) t.true(k > n / 6, `a member got ${k} of ${n}`);
});

test('request/reply (C5.6)', async (t) => {
  const { port } = await startTestNode(t);
  const svc = await client(t, port);
  svc.subscribe('math.double', {
    callback: (_e, m: Msg) => {
      m.respond(te.encode(String(Number(td.decode(m.data)) * 2)));
    },
  });
  await svc.flush();
  const nc = await client(t, port);
  for (let i = 0; i < 50; i++) {
    const r = await nc.request('math.double', te.encode(String(i)), { timeout: 5000 });
    t.is(td.decode(r.data), String(i * 2));
  }
});

test('no responders: a request with nobody listening fails fast (C5.4)', async (t) => {
  const { port } = await startTestNode(t);
  const nc = await client(t, port);
  const started = Date.now();
  const err = await t.throwsAsync(nc.request('nobody.here', Empty(), { timeout: 20_000 }));
  t.true(
    (err as { isNoResponders?: () => boolean }).isNoResponders?.() === true ||
      /no responders/i.test(String(err)),
    String(err),
  );
  t.true(Date.now() - started < 20_000);
});

test('headers round-trip (C3.1, C5.3)', async (t) => {
  const { port } = await startTestNode(t);
  const nc = await client(t, port);
  const sub = nc.subscribe('h', { max: 1 });
  const h = headers();
  h.set('Trace-Id', 'abc-123');
  h.append('Multi', 'one');
  h.append('Multi', 'two');
  nc.publish('h', te.encode('body'), { headers: h });
  for await (const m of sub) {
    t.is(m.headers?.get('Trace-Id'), 'abc-123');
    t.deepEqual(m.headers?.values('Multi'), ['one', 'two']);
    t.is(td.decode(m.data), 'body');
  }
});

test('unsubscribe with max, then unsubscribe (C4.5, C4.6)', async (t) => {
  const { port } = await startTestNode(t);
  const nc = await client(t, port);
  const sub = nc.subscribe('m', { max: 3 });
  for (let i = 0; i < 10; i++) nc.publish('m', te.encode(String(i)));
  const got: string[] = [];
  for await (const m of sub) got.push(td.decode(m.data));
  t.deepEqual(got, ['0', '1', '2']);
  const sub2 = nc.subscribe('u');
  let n = 0;
  (async () => {
    for await (const _m of sub2) n++;
  })().catch(() => undefined);
  nc.publish('u');
  await nc.flush();
  await waitFor(() => n === 1, 'first message');
  sub2.unsubscribe();
  nc.publish('u');
  await nc.flush();
  // A round trip on another subscription proves the second publish was handled.
  const probe = nc.subscribe('probe', { max: 1 });
  nc.publish('probe');
  for await (const _m of probe) break;
  t.is(n, 1);
});

test('drain delivers what was published, then closes', async (t) => {
  const { node, port } = await startTestNode(t);
  const nc = await client(t, port);
  let n = 0;
  nc.subscribe('d', { callback: () => void n++ });
  await nc.flush();
  const pub = await client(t, port);
  for (let i = 0; i < 1000; i++) pub.publish('d', te.encode('x'));
  await pub.flush();
  await nc.drain();
  t.is(n, 1000);
  t.true(nc.isClosed());
  await waitFor(() => node.server.stats().connections === 1, 'server to see the drained client leave');
});

test('echo off (C5.5)', async (t) => {
  const { port } = await startTestNode(t);
  const nc = await client(t, port, { noEcho: true });
  let own = 0;
  nc.subscribe('echo', { callback: () => void own++ });
  const other = await client(t, port);
  const sub = other.subscribe('echo', { max: 1 });
  await other.flush();
  nc.publish('echo', te.encode('x'));
  await nc.flush();
  for await (const _m of sub) break;
  await nc.flush();
  t.is(own, 0);
});

test('oversize payload: the client refuses from our max_payload; the server refuses a raw one (C6.4)', async (t) => {
  const { node, port } = await startTestNode(t, { maxPayloadBytes: 4096 });
  const nc = await client(t, port);
  t.is(nc.info?.max_payload, 4096);
  t.throws(() => nc.publish('big', new Uint8Array(5000)), { message: /max_payload/ });
  nc.publish('ok', new Uint8Array(4096));
  await nc.flush();
  const [raw] = await RawClient.open(t, port, QUIET);
  raw.send('PUB big 5000\r\n');
  await raw.expect(/^-ERR 'Maximum Payload Violation'\r\n/);
  await raw.waitClosed();
  t.is(node.server.stats().closes.max_payload_exceeded, 1);
});

test('a slow consumer is cut off while a stock client keeps working (C6.9)', async (t) => {
  const { node, port } = await startTestNode(t, { maxPendingBytes: 128 * 1024 });
  const [slow] = await RawClient.open(t, port, QUIET);
  slow.send('SUB flood 1\r\n');
  await slow.flushed();
  slow.socket.pause();
  const nc = await client(t, port);
  let received = 0;
  nc.subscribe('flood', { callback: () => void received++ });
  await nc.flush();
  const pub = await client(t, port);
  const payload = new Uint8Array(1024);
  let sent = 0;
  while (!node.server.stats().closes.slow_consumer && sent < 100_000) {
    for (let i = 0; i < 500; i++) pub.publish('flood', payload);
    sent += 500;
    await pub.flush();
  }
  t.is(node.server.stats().closes.slow_consumer, 1);
  await waitFor(() => received === sent, `the stock subscriber to get all ${sent}`);
  const r = nc.subscribe('still', { max: 1 });
  pub.publish('still', te.encode('here'));
  for await (const m of r) t.is(td.decode(m.data), 'here');
});

function Empty(): Uint8Array {
  return new Uint8Array(0);
}
