/**
 * Client authentication and permissions against a live node (protocol/
 * SECURITY.md sections 2 and 3): raw protocol and the stock NATS client.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { parseAuthorization } from '../../src/auth/config.js';
import { hashApiKey, hashPassword, newApiKey } from '../../src/auth/credentials.js';
import { resolveOptions } from '../../src/config/options.js';
import { QUIET, RawClient, startTestNode } from '../helpers/wire.js';
import { runStandalone, tempDir } from '../helpers/process.js';

const te = new TextEncoder();
const td = new TextDecoder();

const ADMIN_KEY = newApiKey();
const ORDERS_KEY = newApiKey();
const PASSWORD = 'correct horse battery';

/** An admin key with every right, a key limited to orders, and a user limited to its inbox and `chat.>`. */
let passwordHash: Promise<string> | undefined;

async function authSection(): Promise<Record<string, unknown>> {
  // One hash per run: a new salt would be a changed credential to a reload (SEC2.6).
  passwordHash ??= hashPassword(PASSWORD);
  return {
    keys: [
      { name: 'admin', key_hash: hashApiKey(ADMIN_KEY) },
      {
        name: 'orders-app',
        key_hash: hashApiKey(ORDERS_KEY),
        permissions: {
          publish: { allow: ['orders', 'orders.>', '_INBOX.>'], deny: ['orders.secret'] },
          subscribe: { allow: ['orders.>', '_INBOX.>', 'public.>', '>'], deny: ['secret.>'] },
          destinations: { send: ['orders'], pull: ['orders'], admin: [] },
        },
      },
    ],
    users: [
      {
        user: 'alice',
        password_hash: await passwordHash,
        permissions: { publish: ['chat.>', '_INBOX.>'], subscribe: ['chat.>', '_INBOX.>'] },
      },
    ],
  };
}

async function securedNode(t: ExecutionContext, extra: Record<string, unknown> = {}) {
  const auth = parseAuthorization(await authSection());
  return startTestNode(t, {
    auth,
    destinations: [
      { name: 'orders', settings: {} },
      { name: 'orders.audit', settings: {} },
      { name: 'billing', settings: {} },
    ],
    ...extra,
  });
}

async function stock(
  t: ExecutionContext,
  port: number,
  opts: Record<string, unknown>,
): Promise<NatsConnection> {
  const nc = await connect({ servers: `127.0.0.1:${port}`, reconnect: false, ...opts });
  t.teardown(async () => {
    if (!nc.isClosed()) await nc.close();
  });
  return nc;
}

test('INFO says auth_required; an operation before CONNECT is an Authorization Violation (SEC2.1, SEC2.3)', async (t) => {
  const { port, logs } = await securedNode(t);
  const [c, info] = await RawClient.open(t, port);
  t.is(info.auth_required, true);
  c.send('PING\r\n');
  await c.expect(/^-ERR 'Authorization Violation'\r\n/);
  await c.waitClosed();
  t.true(logs.some((l) => l.includes('"why":"operation before CONNECT"')));
});

test('missing or wrong credentials close the connection, and the token is never logged (SEC2.3)', async (t) => {
  const { port, logs } = await securedNode(t);
  const wrong = newApiKey();
  for (const creds of [
    {},
    { auth_token: wrong },
    { user: 'alice', pass: 'nope' },
    { user: 'mallory', pass: PASSWORD },
  ]) {
    const [c] = await RawClient.open(t, port);
    c.send(`CONNECT ${JSON.stringify({ ...QUIET, ...creds })}\r\nPING\r\n`);
    await c.expect(/^-ERR 'Authorization Violation'\r\n/);
    await c.waitClosed();
  }
  const all = logs.join('');
  t.is(all.match(/authentication failed/g)?.length, 4);
  t.true(all.includes('"user":"mallory"'), 'the user name is logged');
  for (const secret of [wrong, PASSWORD, 'nope']) t.false(all.includes(secret));
});

test('a client that does not authenticate in time is closed (SEC2.5)', async (t) => {
  const { port } = await securedNode(t, { authTimeoutMs: 200 });
  const [c] = await RawClient.open(t, port);
  await c.expect(/^-ERR 'Authentication Timeout'\r\n/, 5000);
  await c.waitClosed();
  t.pass();
});

test('a password check does not lose what the client sent behind its CONNECT (SEC2.4)', async (t) => {
  const { port } = await securedNode(t);
  const [c] = await RawClient.open(t, port);
  c.send(
    `CONNECT ${JSON.stringify({ ...QUIET, user: 'alice', pass: PASSWORD })}\r\nSUB chat.room 1\r\nPUB chat.room 2\r\nhi\r\nPING\r\n`,
  );
  await c.expect(/^MSG chat\.room 1 2\r\nhi\r\nPONG\r\n/);
  t.pass();
});

