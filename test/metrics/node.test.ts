/**
 * /metrics of a live standalone node (protocol/METRICS.md), scraped over
 * HTTP and parsed: counters, gauges and histograms move with real traffic
 * from the raw protocol and from a stock NATS client; the names follow the
 * house convention (MT1.4); per-destination series are capped (MT2.3); two
 * nodes in one process each serve their own (MT1.3).
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { connect, headers } from '@nats-io/transport-node';
import { MAX_DESTINATION_SERIES } from '../../src/metrics/constants.js';
import { QUIET, RawClient, startTestNode, waitFor, type TestNode } from '../helpers/wire.js';
import { samples, scrape, value, type Scrape } from './exposition.js';

const monitorOf = (n: TestNode): number => n.node.monitor!.port;

/** A raw PULL of one message: its handle and delivery number (DURABLE.md D4.1). */
async function pullOne(
  c: RawClient,
  dest: string,
  group: string,
): Promise<{ handle: string; deliveries: number }> {
  c.send(`PULL ${dest} ${group} 1\r\n`);
  const m = await c.expect(new RegExp(`^DMSG ${dest} (\\S+) \\S+ \\d+ (\\d+) \\d+ 0 (\\d+)\\r\\n`));
  await c.expect(new RegExp(`^[\\s\\S]{${m[3]}}\\r\\n\\+PULLED ${dest} 1\\r\\n`));
  return { handle: m[1]!, deliveries: Number(m[2]) };
}

async function send(c: RawClient, dest: string, payload: string, opts = ''): Promise<void> {
  c.send(`SEND ${dest}${opts === '' ? '' : ` ${opts}`} ${payload.length}\r\n${payload}\r\n`);
  await c.expect(new RegExp(`^\\+STORED ${dest.replace(/\./g, '\\.')} \\d+ \\S+( duplicate)?\\r\\n`));
}

function histogramCount(s: Scrape, name: string, labels: Record<string, string> = {}): number | undefined {
  return value(s, `${name}_count`, labels);
}

