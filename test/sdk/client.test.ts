/**
 * The SDK against one real node (in-process, real TCP and LevelDB), through
 * the package's public entry only: core messaging, durable sends and
 * consumers, typed errors, abort signals, flow control and reconnection.
 */
import test, { type ExecutionContext } from 'ava';
import {
  connect,
  ConsumedMessage,
  ForbiddenError,
  InvalidArgumentError,
  NoRespondersError,
  NotFoundError,
  RefusedError,
  AbortError,
  TimeoutError,
  DisconnectedError,
  type SwarmClient,
  type ConnectOptions,
} from '../../src/index.js';
import { parseAuthorization } from '../../src/auth/config.js';
import { hashApiKey } from '../../src/auth/credentials.js';
import { startTestNode, waitFor } from '../helpers/wire.js';

async function client(
  t: ExecutionContext,
  port: number,
  extra: Partial<ConnectOptions> = {},
): Promise<SwarmClient> {
  const c = await connect({ servers: [`127.0.0.1:${port}`], ...extra });
  t.teardown(() => c.close());
  return c;
}

/** Takes `n` messages from a consumer, acking each. */
async function take(iter: AsyncIterable<ConsumedMessage>, n: number): Promise<ConsumedMessage[]> {
  const out: ConsumedMessage[] = [];
  if (n === 0) return out;
  for await (const m of iter) {
    out.push(m);
    if (out.length === n) break;
  }
  return out;
}

test('publish, subscribe (iterator and callback) and request/reply', async (t) => {
  const { port } = await startTestNode(t);
  const c = await client(t, port);
  const sub = c.subscribe('greet.*', { max: 2 });
  const seen: string[] = [];
  c.subscribe('greet.>', { callback: (m) => seen.push(`${m.subject}:${m.string()}`) });
  c.subscribe('svc.time', {
    callback: (m) => m.respond(`t=${m.string()}`, { headers: { 'X-Answer': 'yes' } }),
  });
  await c.flush();
  c.publish('greet.joe', 'hello', { headers: { 'X-Trace': 'abc' } });
  c.publish('greet.ann', new Uint8Array([104, 105]));
  const got: string[] = [];
  for await (const m of sub) {
    got.push(m.string());
    if (got.length === 1) t.deepEqual(m.headers?.get('X-Trace'), ['abc']);
  }
  t.deepEqual(got, ['hello', 'hi']);
  t.true(sub.closed);
  await waitFor(() => seen.length === 2, 'callback messages');
  t.deepEqual(seen, ['greet.joe:hello', 'greet.ann:hi']);

  const reply = await c.request('svc.time', '42');
  t.is(reply.string(), 't=42');
  t.deepEqual(reply.headers?.get('X-Answer'), ['yes']);
  const err = await t.throwsAsync(c.request('nobody.home', 'x'));
  t.true(err instanceof NoRespondersError);
  t.true(err instanceof NotFoundError);
  t.is((err as NotFoundError).code, 'NOT_FOUND');
});

