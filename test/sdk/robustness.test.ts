/**
 * The SDK where it is easy to get wrong (protocol/SDK.md), against one real
 * node: answers matched to the right call, retries only of what the
 * cluster caused, close() ending everything, bounded buffers, several
 * readers of one iterator, and listeners and slots given back.
 */
import { getEventListeners } from 'node:events';
import test from 'ava';
import {
  connect,
  DisconnectedError,
  InvalidArgumentError,
  RefusedError,
  type ConsumedMessage,
  type SwarmClient,
} from '../../src/index.js';
import { parseAuthorization } from '../../src/auth/config.js';
import { hashApiKey } from '../../src/auth/credentials.js';
import { startTestNode, waitFor } from '../helpers/wire.js';
import type { ExecutionContext } from 'ava';

async function client(t: ExecutionContext, port: number, extra = {}): Promise<SwarmClient> {
  const c = await connect({ servers: [`127.0.0.1:${port}`], ...extra });
  t.teardown(() => c.close());
  return c;
}

test('SDK2: a refused publish in the same tick as sends never shifts the sends answers', async (t) => {
  const key = 'k-robust-0123456789';
  const auth = parseAuthorization({
    keys: [
      {
        name: 'app',
        key_hash: hashApiKey(key),
        permissions: {
          publish: { allow: ['ok.>', 'jobs', '_INBOX.>'] },
          subscribe: { allow: ['_INBOX.>'] },
          destinations: { send: ['jobs'], pull: ['jobs'], admin: [] },
        },
      },
    ],
  });
  const { port } = await startTestNode(t, {
    auth,
    destinations: [
      { name: 'jobs', settings: { maxMsgs: 3 } },
      { name: 'ok.dest', settings: {} },
    ],
  });
  const c = await client(t, port, { token: key });
  const sends = [1, 2, 3, 4, 5].map((i) => c.send('jobs', `job ${i}`, { id: `id-${i}` }));
  // D3.7: a PUB to a destination this key may not send to is refused with a -ERR on its connection.
  c.publish('ok.dest', 'not mine to store');
  const results = await Promise.allSettled(sends);
  const stored = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.id] : []));
  const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
  t.deepEqual(stored, ['id-1', 'id-2', 'id-3']);
  t.is(refused.length, 2);
  t.true(
    refused.every((e) => e instanceof RefusedError && /is full/.test(e.message)),
    String(refused),
  );
});

test('SDK3.2: a refusal naming a destination with "retry" in it is not retried; a Nats-Msg-Id header is the id', async (t) => {
  const { port } = await startTestNode(t, {
    destinations: [{ name: 'jobs.retry', settings: { maxMsgs: 1 } }],
  });
  const c = await client(t, port, { sendTimeoutMs: 20_000 });
  await c.send('jobs.retry', 'one');
  const err = await t.throwsAsync(c.send('jobs.retry', 'two'));
  t.true(err instanceof RefusedError, String(err));
  t.is(c.stats.retries, 0);
  const first = await c.send('dedup', 'a', { headers: { 'Nats-Msg-Id': 'order-42' } });
  const again = await c.send('dedup', 'a', { headers: { 'Nats-Msg-Id': 'order-42' } });
  t.like(first, { id: 'order-42', duplicate: false });
  t.like(again, { id: 'order-42', seq: first.seq, duplicate: true });
});

test('SDK3.3: close() ends sends in flight and waiting ones with DisconnectedError', async (t) => {
  const node = await startTestNode(t);
  const c = await connect({
    servers: [`127.0.0.1:${node.port}`],
    sendTimeoutMs: 60_000,
    maxSendsInFlight: 1,
    reconnect: { initialDelayMs: 50, maxDelayMs: 100 },
  });
  await c.send('x', 'warm');
  await node.node.stop();
  const pending = [c.send('x', 'a'), c.send('x', 'b')];
  await waitFor(() => c.stats.retries > 0 || c.connectedTo === undefined, 'the node to be gone');
  await c.close();
  for (const r of await Promise.allSettled(pending)) {
    t.is(r.status, 'rejected');
    t.true(
      (r as PromiseRejectedResult).reason instanceof DisconnectedError,
      String((r as PromiseRejectedResult).reason),
    );
  }
});

test('SDK5.2: publishes kept while disconnected are checked first and bounded', async (t) => {
  const node = await startTestNode(t, { maxPayloadBytes: 4096 });
  const c = await client(t, node.port, { reconnect: { initialDelayMs: 1000, maxDelayMs: 2000 } });
  await c.flush();
  await node.node.stop();
  await waitFor(() => c.connectedTo === undefined, 'the disconnect');
  t.throws(() => c.publish('big', Buffer.alloc(5000)), { instanceOf: InvalidArgumentError });
  t.throws(() => c.publish('bad..subject', 'x'), { instanceOf: InvalidArgumentError });
  let kept = 0;
  const err = t.throws(() => {
    for (let i = 0; i < 100_000; i++, kept++) c.publish('tiny', '');
  });
  t.true(err instanceof DisconnectedError, String(err));
  t.true(kept <= 65_536, `kept ${kept}`);
});