test('the stock client authenticates with a token and with user and password (SEC2.2)', async (t) => {
  const { port } = await securedNode(t);
  const admin = await stock(t, port, { token: ADMIN_KEY });
  admin.subscribe('time', { callback: (_e, m) => void m.respond(te.encode('now')) });
  await admin.flush();
  const alice = await stock(t, port, { user: 'alice', pass: PASSWORD });
  const orders = await stock(t, port, { token: ORDERS_KEY });
  const sub = alice.subscribe('chat.room', { max: 1 });
  await alice.flush();
  admin.publish('chat.room', te.encode('hello alice'));
  for await (const m of sub) t.is(td.decode(m.data), 'hello alice');
  // SEC3.2: a request needs publish rights on the subject; admin may, and answers.
  t.is(td.decode((await admin.request('time', undefined, { timeout: 5000 })).data), 'now');
  // The orders key may publish to orders.> and store into orders, with a JetStream-shaped ack.
  const ack = await orders.request('orders', te.encode('o1'), { timeout: 5000 });
  t.deepEqual(JSON.parse(td.decode(ack.data)), { stream: 'orders', seq: 1 });
  await t.throwsAsync(stock(t, port, { token: newApiKey() }), { message: /Authorization Violation/i });
  await t.throwsAsync(stock(t, port, { user: 'alice', pass: 'wrong password' }), {
    message: /Authorization Violation/i,
  });
});

test('publish and subscribe permissions, with the nats-server texts; the connection stays open (SEC3.2, SEC3.3)', async (t) => {
  const { port } = await securedNode(t);
  const [c] = await RawClient.open(t, port, { ...QUIET, auth_token: ORDERS_KEY });
  const [admin] = await RawClient.open(t, port, { ...QUIET, auth_token: ADMIN_KEY });
  c.send('PUB billing 1\r\nx\r\nPUB orders.secret 1\r\nx\r\nSUB secret.x 1\r\nSUB secret.> q 2\r\n');
  t.is(
    await c.flushed(),
    `-ERR 'Permissions Violation for Publish to "billing"'\r\n` +
      `-ERR 'Permissions Violation for Publish to "orders.secret"'\r\n` +
      `-ERR 'Permissions Violation for Subscription to "secret.x"'\r\n` +
      `-ERR 'Permissions Violation for Subscription to "secret.>" using queue "q"'\r\n`,
  );
  // SEC3.3: `>` is allowed, but what secret.> names never reaches it.
  c.send('SUB > 9\r\n');
  await c.flushed();
  admin.send('PUB secret.plans 6\r\nhidden\r\nPUB public.news 4\r\nnews\r\n');
  await c.expect(/^MSG public\.news 9 4\r\nnews\r\n/);
  t.is(await c.flushed(), '');
  // A denied PUB was not routed either.
  const [watcher] = await RawClient.open(t, port, { ...QUIET, auth_token: ADMIN_KEY });
  watcher.send('SUB billing 1\r\n');
  await watcher.flushed();
  c.send('PUB billing 4\r\nnope\r\nPUB orders.eu 2\r\nok\r\n');
  await c.expect(/^-ERR 'Permissions Violation for Publish to "billing"'\r\n/);
  admin.send('PUB billing 3\r\nyes\r\n');
  await watcher.expect(/^MSG billing 1 3\r\nyes\r\n/);
});

test('destination rights: send, pull and settle, admin, and DESTS (SEC3.4)', async (t) => {
  const { port } = await securedNode(t);
  const [c] = await RawClient.open(t, port, { ...QUIET, auth_token: ORDERS_KEY });
  const [admin] = await RawClient.open(t, port, { ...QUIET, auth_token: ADMIN_KEY });
  c.send('SEND billing 1\r\nx\r\nSEND orders 2\r\nok\r\nPULL billing g\r\nCREATE other\r\nDROP orders g\r\n');
  // DROP answers at once; PULL and CREATE wait for the SENDs before them (DURABLE.md D3.5).
  await c.expect(
    /^-ERR 'Permissions Violation for Send to "billing"'\r\n-ERR 'Permissions Violation for Admin of "orders"'\r\n\+STORED orders 1 \w+\r\n/,
  );
  await c.expect(/^-ERR 'Permissions Violation for Pull from "billing"'\r\n/);
  await c.expect(/^-ERR 'Permissions Violation for Admin of "other"'\r\n/);
  // Settling a handle takes the pull right on its destination.
  admin.send('SEND billing 4\r\nbill\r\nPULL billing g 1\r\n');
  const d = await admin.expect(
    /^\+STORED billing 1 \w+\r\nDMSG billing (\S+) [^\r]*\r\nbill\r\n\+PULLED billing 1\r\n/,
  );
  c.send(`ACK ${d[1]!}\r\nNAK ${d[1]!}\r\nTERM ${d[1]!}\r\n`);
  for (let i = 0; i < 3; i++) await c.expect(/^-ERR 'Permissions Violation for Pull from "billing"'\r\n/);
  admin.send(`ACK ${d[1]!}\r\nPING\r\n`);
  await admin.expect(/^PONG\r\n/);
  // DESTS lists only what the key holds a right on.
  c.send('DESTS\r\n');
  await c.expect(/^DEST orders [^\r]*\r\n\+DESTS 1\r\n/);
  c.send('PULL orders g 1\r\n');
  const o = await c.expect(/^DMSG orders (\S+) [^\r]*\r\nok\r\n\+PULLED orders 1\r\n/);
  c.send(`ACK ${o[1]!}\r\nPING\r\n`);
  await c.expect(/^PONG\r\n/);
  // A stock PUB to a destination without send: not stored, and told so.
  const [alice] = await RawClient.open(t, port, { ...QUIET, user: 'alice', pass: PASSWORD });
  alice.send('PUB orders 1\r\nx\r\n');
  await alice.expect(/^-ERR 'Permissions Violation for Publish to "orders"'\r\n/);
  // orders.audit is a destination the key may publish to but not send to: routed, not stored.
  admin.send('SUB orders.audit 5\r\n');
  await admin.flushed();
  c.send('PUB orders.audit 5\r\naudit\r\n');
  await c.expect(/^-ERR 'Permissions Violation for Send to "orders.audit"'\r\n/);
  await admin.expect(/^MSG orders\.audit 5 5\r\naudit\r\n/);
  admin.send('DESTS\r\n');
  await admin.expect(
    /^DEST billing depth=0 [^\r]*\r\nDEST orders depth=0 [^\r]*\r\nDEST orders\.audit depth=0 [^\r]*\r\n\+DESTS 3\r\n/,
  );
  t.pass();
});