test('send resolves once stored; consume acks, naks with a delay, terms, and sees headers and priorities (D3, D4)', async (t) => {
  const { port } = await startTestNode(t);
  const c = await client(t, port);
  const r1 = await c.send('orders', 'low', { id: 'o-1', priority: 1, headers: { 'X-Kind': 'test' } });
  t.like(r1, { destination: 'orders', seq: 1, id: 'o-1', duplicate: false });
  const r2 = await c.send('orders', 'high', { priority: 10 });
  t.regex(r2.id, /^[0-9a-f]{32}$/);
  const again = await c.send('orders', 'low', { id: 'o-1' });
  t.like(again, { seq: 1, duplicate: true }, 'D3.4: the same id is not stored twice');

  const consumer = c.consume('orders', { group: 'billing', batch: 10, waitMs: 200 });
  const [first, second] = await take(consumer, 2);
  t.is(first!.string(), 'high', 'D4.8: higher priority first');
  t.is(second!.string(), 'low');
  t.deepEqual(second!.headers?.get('X-Kind'), ['test']);
  t.is(second!.id, 'o-1');
  first!.ack();
  second!.nak({ delayMs: 100 });
  const [redelivered] = await take(c.consume('orders', { group: 'billing', waitMs: 2000 }), 1);
  t.is(redelivered!.id, 'o-1');
  t.is(redelivered!.deliveries, 2);
  redelivered!.term();
  // The TERM travels on its own (the consumer stopped at `break`): poll until its dead letter exists.
  let dead: ConsumedMessage | undefined;
  await waitFor(async () => {
    try {
      [dead] = await take(c.consume('orders.DLQ', { group: 'inspect', waitMs: 500 }), 1);
      return true;
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
  }, 'the dead letter of o-1');
  t.is(dead!.id, 'o-1', 'D6.1: termed messages go to the dead-letter destination');
  dead!.ack();
});

test('typed errors: not found, forbidden, refused, invalid, timeout, aborted', async (t) => {
  const key = 'k-limited-0123456789';
  const auth = parseAuthorization({
    keys: [
      {
        name: 'limited',
        key_hash: hashApiKey(key),
        permissions: {
          publish: { allow: ['ok.>', '_INBOX.>'] },
          subscribe: { allow: ['_INBOX.>', 'ok.>'] },
          destinations: { send: ['small', 'jobs'], pull: ['jobs', 'missing'], admin: [] },
        },
      },
    ],
  });
  const { port } = await startTestNode(t, {
    auth,
    destinations: [
      { name: 'small', settings: { maxMsgs: 1 } },
      { name: 'jobs', settings: {} },
    ],
  });
  const bad = await t.throwsAsync(connect({ servers: [`127.0.0.1:${port}`], token: 'wrong' }));
  t.true(bad instanceof ForbiddenError, String(bad));
  const c = await client(t, port, { token: key });

  const forbidden = await t.throwsAsync(c.send('secret', 'x'));
  t.true(forbidden instanceof ForbiddenError, String(forbidden));
  t.regex((forbidden as ForbiddenError).serverText ?? '', /Permissions Violation for Send to/);

  await c.send('small', 'one');
  const full = await t.throwsAsync(c.send('small', 'two'));
  t.true(full instanceof RefusedError, String(full));
  t.regex((full as RefusedError).serverText ?? '', /is full/);

  const invalid = await t.throwsAsync(c.send('bad name', 'x'));
  t.true(invalid instanceof InvalidArgumentError);
  t.throws(() => c.consume('jobs', { batch: 0 }), { instanceOf: InvalidArgumentError });

  const missing = c.consume('missing', { waitMs: 0 });
  const notFound = await t.throwsAsync(take(missing, 1));
  t.true(notFound instanceof NotFoundError, String(notFound));

  const ac = new AbortController();
  const pending = c.request('ok.nobody-answers-in-time', 'x', { signal: ac.signal, timeoutMs: 60_000 });
  c.subscribe('ok.nobody-answers-in-time', { callback: () => ac.abort() });
  const aborted = await t.throwsAsync(pending);
  t.true(aborted instanceof AbortError, String(aborted));
  const timedOut = await t.throwsAsync(
    (async () => {
      c.subscribe('ok.silent', { callback: () => undefined });
      await c.flush();
      return c.request('ok.silent', 'x', { timeoutMs: 100 });
    })(),
  );
  t.true(timedOut instanceof TimeoutError, String(timedOut));
});

test('flow control: a consumer never holds more than maxInFlight unsettled deliveries', async (t) => {
  const { port } = await startTestNode(t);
  const c = await client(t, port);
  await Promise.all(Array.from({ length: 200 }, (_, i) => c.send('work', `job ${i}`)));
  const consumer = c.consume('work', {
    group: 'slow',
    batch: 50,
    maxInFlight: 8,
    waitMs: 200,
    autoExtendMs: 0,
  });
  const held: ConsumedMessage[] = [];
  const iter = consumer[Symbol.asyncIterator]();
  for (let i = 0; i < 8; i++) held.push((await iter.next()).value as ConsumedMessage);
  // Nothing is settled: the consumer must not pull more, however long we wait for it to try.
  await waitFor(() => consumer.unsettled === 8, 'the consumer to stop at maxInFlight');
  const pulledBefore = consumer.unsettled;
  await new Promise<void>((resolve) => setTimeout(resolve, 300)).then(() => undefined);
  t.is(consumer.unsettled, pulledBefore);
  t.is(consumer.unsettled, 8);
  for (const m of held) m.ack();
  let n = 8;
  for (let r = await iter.next(); !r.done; r = await iter.next()) {
    r.value.ack();
    t.true(consumer.unsettled <= 8);
    if (++n === 200) break;
  }
  t.is(n, 200);
  await consumer.stop();
});

test('working() and automatic extension keep a slow delivery from coming back (D4.4)', async (t) => {
  const { port } = await startTestNode(t);
  const c = await client(t, port);
  await c.send('slow', 'long job');
  // WIP every 300 ms leaves 600 ms of slack for a loaded machine before the timeout fires.
  const consumer = c.consume('slow', { group: 'g', ackTimeoutMs: 900, waitMs: 100 });
  const iter = consumer[Symbol.asyncIterator]();
  const m = (await iter.next()).value as ConsumedMessage;
  // Three ack timeouts pass while the handler works; the auto-extension sends WIP meanwhile.
  await new Promise<void>((resolve) => setTimeout(resolve, 2700));
  m.ack();
  const other = c.consume('slow', { group: 'g', waitMs: 300 });
  const seen = await Promise.race([
    take(other, 1).then(() => 'redelivered'),
    new Promise<string>((resolve) => setTimeout(() => resolve('nothing'), 1200)),
  ]);
  t.is(seen, 'nothing', 'the delivery never timed out while extended');
  await other.stop();
  await consumer.stop();
});

test('reconnects after the node restarts: subscriptions come back and sends go on (events tell)', async (t) => {
  const first = await startTestNode(t);
  const port = first.port;
  const c = await client(t, port, { reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
  const events: string[] = [];
  c.on('disconnect', () => events.push('disconnect'));
  c.on('connect', (e) => events.push(e.reconnected ? 'reconnect' : 'connect'));
  const got: string[] = [];
  c.subscribe('news', { callback: (m) => got.push(m.string()) });
  await c.flush();
  await first.node.stop();
  await waitFor(() => events.includes('disconnect'), 'the disconnect event');
  const pendingSend = c.send('after', 'sent while down');
  const second = await startTestNode(t, { port });
  await waitFor(() => events.includes('reconnect'), 'the reconnect', 15_000);
  t.like(await pendingSend, { destination: 'after', duplicate: false });
  await c.flush();
  c.publish('news', 'back');
  await waitFor(() => got.includes('back'), 'a message on the resubscribed subject');
  t.truthy(second.node);
});

test('close() ends everything; calls after it fail with DisconnectedError', async (t) => {
  const { port } = await startTestNode(t);
  const c = await connect({ servers: [`127.0.0.1:${port}`] });
  const consumer = c.consume('x', { waitMs: 5000 });
  const closed = new Promise((resolve) => c.once('closed', resolve));
  await c.close();
  t.is(await closed, undefined);
  await consumer.stop();
  t.throws(() => c.publish('a', 'b'), { instanceOf: DisconnectedError });
  await t.throwsAsync(() => c.send('a', 'b'), { instanceOf: DisconnectedError });
});