test('counters, gauges and histograms move with raw-protocol traffic', async (t) => {
  const n = await startTestNode(t);
  const before = await scrape(monitorOf(n));
  for (const name of [
    'swarmmq_server_messages_in_total',
    'swarmmq_durable_stored_total',
    'swarmmq_durable_acked_total',
  ]) {
    t.is(value(before, name), 0, name);
  }
  t.is(histogramCount(before, 'swarmmq_durable_send_confirm_seconds'), 0);

  const [c] = await RawClient.open(t, n.port, QUIET);
  c.send('SUB a 1\r\nPUB a 5\r\nhello\r\n');
  await c.expect(/^MSG a 1 5\r\nhello\r\n/);
  await send(c, 'q', 'one', 'id=m1');
  await send(c, 'q', 'one', 'id=m1'); // D3.4: a duplicate
  await send(c, 'q', 'two');
  const first = await pullOne(c, 'q', 'g');
  c.send(`ACK ${first.handle}\r\n`);
  const second = await pullOne(c, 'q', 'g');
  c.send(`NAK ${second.handle}\r\n`); // D4.3: back at once
  const again = await pullOne(c, 'q', 'g');
  t.is(again.deliveries, 2);
  c.send(`TERM ${again.handle}\r\n`); // D4.5: to q.DLQ
  await send(c, 'e', 'x', 'ttl=1'); // D5.2: expires at once
  for (let i = 0; i < 3; i++) await send(c, 'd', `m${i}`);
  await pullOne(c, 'd', 'g2'); // d: 3 stored, 1 in flight, lag 2
  c.send('SUB a..b 2\r\n'); // C4.2: refused, stays open
  await c.expect(/^-ERR 'Invalid Subject'\r\n/);
  t.is(await c.flushed(), '');
  const [other] = await RawClient.open(t, n.port, QUIET);
  other.socket.destroy();

  const m = (await waitFor(async () => {
    const s = await scrape(monitorOf(n));
    const settled =
      value(s, 'swarmmq_durable_dead_lettered_total') === 1 &&
      value(s, 'swarmmq_durable_expired_total') === 1;
    return settled && value(s, 'swarmmq_server_closes_total', { reason: 'client_closed' }) === 1
      ? s
      : undefined;
  }, 'the dead letter, the expiry and the close to be counted'))!;

  t.is(value(m, 'swarmmq_server_messages_in_total'), 8, '1 PUB + 7 SENDs');
  t.is(value(m, 'swarmmq_server_messages_out_total'), 5, '1 MSG + 4 DMSG');
  t.is(value(m, 'swarmmq_server_connections'), 1);
  t.is(value(m, 'swarmmq_server_connections_total'), 2);
  t.is(value(m, 'swarmmq_server_subscriptions'), 1);
  t.is(value(m, 'swarmmq_server_errors_total', { kind: 'invalid_subject' }), 1);
  const stats = n.node.server.stats();
  t.is(value(m, 'swarmmq_server_received_bytes_total'), stats.bytesIn);
  t.is(value(m, 'swarmmq_server_sent_bytes_total'), stats.bytesOut);
  t.is(value(m, 'swarmmq_durable_duplicates_total'), 1);
  t.is(value(m, 'swarmmq_durable_delivered_total'), 4);
  t.is(value(m, 'swarmmq_durable_redelivered_total'), 1);
  t.is(value(m, 'swarmmq_durable_acked_total'), 1);
  t.is(value(m, 'swarmmq_durable_stored_total'), 7, '2 in q, 1 in e, 3 in d, the copy in q.DLQ');

  t.is(histogramCount(m, 'swarmmq_durable_send_confirm_seconds'), 7, 'every +STORED, the duplicate too');
  t.is(histogramCount(m, 'swarmmq_durable_delivery_latency_seconds'), 3, 'first deliveries only');
  for (const kind of ['ack', 'nak', 'term']) {
    t.is(histogramCount(m, 'swarmmq_durable_settle_seconds', { kind }), 1, kind);
  }

  t.is(value(m, 'swarmmq_durable_destination_messages', { destination: 'd' }), 3);
  t.is(value(m, 'swarmmq_durable_destination_messages', { destination: 'q.DLQ' }), 1);
  t.is(value(m, 'swarmmq_durable_group_lag_messages', { destination: 'd', group: 'g2' }), 2);
  t.is(value(m, 'swarmmq_durable_inflight_messages'), 1);
  t.is(value(m, 'swarmmq_durable_messages'), 4, 'd 3, q.DLQ 1');
  t.is(value(m, 'swarmmq_durable_destinations', { role: 'owner' }), n.node.durable.dests.size);
  t.true(value(m, 'swarmmq_durable_destination_bytes', { destination: 'd' })! > 0);
  t.true(value(m, 'swarmmq_store_disk_bytes')! > 0);
  t.is(value(m, 'swarmmq_store_disk_limit_bytes'), n.node.options.maxDiskBytes);
  t.is(value(m, 'swarmmq_mesh_members'), 1, 'a standalone node is its own only member');
  t.is(value(m, 'swarmmq_mesh_ring_share_ratio'), 1);
});

test('a stock NATS client: publishes, stored publishes and a duplicate Nats-Msg-Id are counted', async (t) => {
  const n = await startTestNode(t);
  const [c] = await RawClient.open(t, n.port, QUIET);
  c.send('CREATE orders\r\n');
  await c.expect(/^\+CREATED orders\r\n/);
  const nc = await connect({ servers: `127.0.0.1:${n.port}`, reconnect: false });
  t.teardown(async () => {
    if (!nc.isClosed()) await nc.close();
  });
  const got: string[] = [];
  nc.subscribe('plain', {
    callback: (_err, msg) => {
      got.push(msg.string());
    },
  });
  nc.publish('plain', 'core');
  const h = headers();
  h.set('Nats-Msg-Id', 'order-1');
  const acks = [];
  for (let i = 0; i < 2; i++)
    acks.push((await nc.request('orders', 'o1', { headers: h, timeout: 5000 })).json());
  t.deepEqual(acks, [
    { stream: 'orders', seq: 1 },
    { stream: 'orders', seq: 1, duplicate: true },
  ]);
  await waitFor(() => got.length === 1, 'the core message');

  const m = await scrape(monitorOf(n));
  t.is(value(m, 'swarmmq_server_messages_in_total'), 3, 'one core PUB, two stored PUBs');
  t.is(value(m, 'swarmmq_server_messages_out_total'), 3, 'the core MSG and two publish acks');
  t.is(value(m, 'swarmmq_server_connections'), 2);
  t.true(value(m, 'swarmmq_server_subscriptions')! >= 2, 'plain and the request inbox');
  t.is(value(m, 'swarmmq_durable_stored_total'), 1);
  t.is(value(m, 'swarmmq_durable_duplicates_total'), 1);
  t.is(histogramCount(m, 'swarmmq_durable_send_confirm_seconds'), 2);
  t.is(value(m, 'swarmmq_durable_destination_messages', { destination: 'orders' }), 1);
  await nc.close();
  await waitFor(
    async () => value(await scrape(monitorOf(n)), 'swarmmq_server_connections') === 1,
    'the close',
  );
});