test('subscriptions: unsubscribe(max) ends the iterator; two readers share one; signals lose their listeners', async (t) => {
  const { port } = await startTestNode(t);
  const c = await client(t, port);
  const sub = c.subscribe('count');
  sub.unsubscribe(2);
  await c.flush();
  for (let i = 0; i < 3; i++) c.publish('count', String(i));
  const seen: string[] = [];
  for await (const m of sub) seen.push(m.string());
  t.deepEqual(seen, ['0', '1']);
  t.true(sub.closed);

  const shared = c.subscribe('shared', { max: 4 });
  await c.flush();
  const reader = async (): Promise<number> => {
    let n = 0;
    for await (const _ of shared) n++;
    return n;
  };
  const both = Promise.all([reader(), reader()]);
  for (let i = 0; i < 4; i++) c.publish('shared', String(i));
  const [a, b] = await both;
  t.is(a + b, 4, 'both readers end, and between them read every message');

  const ac = new AbortController();
  const subs = Array.from({ length: 20 }, (_, i) => c.subscribe(`s.${i}`, { signal: ac.signal }));
  const consumers = Array.from({ length: 5 }, (_, i) => c.consume(`d${i}`, { signal: ac.signal, waitMs: 0 }));
  t.is(getEventListeners(ac.signal, 'abort').length, 25);
  for (const s of subs) s.unsubscribe();
  await Promise.all(consumers.map((k) => k.stop()));
  t.is(getEventListeners(ac.signal, 'abort').length, 0, 'every listener removed');
  const early = c.subscribe('late', { signal: AbortSignal.abort() });
  t.true(early.closed, 'an aborted signal gives a closed subscription');
});

test('consumers: two loops share one consumer; a delivery never settled gives its slot back', async (t) => {
  const { port } = await startTestNode(t);
  const c = await client(t, port);
  await Promise.all(Array.from({ length: 40 }, (_, i) => c.send('work', `job ${i}`, { id: `j-${i}` })));
  const consumer = c.consume('work', { group: 'w', batch: 10, maxInFlight: 10, waitMs: 200 });
  const ids = new Set<string>();
  const worker = async (): Promise<number> => {
    let n = 0;
    for await (const m of consumer) {
      ids.add(m.id);
      m.ack();
      n++;
      if (ids.size === 40) void consumer.stop();
    }
    return n;
  };
  const counts = await Promise.all([worker(), worker()]);
  t.is(ids.size, 40);
  t.true(
    counts.every((n) => n > 0),
    `both workers got messages: ${counts.join(', ')}`,
  );

  // maxInFlight 2, neither settled, no auto-extension: once the node takes them back (ack timeout),
  // the consumer's window opens again and it gets them redelivered.
  await c.send('held', 'a', { id: 'h-a' });
  await c.send('held', 'b', { id: 'h-b' });
  const holder = c.consume('held', {
    group: 'g',
    maxInFlight: 2,
    ackTimeoutMs: 300,
    autoExtendMs: 0,
    waitMs: 200,
  });
  const it = holder[Symbol.asyncIterator]();
  const first = [(await it.next()).value as ConsumedMessage, (await it.next()).value as ConsumedMessage];
  t.deepEqual(
    first.map((m) => m.deliveries),
    [1, 1],
  );
  const again = (await it.next()).value as ConsumedMessage;
  t.is(again.deliveries, 2, 'redelivered after the ack timeout, to the same consumer');
  again.ack();
  await holder.stop();
});

test("SDK4.4: auto-extension without an ackTimeoutMs keeps a destination's short ack timeout from firing", async (t) => {
  const { port } = await startTestNode(t, {
    destinations: [{ name: 'short', settings: { ackTimeoutMs: 1000 } }],
  });
  const c = await client(t, port);
  await c.send('short', 'slow job');
  const first = c.consume('short', { group: 'g', waitMs: 200 });
  const it = first[Symbol.asyncIterator]();
  const m = (await it.next()).value as ConsumedMessage;
  const rival = c.consume('short', { group: 'g', waitMs: 200 });
  let stolen: ConsumedMessage | undefined;
  const watching = (async () => {
    for await (const r of rival) {
      stolen = r;
      break;
    }
  })();
  // Three ack timeouts of work; WIP every 250 ms keeps it ours.
  await new Promise<void>((resolve) => setTimeout(resolve, 3000));
  t.is(stolen, undefined, 'the rival never got it');
  m.ack();
  await rival.stop();
  await watching;
  await first.stop();
});

test('an async subscription callback that rejects is reported as callbackError, not a crash', async (t) => {
  const { port } = await startTestNode(t);
  const c = await client(t, port);
  const errors: unknown[] = [];
  c.on('callbackError', (e) => errors.push(e.error));
  c.subscribe('boom', {
    callback: async () => {
      await Promise.resolve();
      throw new Error('handler failed');
    },
  });
  await c.flush();
  c.publish('boom', 'x');
  await waitFor(() => errors.length === 1, 'the callbackError event');
  t.is((errors[0] as Error).message, 'handler failed');
});
