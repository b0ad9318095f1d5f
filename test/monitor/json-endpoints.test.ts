/**
 * The NATS-style JSON endpoints on a live node (protocol/MONITORING.md
 * sections 4-7): /connz, /subsz and /destz against real traffic from raw
 * and stock clients, paging and sorting, refused parameters (MON1.3), the
 * standalone /meshz, and a secured node (configs/secured.yaml with a user
 * and TLS, a cluster key and a master key) whose every endpoint names who
 * connected and holds no secret (MON1.2). The mesh side is in
 * cluster-endpoints.test.ts.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { connect } from '@nats-io/transport-node';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { hashPassword } from '../../src/auth/credentials.js';
import { DurableClient } from '../helpers/durable-client.js';
import { getJson, getText } from '../helpers/monitor.js';
import { CLI, runCli, tempDir } from '../helpers/process.js';
import { QUIET, RawClient, startTestNode, waitFor } from '../helpers/wire.js';

type Json = Record<string, unknown>;
/** In flight stays in flight however slow the machine: no redelivery at the default 5 s ack timeout. */
const LONG_ACK = ' ack_timeout=10m';
const rows = (body: Json, key: string): Json[] => body[key] as Json[];

test('/connz: each connection with its counters, CONNECT details and subscriptions; sorted, paged (MON4)', async (t) => {
  const { node, port } = await startTestNode(t);
  const m = node.monitor!.port;
  const [sub, subInfo] = await RawClient.open(t, port, {
    ...QUIET,
    name: 'raw-sub',
    lang: 'raw',
    version: '9.9',
  });
  sub.send('SUB x.y 1\r\nSUB x.* q1 2\r\n');
  await sub.flushed();
  const [pub, pubInfo] = await RawClient.open(t, port, { ...QUIET, name: 'raw-pub' });
  pub.send('PUB x.y 5\r\nhello\r\n'.repeat(3));
  await pub.flushed();
  const nc = await connect({ servers: `127.0.0.1:${port}`, name: 'stock-c', reconnect: false });
  t.teardown(() => nc.close());
  // x.y matches both subscriptions: 6 deliveries.
  await waitFor(() => (sub.buffer.match(/^MSG /gm) ?? []).length === 6, 'six deliveries');
  await sub.flushed();

  const all = await getJson(m, '/connz?subs=1');
  t.is(all.status, 200);
  t.is(all.body.total, 3);
  t.is(all.body.num_connections, 3);
  t.is(all.body.offset, 0);
  t.is(all.body.limit, 100);
  const byCid = new Map(rows(all.body, 'connections').map((c) => [c.cid, c]));
  const s = byCid.get(subInfo.client_id)!;
  t.like(s, { name: 'raw-sub', lang: 'raw', version: '9.9', ip: '127.0.0.1', port: sub.socket.localPort });
  t.like(s, { subscriptions: 2, in_msgs: 0, out_msgs: 6, pending_bytes: 0 });
  t.deepEqual((s.subscriptions_list as string[]).sort(), ['x.*', 'x.y']);
  // Every byte either way, as the client's socket counted it (after a PING/PONG barrier).
  t.is(s.in_bytes, sub.socket.bytesWritten);
  t.is(s.out_bytes, sub.socket.bytesRead);
  t.true((s.idle_ms as number) <= (s.uptime_ms as number));
  t.regex(String(s.uptime), /^(\d+[dhm])*\d+s$/);
  t.is(s.authorized_user, undefined);
  t.is(s.tls_version, undefined);
  const p = byCid.get(pubInfo.client_id)!;
  t.like(p, { name: 'raw-pub', in_msgs: 3, out_msgs: 0, subscriptions: 0 });
  const stock = [...byCid.values()].find((c) => c.name === 'stock-c')!;
  t.is(stock.lang, 'nats.js');
  t.is(typeof stock.version, 'string');
  const totals = all.body.totals as Json;
  t.like(totals, { in_msgs: 3, out_msgs: 6, subscriptions: 2 });

  const first = async (q: string): Promise<unknown> =>
    rows((await getJson(m, `/connz?${q}`)).body, 'connections')[0]!.cid;
  t.is(await first('sort=msgs_to'), subInfo.client_id);
  t.is(await first('sort=bytes_to'), subInfo.client_id);
  t.is(await first('sort=msgs_from'), pubInfo.client_id);
  t.is(await first('sort=subs'), subInfo.client_id);
  t.is(await first('sort=uptime'), subInfo.client_id); // connected first

  const cids = [...byCid.keys()].sort((a, b) => Number(a) - Number(b));
  const paged = await getJson(m, '/connz?limit=1&offset=1');
  t.like(paged.body, { total: 3, num_connections: 1, offset: 1, limit: 1 });
  t.is(rows(paged.body, 'connections')[0]!.cid, cids[1]);
  t.deepEqual(rows((await getJson(m, '/connz?offset=3')).body, 'connections'), []);
  const one = await getJson(m, `/connz?cid=${String(pubInfo.client_id)}`);
  t.deepEqual(
    rows(one.body, 'connections').map((c) => c.cid),
    [pubInfo.client_id],
  );
  t.is(rows(one.body, 'connections')[0]!.subscriptions_list, undefined); // only with subs=1
  const detail = await getJson(m, `/connz?subs=detail&cid=${String(subInfo.client_id)}`);
  const subs = rows(rows(detail.body, 'connections')[0]!, 'subscriptions_list_detail');
  t.deepEqual(
    subs.map((x) => [x.subject, x.qgroup, x.sid, x.msgs]).sort(),
    [
      ['x.*', 'q1', '2', 3],
      ['x.y', undefined, '1', 3],
    ].sort(),
  );
  sub.socket.destroy();
  await waitFor(async () => (await getJson(m, '/connz')).body.total === 2, 'the closed connection to go');
});

