/**
 * `swarmmq pub`, `sub`, `send` and `pull` as real processes against a real
 * node (started in this process on port 0): round trips, request/reply,
 * durable send/pull/settle, permission and connection errors as one line
 * with their exit codes, TLS, and --help.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import { connect } from '@nats-io/transport-node';
import { parseAuthorization } from '../../src/auth/config.js';
import { hashApiKey, hashPassword, newApiKey } from '../../src/auth/credentials.js';
import { DurableClient } from '../helpers/durable-client.js';
import { cliEach, cliOnce, type CliRun } from '../helpers/cli-once.js';
import { CLI, runCli, tempDir } from '../helpers/process.js';
import { startTestNode, waitFor } from '../helpers/wire.js';

/** Runs the CLI to its end; `input` goes to its stdin. */
function cli(
  t: ExecutionContext,
  args: string[],
  input?: string,
  env: Record<string, string> = {},
): Promise<CliRun> {
  return cliOnce(t, args, { ...(input === undefined ? {} : { input }), env });
}

const at = (port: number): string[] => ['-s', `127.0.0.1:${port}`];

/** Starts `swarmmq sub` and resolves once it says the node has the subscription. */
async function subscribed(t: ExecutionContext, args: string[]) {
  const p = runCli(t, ['sub', ...args]);
  // Generous: a CLI process takes a second or more to start on a loaded 2-core machine.
  await waitFor(
    () => p.stderr.includes('subscribed to') || p.child.exitCode !== null,
    'sub to subscribe',
    30_000,
  );
  return p;
}

async function dests(t: ExecutionContext, port: number): Promise<string[]> {
  const c = await DurableClient.connect(port);
  t.teardown(() => c.close());
  return c.dests();
}

test.serial('pub -> sub: headers, reply subject and --count, as JSON lines (C3.1, C4.6, C5.3)', async (t) => {
  const { port } = await startTestNode(t);
  const sub = await subscribed(t, ['greet.*', '--count', '3', '--json', ...at(port)]);
  const pub = await cli(t, [
    'pub',
    'greet.joe',
    'hello',
    '-H',
    'Trace-Id=42',
    '--header',
    'Trace-Id=43',
    '-H',
    'Note=a=b',
    '--reply',
    'back.here',
    '--count',
    '3',
    ...at(port),
  ]);
  t.is(pub.code, 0, pub.stderr);
  t.is(pub.stdout, 'published 3 messages to greet.joe\n');
  t.is(await sub.exited, 0);
  const msgs = sub.stdout.map((l) => JSON.parse(l) as Record<string, unknown>);
  t.is(msgs.length, 3);
  for (const m of msgs) {
    t.deepEqual(m, {
      subject: 'greet.joe',
      reply: 'back.here',
      headers: { 'Trace-Id': ['42', '43'], Note: ['a=b'] },
      payload: 'hello',
    });
  }
});

test.serial('pub reads its payload from stdin; sub prints readably and exits on SIGINT', async (t) => {
  const { port } = await startTestNode(t);
  const sub = await subscribed(t, ['logs.>', ...at(port)]);
  const body = 'line one\nline two\n';
  const pub = await cli(t, ['pub', 'logs.app', '-H', 'Level=info', ...at(port)], body);
  t.is(pub.code, 0, pub.stderr);
  await waitFor(() => sub.stdout.includes('line two'), 'the message printed');
  t.deepEqual(sub.stdout, ['[#1] logs.app 18 bytes', '  Level: info', 'line one', 'line two']);
  sub.child.kill('SIGINT');
  t.is(await sub.exited, 0);
});