test('a reload closes connections whose key is gone and applies new permissions (SEC2.6)', async (t) => {
  const { node, port } = await securedNode(t);
  const [c] = await RawClient.open(t, port, { ...QUIET, auth_token: ORDERS_KEY });
  const [a] = await RawClient.open(t, port, { ...QUIET, user: 'alice', pass: PASSWORD });
  a.send('SUB chat.room 1\r\nSUB chat.other 2\r\n');
  await a.flushed();
  const section = await authSection();
  const users = section.users as Record<string, unknown>[];
  users[0]!.permissions = { subscribe: ['chat.room'] };
  const newKey = newApiKey();
  section.keys = [
    { name: 'admin', key_hash: hashApiKey(ADMIN_KEY) },
    { name: 'new', key_hash: hashApiKey(newKey) },
  ];
  const r = node.reload(
    resolveOptions({ overrides: { ...node.current, auth: parseAuthorization(section) } }),
  );
  t.deepEqual(r.applied, ['auth']);
  t.is(r.closed, 1);
  await c.expect(/^-ERR 'Authorization Violation'\r\n/);
  await c.waitClosed();
  await a.expect(/^-ERR 'Permissions Violation for Subscription to "chat.other"'\r\n/);
  const [n] = await RawClient.open(t, port, { ...QUIET, auth_token: newKey });
  n.send('PUB chat.other 1\r\nx\r\nPUB chat.room 1\r\ny\r\n');
  await a.expect(/^MSG chat\.room 1 1\r\ny\r\n/);
  // Turning auth off keeps everyone; INFO no longer asks for credentials.
  node.reload(resolveOptions({ overrides: { ...node.current, auth: undefined } }));
  const [open, info] = await RawClient.open(t, port);
  t.is(info.auth_required, undefined);
  open.send('PUB chat.room 1\r\nz\r\n');
  await a.expect(/^MSG chat\.room 1 1\r\nz\r\n/);
});

test('SIGHUP reloads the config file of a running node; a bad file changes nothing (SEC2.6)', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'node.yaml');
  const second = newApiKey();
  const yaml = (keys: string[]): string =>
    `authorization:\n  keys:\n${keys.map((k, i) => `    - name: k${i}\n      key_hash: "${hashApiKey(k)}"\n`).join('')}`;
  writeFileSync(file, yaml([ADMIN_KEY, second]));
  const proc = runStandalone(t, ['--config', file], { dataDir: path.join(dir, 'data') });
  const started = await proc.waitForLog((l) => l.msg === 'node started');
  const port = started.port as number;
  const [c] = await RawClient.open(t, port, { ...QUIET, auth_token: second });
  writeFileSync(file, 'authorization:\n  keys: [{ name: x, key_hash: "not a hash" }]\n');
  proc.child.kill('SIGHUP');
  const refused = await proc.waitForLog(
    (l) => l.msg === 'reload refused: configuration error, nothing changed',
  );
  t.is(refused.key, 'authorization.keys[0].key_hash');
  t.is(await c.flushed(), '', 'still connected under the old config');
  writeFileSync(file, yaml([ADMIN_KEY]));
  proc.child.kill('SIGHUP');
  const reloaded = await proc.waitForLog((l) => l.msg === 'configuration reloaded');
  t.deepEqual(reloaded.applied, ['auth']);
  await c.expect(/^-ERR 'Authorization Violation'\r\n/);
  await c.waitClosed();
  await RawClient.open(t, port, { ...QUIET, auth_token: ADMIN_KEY });
  proc.child.kill('SIGTERM');
  t.is(await proc.exited, 0);
});