test('/subsz: index and cache counts; subs=1 lists entries with their connection; test= filters (MON5)', async (t) => {
  const { node, port } = await startTestNode(t);
  const m = node.monitor!.port;
  const [a, info] = await RawClient.open(t, port, QUIET);
  a.send('SUB orders.* 1\r\nSUB orders.new w 2\r\nSUB audit.> 3\r\n');
  await a.flushed();
  const before = (await getJson(m, '/subsz')).body;
  t.like(before, { num_subscriptions: 3, num_local: 3, num_remote: 0 });
  t.is(before.subscriptions_list, undefined);
  a.send('PUB orders.new 1\r\nx\r\n'.repeat(4));
  await a.flushed();
  const after = (await getJson(m, '/subsz?subs=1')).body;
  t.is((after.num_matches as number) - (before.num_matches as number), 4);
  t.true((after.cache_hits as number) >= 3, 'the same subject again is a cache hit');
  t.true((after.num_cache as number) >= 1);
  t.like(after, { total: 3, offset: 0, limit: 100 });
  const listed = rows(after, 'subscriptions_list');
  t.deepEqual(listed.map((e) => e.subject).sort(), ['audit.>', 'orders.*', 'orders.new']);
  t.true(listed.every((e) => e.cid === info.client_id));
  t.like(
    listed.find((e) => e.subject === 'orders.new'),
    { qgroup: 'w', sid: '2', msgs: 4 },
  );

  const test1 = (await getJson(m, '/subsz?test=orders.new')).body;
  t.is(test1.total, 2);
  t.deepEqual(
    rows(test1, 'subscriptions_list')
      .map((e) => e.subject)
      .sort(),
    ['orders.*', 'orders.new'],
  );
  t.is((await getJson(m, '/subsz?test=audit.a.b')).body.total, 1);
  t.is((await getJson(m, '/subsz?test=nothing')).body.total, 0);
  const page = (await getJson(m, '/subsz?subs=1&limit=2&offset=2')).body;
  t.is(rows(page, 'subscriptions_list').length, 1);
  t.is(page.total, 3);
});