test.serial('a queue group shares the messages between its members (C5.2)', async (t) => {
  const { port } = await startTestNode(t);
  const a = await subscribed(t, ['jobs', '--queue', 'workers', '--json', ...at(port)]);
  const b = await subscribed(t, ['jobs', '--queue', 'workers', '--json', ...at(port)]);
  t.is((await cli(t, ['pub', 'jobs', 'x', '--count', '40', ...at(port)])).code, 0);
  await waitFor(() => a.stdout.length + b.stdout.length === 40, 'all 40 delivered');
  t.true(a.stdout.length > 0 && b.stdout.length > 0, `${a.stdout.length} / ${b.stdout.length}`);
  a.child.kill('SIGTERM');
  b.child.kill('SIGTERM');
  t.deepEqual([await a.exited, await b.exited], [0, 0]);
});

test.serial(
  'pub --request prints the reply; with nobody subscribed it says so and exits 3 (C5.4, C5.6)',
  async (t) => {
    const { port } = await startTestNode(t);
    const nc = await connect({ servers: `127.0.0.1:${port}`, reconnect: false });
    t.teardown(() => nc.close());
    nc.subscribe('svc.echo', {
      callback: (_err, m) => {
        m.respond(`echo: ${m.string()}`);
      },
    });
    await nc.flush();
    const r = await cli(t, ['pub', 'svc.echo', 'ping', '--request', '--json', ...at(port)]);
    t.is(r.code, 0, r.stderr);
    t.like(JSON.parse(r.stdout) as object, { payload: 'echo: ping' });
    const readable = await cli(t, ['pub', 'svc.echo', 'pong', '-r', ...at(port)]);
    t.regex(readable.stdout, /^\[#1\] _INBOX\.\S+ 10 bytes\necho: pong\n$/);

    const none = await cli(t, ['pub', 'svc.nobody', 'ping', '--request', ...at(port)]);
    t.is(none.code, 3);
    t.is(none.stderr, 'swarmmq: no responders: nobody is subscribed to svc.nobody\n');
  },
);

test.serial('pub --request times out with exit 3 when the responder is silent', async (t) => {
  const { port } = await startTestNode(t);
  const sub = await subscribed(t, ['svc.slow', ...at(port)]);
  const r = await cli(t, ['pub', 'svc.slow', 'x', '--request', '--timeout', '2s', ...at(port)]);
  t.is(r.code, 3);
  t.regex(
    r.stderr,
    /^swarmmq: timed out waiting for a reply on "svc.slow" from 127\.0\.0\.1:\d+ \(--timeout 2000 ms\)\n$/,
  );
  sub.child.kill('SIGINT');
});

test.serial(
  'send prints +STORED (seq, id), de-duplicates by --id; pull shows and acks: depth 0 (D3.1, D3.4, D4.1, D4.2)',
  async (t) => {
    const { port } = await startTestNode(t);
    const first = await cli(t, [
      'send',
      'orders',
      'first order',
      '--priority',
      '9',
      '--id',
      'o-1',
      ...at(port),
    ]);
    t.is(first.code, 0, first.stderr);
    t.is(first.stdout, 'stored in orders: seq 1, id o-1\n');
    const again = await cli(t, ['send', 'orders', 'first order', '--id', 'o-1', '--json', ...at(port)]);
    t.deepEqual(JSON.parse(again.stdout), { destination: 'orders', seq: 1, id: 'o-1', duplicate: true });
    const second = await cli(t, ['send', 'orders', '--json', ...at(port)], 'from stdin');
    const stored = JSON.parse(second.stdout) as { seq: number; id: string };
    t.is(stored.seq, 2);
    t.regex(stored.id, /^[0-9a-f]{32}$/, 'an id chosen by the CLI');

    const pull = await cli(t, [
      'pull',
      'orders',
      '--group',
      'billing',
      '--batch',
      '10',
      '--json',
      ...at(port),
    ]);
    t.is(pull.code, 0, pull.stderr);
    const msgs = pull.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    t.is(msgs.length, 2);
    t.like(msgs[0], { destination: 'orders', id: 'o-1', priority: 9, deliveries: 1, payload: 'first order' });
    t.like(msgs[1], { id: stored.id, priority: 5, deliveries: 1, payload: 'from stdin' });
    t.is(pull.stderr, '2 messages from orders (group billing): acked\n');
    t.true((await dests(t, port)).includes('DEST orders depth=0 bytes=0 last_seq=2 groups=billing:0/0/0'));

    const empty = await cli(t, ['pull', 'orders', '-g', 'billing', ...at(port)]);
    t.is(empty.code, 3);
    t.is(empty.stderr, 'no message in orders for group billing\n');
  },
);

test.serial(
  'pull prints readably; --nak gives back (deliveries 2), --no-ack leaves it in flight (D4.3, D4.6)',
  async (t) => {
    const { port } = await startTestNode(t);
    t.is((await cli(t, ['send', 'tasks', 'do it', '--id', 't-1', ...at(port)])).code, 0);
    const nak = await cli(t, ['pull', 'tasks', '-g', 'w', '--nak', ...at(port)]);
    t.is(nak.code, 0, nak.stderr);
    t.regex(nak.stdout, /^\[#1\] tasks id=t-1 priority=5 deliveries=1 stored=\S+Z 5 bytes\ndo it\n$/);
    t.is(nak.stderr, '1 message from tasks (group w): given back\n');
    const look = await cli(t, ['pull', 'tasks', '-g', 'w', '--no-ack', '--wait', '2s', ...at(port)]);
    t.regex(look.stdout, /deliveries=2/);
    t.true((await dests(t, port)).some((l) => l.startsWith('DEST tasks depth=1') && l.includes('w:0/1/0')));
    const both = await cli(t, ['pull', 'tasks', '-g', 'w', '--nak', '--no-ack', ...at(port)]);
    t.is(both.code, 2);
  },
);

test.serial(
  'send --header stores the headers with the message (HSEND, D3.9), with priority too, and pull shows them',
  async (t) => {
    const { port } = await startTestNode(t);
    const r = await cli(t, ['send', 'audit', 'traced', '-H', 'Trace-Id=1', '--id', 'a-1', ...at(port)]);
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout, 'stored in audit: seq 1, id a-1\n');
    const hi = await cli(t, [
      'send',
      'audit',
      'urgent',
      '-H',
      'A=1',
      '--priority',
      '9',
      '--id',
      'a-2',
      ...at(port),
    ]);
    t.is(hi.code, 0, hi.stderr);
    const pull = await cli(t, ['pull', 'audit', '-g', 'g', '--batch', '2', '--json', ...at(port)]);
    const [first, second] = pull.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    t.like(first, { id: 'a-2', payload: 'urgent', priority: 9, headers: { A: ['1'] } });
    t.like(second, { id: 'a-1', payload: 'traced', headers: { 'Trace-Id': ['1'] } });
  },
);

/** A node with API keys and a user, as in test/security/auth.test.ts. */
const ADMIN_KEY = newApiKey();
const ORDERS_KEY = newApiKey();
const PASSWORD = 'correct horse battery';

async function securedNode(t: ExecutionContext) {
  const auth = parseAuthorization({
    keys: [
      { name: 'admin', key_hash: hashApiKey(ADMIN_KEY) },
      {
        name: 'orders-app',
        key_hash: hashApiKey(ORDERS_KEY),
        permissions: {
          publish: { allow: ['orders.>', '_INBOX.>'] },
          subscribe: { allow: ['orders.>', '_INBOX.>'] },
          destinations: { send: ['orders'], pull: ['orders'], admin: [] },
        },
      },
    ],
    users: [
      { user: 'alice', password_hash: await hashPassword(PASSWORD), permissions: { publish: ['chat.>'] } },
    ],
  });
  return startTestNode(t, { auth, destinations: [{ name: 'billing', settings: {} }] });
}

test.serial(
  'a refused operation prints its -ERR in one line and exits 1 (SEC2.3, SEC3.3, SEC3.4)',
  async (t) => {
    const { port } = await securedNode(t);
    const key = ['--token', ORDERS_KEY];
    const cases: [string[], string][] = [
      [['send', 'billing', 'x', ...key], `-ERR 'Permissions Violation for Send to "billing"'`],
      [['pull', 'billing', '-g', 'g', ...key], `-ERR 'Permissions Violation for Pull from "billing"'`],
      [['pub', 'billing.x', 'x', ...key], `-ERR 'Permissions Violation for Publish to "billing.x"'`],
      [['sub', 'billing.>', ...key], `-ERR 'Permissions Violation for Subscription to "billing.>"'`],
      [['pub', 'x', 'y', '--token', newApiKey()], `-ERR 'Authorization Violation'`],
      [
        ['pub', 'x', 'y'],
        `-ERR 'Authorization Violation' (the node wants credentials: --token, or --user and --password)`,
      ],
    ];
    const runs = await cliEach(
      t,
      cases.map(([args]) => [...args, ...at(port)]),
    );
    cases.forEach(([args, line], i) => {
      const r = runs[i]!;
      t.is(r.code, 1, args.join(' '));
      t.is(r.stderr, `swarmmq: ${line}\n`, args.join(' '));
      t.is(r.stdout, '', args.join(' '));
    });
    // The same key where it has rights; credentials from the environment too.
    t.is((await cli(t, ['send', 'orders', 'x', ...key, ...at(port)])).code, 0);
    t.is(
      (await cli(t, ['send', 'billing', 'x', ...at(port)], undefined, { SWARMMQ_TOKEN: ADMIN_KEY })).code,
      0,
    );
    const alice = await cli(t, ['pub', 'chat.room', 'hi', '--user', 'alice', ...at(port)], undefined, {
      SWARMMQ_PASSWORD: PASSWORD,
    });
    t.is(alice.code, 0, alice.stderr);
  },
);

test.serial(
  'connection refused: one line naming the address, exit 1; SWARMMQ_SERVER picks the node',
  async (t) => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    await new Promise<void>((r) => blocker.close(() => r()));
    for (const args of [
      ['pub', 'x', 'y', ...at(port)],
      ['sub', 'x', ...at(port)],
      ['send', 'd', 'x', ...at(port)],
    ]) {
      const r = await cli(t, args);
      t.is(r.code, 1);
      t.is(r.stderr, `swarmmq: cannot connect to 127.0.0.1:${port} (connection refused)\n`);
    }
    const viaEnv = await cli(t, ['pull', 'd', '-g', 'g'], undefined, { SWARMMQ_SERVER: `127.0.0.1:${port}` });
    t.is(viaEnv.stderr, `swarmmq: cannot connect to 127.0.0.1:${port} (connection refused)\n`);
    const { port: live } = await startTestNode(t);
    const ok = await cli(t, ['pub', 'x', 'y'], undefined, { SWARMMQ_SERVER: `nats://127.0.0.1:${live}` });
    t.is(ok.code, 0, ok.stderr);
  },
);

test.serial('bad usage exits 2 before connecting', async (t) => {
  const cases = [
    ['send', 'orders', 'x', '--priority', '11'],
    ['send', 'orders', 'x', '--ttl', 'soon'],
    ['send', 'bad..name', 'x'],
    ['pub', 'has space', 'x'],
    ['pub', 'a.*', 'x'],
    ['pub', 'x', 'y', '--request', '--count', '2'],
    ['pub', 'x', 'y', '-H', 'no-equals'],
    ['pub', 'x', 'y', '-H', 'Bad Name=1'],
    ['sub', 'x', '--count', '0'],
    ['pull', 'orders'],
    ['pull', 'orders', '-g', 'g', '--wait', '10m'],
    ['pub', 'x', 'y', '-s', 'nowhere:99999'],
    ['pub', 'x', 'y', '--tls-ca', '/no/such/ca.pem'],
    ['pub', 'x', 'y', '--tls-cert', 'c.pem'],
  ];
  const runs = await cliEach(
    t,
    cases.map((args) => [...args, ...(args.includes('-s') ? [] : ['-s', '127.0.0.1:1'])]),
  );
  cases.forEach((args, i) => {
    t.is(runs[i]!.code, 2, `${args.join(' ')}: ${runs[i]!.stderr}`);
    t.false(runs[i]!.stderr.includes('cannot connect'), args.join(' '));
  });
});

test.serial(
  'TLS: --tls-ca trusts the node; without it the one line says so; mutual TLS with --tls-cert (SEC4.1, SEC4.2)',
  async (t) => {
    const dir = tempDir(t);
    await promisify(execFile)(process.execPath, [CLI, 'gen', 'certs', '--out', dir], { timeout: 30_000 });
    const f = (name: string): string => path.join(dir, name);
    const { port } = await startTestNode(t, {
      tlsCertFile: f('server.pem'),
      tlsKeyFile: f('server-key.pem'),
      tlsCaFile: f('ca.pem'),
      tlsVerify: true,
    });
    const client = ['--tls-cert', f('client.pem'), '--tls-key', f('client-key.pem')];
    const ok = await cli(t, ['send', 'secure', 'x', '--tls-ca', f('ca.pem'), ...client, ...at(port)]);
    t.is(ok.code, 0, ok.stderr);
    const viaName = await cli(t, [
      'pub',
      'x',
      'y',
      '--tls-ca',
      f('ca.pem'),
      ...client,
      '-s',
      `tls://localhost:${port}`,
    ]);
    t.is(viaName.code, 0, viaName.stderr);
    const untrusted = await cli(t, ['pub', 'x', 'y', ...client, ...at(port)]);
    t.is(untrusted.code, 1);
    t.regex(
      untrusted.stderr,
      /^swarmmq: TLS handshake with 127\.0\.0\.1:\d+ failed \(.*certificate.*\); pass the CA that signed it with --tls-ca\n$/,
    );
    const noCert = await cli(t, ['pub', 'x', 'y', '--tls-ca', f('ca.pem'), ...at(port)]);
    t.is(noCert.code, 1);
    t.regex(noCert.stderr, /^swarmmq: .*client certificate.*\n$/);
  },
);

test.serial('--help of each subcommand names its options, examples and exit codes', async (t) => {
  const want: Record<string, string[]> = {
    pub: ['<subject>', '[payload]', '--count', '--header', '--reply', '--request', '--json'],
    sub: ['<subject>', '--queue', '--count', '--json'],
    send: ['<destination>', '--id', '--priority', '--ttl', '--delay', '--header', '--json'],
    pull: ['<destination>', '--group', '--batch', '--wait', '--ack', '--nak', '--no-ack', '--json'],
  };
  const common = [
    '--server',
    'SWARMMQ_SERVER',
    '--token',
    'SWARMMQ_TOKEN',
    '--user',
    '--password',
    '--tls',
    '--tls-ca',
    '--tls-cert',
    '--tls-key',
    '--timeout',
    'Examples:',
    'Exit codes:',
  ];
  for (const [cmd, options] of Object.entries(want)) {
    const r = await cli(t, [cmd, '--help']);
    t.is(r.code, 0);
    for (const o of [...options, ...common]) t.true(r.stdout.includes(o), `${cmd} --help: ${o}`);
  }
  const top = await cli(t, ['--help']);
  for (const cmd of ['pub', 'sub', 'send', 'pull', 'bench'])
    t.regex(top.stdout, new RegExp(`^  ${cmd} `, 'm'));
});

test.serial('a random subject round trip with a binary payload shows base64', async (t) => {
  const { port } = await startTestNode(t);
  const subject = `bin.${randomBytes(3).toString('hex')}`;
  const sub = await subscribed(t, [subject, '--count', '1', '--json', ...at(port)]);
  const nc = await connect({ servers: `127.0.0.1:${port}`, reconnect: false });
  t.teardown(() => nc.close());
  nc.publish(subject, new Uint8Array([0xff, 0x00, 0xfe]));
  await nc.flush();
  t.is(await sub.exited, 0);
  t.deepEqual(JSON.parse(sub.stdout[0]!), { subject, payload_base64: '/wD+' });
});