test(`MT2.3: more than ${MAX_DESTINATION_SERIES} destinations get only ${MAX_DESTINATION_SERIES} depth series, the deepest`, async (t) => {
  const n = await startTestNode(t);
  const [c] = await RawClient.open(t, n.port, QUIET);
  const count = MAX_DESTINATION_SERIES + 5;
  let batch = '';
  for (let i = 0; i < count; i++) batch += `SEND cap.${i} 1\r\nx\r\n`;
  for (let i = 0; i < 4; i++) batch += 'SEND cap.deep 1\r\nx\r\n';
  c.send(batch);
  for (let i = 0; i < count + 4; i++) await c.expect(/^\+STORED cap\.\S+ \d+ \S+\r\n/);
  const m = await scrape(monitorOf(n));
  const depth = samples(m, 'swarmmq_durable_destination_messages');
  t.is(depth.length, MAX_DESTINATION_SERIES);
  t.is(samples(m, 'swarmmq_durable_destination_bytes').length, MAX_DESTINATION_SERIES);
  t.is(
    value(m, 'swarmmq_durable_destination_messages', { destination: 'cap.deep' }),
    4,
    'the deepest is kept',
  );
  t.is(value(m, 'swarmmq_durable_destinations', { role: 'owner' }), n.node.durable.dests.size);
  t.true(n.node.durable.dests.size > MAX_DESTINATION_SERIES + 1);
  t.is(value(m, 'swarmmq_durable_messages'), count + 4, 'the total counts every destination');
});

test('MT1.3: two nodes in one process each serve their own metrics and the shared process metrics', async (t) => {
  const [a, b] = await Promise.all([startTestNode(t), startTestNode(t)]);
  await RawClient.open(t, a.port, QUIET);
  const [ma, mb] = await Promise.all([scrape(monitorOf(a)), scrape(monitorOf(b))]);
  t.is(value(ma, 'swarmmq_server_connections'), 1);
  t.is(value(mb, 'swarmmq_server_connections'), 0);
  for (const m of [ma, mb]) {
    t.true(value(m, 'process_resident_memory_bytes')! > 0);
    t.true(m.has('nodejs_eventloop_lag_seconds'));
    t.is(value(m, 'swarmmq_process_memory_budget_bytes'), 512 * 1024 * 1024);
  }
});

test('MT1.4: every SwarmMQ family is named by component and unit, has help, and histograms are well formed', async (t) => {
  const n = await startTestNode(t);
  const [c] = await RawClient.open(t, n.port, QUIET);
  await send(c, 'w', 'x');
  await pullOne(c, 'w', 'g');
  const m = await scrape(monitorOf(n));
  const ours = [...m.values()].filter((f) => f.name.startsWith('swarmmq_'));
  t.true(ours.length >= 30);
  for (const f of ours) {
    t.regex(f.name, /^swarmmq_(server|durable|store|mesh|process)_[a-z0-9_]+$/);
    t.true(f.help.length > 10, `${f.name} has help`);
    if (f.type === 'counter') t.regex(f.name, /_total$/);
    else t.notRegex(f.name, /_total$/);
    if (f.type === 'histogram') t.regex(f.name, /_seconds$/);
    t.true(['counter', 'gauge', 'histogram'].includes(f.type), `${f.name}: ${f.type}`);
  }
  checkHistogram(t, m, 'swarmmq_durable_send_confirm_seconds');
  checkHistogram(t, m, 'swarmmq_durable_delivery_latency_seconds');
});

/** Buckets cumulative, le=0.05 present (the alert reads it), +Inf equal to the count. */
function checkHistogram(t: ExecutionContext, m: Scrape, name: string): void {
  const buckets = samples(m, `${name}_bucket`);
  const les = buckets.map((b) => b.labels.le);
  t.true(les.includes('0.05'), `${name} has a 0.05 bucket`);
  for (let i = 1; i < buckets.length; i++) t.true(buckets[i]!.value >= buckets[i - 1]!.value);
  t.is(buckets.at(-1)?.labels.le, '+Inf');
  t.is(buckets.at(-1)?.value, value(m, `${name}_count`));
  t.true(value(m, `${name}_count`)! >= 1);
}