test('/destz: depth, bytes, each group lag and in flight, the oldest message across priorities (MON7)', async (t) => {
  const { node, port } = await startTestNode(t);
  const m = node.monitor!.port;
  const c = await DurableClient.connect(port);
  t.teardown(() => c.close());
  for (const d of ['jobs', 'alpha', 'beta']) t.is(await c.create(d), 'CREATED');
  const t0 = Date.now();
  // Key order is priority first (STORAGE.md section 2): seq 1 at priority 1 sorts after seq 2 and 3.
  t.true((await c.send('jobs', 'one', { priority: 1 })).ok);
  t.true((await c.send('jobs', 'two', { priority: 9 })).ok);
  t.true((await c.send('jobs', 'three', { priority: 5 })).ok);
  // g2 first: a message every existing group has settled is removed (D2.2).
  const g2 = await c.pull('jobs', 'g2', 2, '0', LONG_ACK);
  t.is(g2.length, 2);
  const g1 = await c.pull('jobs', 'g1', 1, '0', LONG_ACK);
  t.deepEqual(
    g1.map((d) => d.payload.toString()),
    ['two'],
  );
  c.ack(g1[0]!.handle);
  await c.ping();

  const one = await getJson(m, '/destz?dest=jobs');
  const upperAgeMs = Date.now() - t0;
  t.like(one.body, { total: 1 });
  const jobs = rows(one.body, 'destinations')[0]!;
  t.like(jobs, { name: 'jobs', role: 'owner', depth: 3, last_seq: 3, oldest_seq: 1, stored: 3 });
  t.true((jobs.bytes as number) > 0);
  const age = jobs.oldest_age_ms as number;
  t.true(age >= 0 && age <= upperAgeMs, `oldest_age_ms ${age} within [0, ${upperAgeMs}]`);
  const groups = new Map(rows(jobs, 'groups').map((g) => [g.name, g]));
  t.like(groups.get('g1'), { lag: 2, in_flight: 0, acked: 1 });
  t.like(groups.get('g2'), { lag: 1, in_flight: 2, acked: 0 });
  t.like(jobs.settings as Json, { dead_letter: 'jobs.DLQ', max_deliveries: node.options.maxDeliveries });

  // Seq 1 settled by both groups goes; the oldest is then seq 2.
  const rest = await c.pull('jobs', 'g1', 2);
  c.ack(...rest.map((d) => d.handle));
  const last = await c.pull('jobs', 'g2', 1);
  t.deepEqual(
    last.map((d) => d.payload.toString()),
    ['one'],
  );
  c.ack(last[0]!.handle);
  await c.ping();
  const later = rows((await getJson(m, '/destz?dest=jobs')).body, 'destinations')[0]!;
  t.like(later, { depth: 2, oldest_seq: 2 });

  const list = (await getJson(m, '/destz')).body;
  t.deepEqual(
    rows(list, 'destinations').map((d) => d.name),
    ['alpha', 'beta', 'jobs'],
  );
  t.like(rows(list, 'destinations')[0], { depth: 0, oldest_seq: null, oldest_age_ms: null, groups: [] });
  const paged = (await getJson(m, '/destz?limit=2&offset=1')).body;
  t.like(paged, { total: 3, offset: 1, limit: 2 });
  t.deepEqual(
    rows(paged, 'destinations').map((d) => d.name),
    ['beta', 'jobs'],
  );
  t.is((await getJson(m, '/destz?role=replica')).body.total, 0);
  const missing = await getJson(m, '/destz?dest=nope');
  t.is(missing.status, 404);
  t.regex(String(missing.body.error), /no destination "nope"/);
});

test('a bad parameter is refused with 400 naming it, on every endpoint (MON1.3)', async (t) => {
  const { node } = await startTestNode(t);
  const m = node.monitor!.port;
  const cases: [string, string][] = [
    ['/connz?limit=0', 'limit'],
    ['/connz?limit=1001', 'limit'],
    ['/connz?limit=1e3', 'limit'],
    ['/connz?offset=-1', 'offset'],
    ['/connz?offset=1000001', 'offset'],
    ['/connz?sort=fastest', 'sort'],
    ['/connz?subs=2', 'subs'],
    ['/connz?cid=x', 'cid'],
    ['/connz?limit=1&limit=2', 'limit'],
    ['/connz?verbose=1', 'verbose'],
    ['/subsz?test=orders.*', 'test'],
    ['/subsz?test=', 'test'],
    ['/subsz?subs=yes', 'subs'],
    ['/meshz?stats=2', 'stats'],
    ['/meshz?limit=5000', 'limit'],
    [`/destz?dest=${'d'.repeat(1025)}`, 'dest'],
    ['/destz?role=boss', 'role'],
    ['/destz?sort=name', 'sort'],
  ];
  for (const [path, param] of cases) {
    const r = await getJson(m, path);
    t.is(r.status, 400, path);
    t.is(r.body.param, param, path);
    t.true(String(r.body.reason).length > 0, path);
    t.true(String(r.body.error).includes(param), path);
  }
});

test('/meshz on a standalone node says the mesh is off', async (t) => {
  const { node } = await startTestNode(t);
  const r = await getJson(node.monitor!.port, '/meshz');
  t.is(r.status, 200);
  t.like(r.body, { mesh_enabled: false, name: node.server.name, server_id: node.server.serverId });
  t.is(r.body.members, undefined);
});

const SECURED_YAML = path.resolve(import.meta.dirname, '../../../configs/secured.yaml');

test('a secured node: /connz names each key and user and its TLS; no endpoint holds a secret (MON1.2)', async (t) => {
  t.timeout(60_000);
  const dir = tempDir(t);
  await promisify(execFile)(process.execPath, [CLI, 'gen', 'certs', '--out', dir], { timeout: 30_000 });
  const yamlText = readFileSync(SECURED_YAML, 'utf8');
  // The example's development keys are published in its comments.
  const adminKey = /admin:\s+(smq_\S+)/.exec(yamlText)![1]!;
  const ordersKey = /orders-app:\s+(smq_\S+)/.exec(yamlText)![1]!;
  const password = `pw-${randomBytes(12).toString('hex')}`;
  const passwordHash = await hashPassword(password);
  const config = parseYaml(yamlText) as Record<string, Record<string, unknown>>;
  config.authorization!.users = [{ user: 'alice', password_hash: passwordHash }];
  config.tls = { cert_file: path.join(dir, 'server.pem'), key_file: path.join(dir, 'server-key.pem') };
  const file = path.join(dir, 'secured.yaml');
  writeFileSync(file, toYaml(config));
  const clusterKey = randomBytes(32);
  const masterKey = randomBytes(32);
  const p = runCli(t, ['start', '--config', file, '--port', '0', '--data-dir', path.join(dir, 'data')], {
    SWARMMQ_CLUSTER_KEY: clusterKey.toString('hex'),
    SWARMMQ_MASTER_KEY: masterKey.toString('base64'),
  });
  const started = await p.waitForLog((l) => l.msg === 'node started');
  const monitor = String(started.monitor);
  const port = Number(started.port);
  await waitFor(async () => (await getJson(monitor, '/readyz')).status === 200, 'ready', 15_000);
  const tls = { caFile: path.join(dir, 'ca.pem') };
  const opts = { servers: `127.0.0.1:${port}`, reconnect: false, tls, timeout: 10_000 };
  const admin = await connect({ ...opts, token: adminKey, name: 'admin-app' });
  const orders = await connect({ ...opts, token: ordersKey });
  const alice = await connect({ ...opts, user: 'alice', pass: password });
  t.teardown(() => Promise.all([admin.close(), orders.close(), alice.close()]).then(() => undefined));
  admin.subscribe('orders.>');
  await admin.flush();
  const ack = await orders.request('orders', new TextEncoder().encode('a secret order'), { timeout: 10_000 });
  t.regex(new TextDecoder().decode(ack.data), /"stream":"orders"/);

  const connz = (await getJson(monitor, '/connz?subs=detail')).body;
  const who = rows(connz, 'connections')
    .map((c) => `${String(c.auth_kind)}:${String(c.authorized_user)}:${String(c.tls_version)}`)
    .sort();
  t.deepEqual(who, ['key:admin:1.3', 'key:orders-app:1.3', 'user:alice:1.3']);

  // Every endpoint the node lists (its 404 names them), and the listing variants.
  const listed = (await getJson(monitor, '/nope')).body.endpoints as string[];
  for (const e of ['/connz', '/subsz', '/meshz', '/destz']) t.true(listed.includes(e), e);
  const variants = ['/connz?subs=1', '/connz?subs=detail', '/subsz?subs=1', '/meshz?stats=1', '/nope'];
  const paths = [...listed, ...variants];
  const bodies = await Promise.all(paths.map(async (q) => ({ q, text: await getText(monitor, q) })));
  const hashes = [...yamlText.matchAll(/sha256:([0-9a-f]{64})/g)].map((m) => m[1]!);
  t.is(hashes.length, 2);
  const pem = readFileSync(path.join(dir, 'server-key.pem'), 'utf8').split('\n');
  const secrets = [
    adminKey,
    ordersKey,
    adminKey.slice(4),
    password,
    passwordHash,
    passwordHash.split(':').pop()!,
    ...hashes,
    clusterKey.toString('hex'),
    clusterKey.toString('base64'),
    masterKey.toString('hex'),
    masterKey.toString('base64'),
    pem[1]!,
    'key_hash',
    'password_hash',
  ];
  for (const { q, text } of bodies) {
    for (const secret of secrets)
      t.false(text.includes(secret), `${q} holds a secret (${secret.slice(0, 6)}...)`);
  }
  t.true(bodies.find((b) => b.q === '/meshz?stats=1')!.text.includes('"orders"'));
});
