/**
 * Logs (STYLE.md 11): one child per component and per connection, with the
 * connection's cid, address and client name on every line it writes and its
 * credential on none; per-message events at trace only; JSON lines, or
 * human-readable ones for a terminal (`node.log_format`).
 */
import path from 'node:path';
import { Writable } from 'node:stream';
import test from 'ava';
import { parseAuthorization } from '../../src/auth/config.js';
import { hashApiKey, newApiKey } from '../../src/auth/credentials.js';
import { resolveOptions } from '../../src/config/options.js';
import { ConfigError } from '../../src/errors.js';
import { createLogger, resolveLogFormat, setLogLevel } from '../../src/log.js';
import { runStandalone, tempDir } from '../helpers/process.js';
import { QUIET, RawClient, startTestNode, waitFor } from '../helpers/wire.js';

type Line = Record<string, unknown>;
const parse = (logs: string[]): Line[] => logs.map((l) => JSON.parse(l) as Line);

test('every line of a connection carries its cid and address, and its client name from CONNECT on; never its key', async (t) => {
  const key = newApiKey();
  const auth = parseAuthorization({ keys: [{ name: 'svc', key_hash: hashApiKey(key) }] });
  const { node, port, logs } = await startTestNode(t, { auth });
  const [a, infoA] = await RawClient.open(t, port);
  const [b, infoB] = await RawClient.open(t, port);
  // Raised after both connections exist: their children follow (SEC2.6).
  setLogLevel(node.log, 'trace');
  for (const [c, name] of [
    [a, 'svc-a'],
    [b, 'svc-b'],
  ] as const) {
    c.send(`CONNECT ${JSON.stringify({ ...QUIET, name, auth_token: key })}\r\n`);
    c.send('SUB orders.* 1\r\nPUB orders.new 2\r\nhi\r\n');
    await c.expect(/^MSG orders\.new 1 2\r\nhi\r\n/);
  }
  // Read while the socket is open: a closed one no longer knows its port.
  const remote = `127.0.0.1:${a.socket.localPort}`;
  a.socket.end();
  await waitFor(
    () => parse(logs).some((l) => l.msg === 'connection closed' && l.cid === infoA.client_id),
    'the close of a',
  );
  const lines = parse(logs);
  const ofA = lines.filter((l) => l.cid === infoA.client_id);
  const events = ofA.map((l) => l.msg);
  for (const msg of ['connection accepted', 'client authenticated', 'sub', 'pub', 'connection closed']) {
    t.true(events.includes(msg), `a logged "${msg}"`);
  }
  for (const l of ofA) t.like(l, { component: 'server', remote }, String(l.msg));
  const afterConnect = ofA.slice(events.indexOf('client authenticated'));
  for (const l of afterConnect) t.is(l.clientName, 'svc-a', String(l.msg));
  t.is(ofA[0]!.clientName, undefined, 'no name before CONNECT');
  // The other connection's lines are its own.
  t.true(lines.some((l) => l.cid === infoB.client_id && l.clientName === 'svc-b' && l.msg === 'pub'));
  t.false(
    lines.some((l) => l.cid === infoA.client_id && l.clientName === 'svc-b'),
    'no line crosses over',
  );
  t.false(logs.join('\n').includes(key), 'the API key appears in no log line');
  t.is(lines.filter((l) => l.msg === 'client authenticated' && l.key === 'svc').length, 2);
});

test('per-message events are trace only: at debug a connection publishing and subscribing logs only its lifecycle', async (t) => {
  const { port, logs } = await startTestNode(t); // the test logger runs at debug
  const [c, info] = await RawClient.open(t, port, { ...QUIET, name: 'busy' });
  c.send('SUB many 1\r\n');
  for (let i = 0; i < 50; i++) c.send('PUB many 1\r\nx\r\n');
  await c.flushed();
  c.socket.end();
  const closed = (): boolean =>
    parse(logs).some((l) => l.msg === 'connection closed' && l.cid === info.client_id);
  await waitFor(closed, 'the close');
  // In-process logging is synchronous: every line the connection wrote is in `logs` by now.
  const events = parse(logs)
    .filter((l) => l.cid === info.client_id)
    .map((l) => l.msg);
  t.deepEqual(events, ['connection accepted', 'client connected', 'connection closed']);
});

test('setLogLevel reaches children made before it, even one given its own level', (t) => {
  const out: Line[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(JSON.parse(chunk.toString()) as Line);
      cb();
    },
  });
  const root = createLogger('info', sink);
  const conn = root.child({ component: 'server' }).child({ cid: 7 });
  const own = root.child({ component: 'mesh' }, { level: 'info' });
  conn.trace('before');
  setLogLevel(root, 'trace');
  conn.trace('after');
  own.trace('own');
  setLogLevel(root, 'error');
  conn.warn('hidden');
  own.warn('hidden');
  t.deepEqual(
    out.map((l) => [l.msg, l.cid]),
    [
      ['after', 7],
      ['own', undefined],
    ],
  );
});

test('node.log_format: json, pretty or auto from YAML, env and flag; a bad value names the key', (t) => {
  t.is(resolveOptions().logFormat, 'auto');
  t.is(resolveOptions({ yamlText: 'node:\n  log_format: pretty\n' }).logFormat, 'pretty');
  t.is(resolveOptions({ env: { SWARMMQ_LOG_FORMAT: 'json' } }).logFormat, 'json');
  t.is(
    resolveOptions({ env: { SWARMMQ_LOG_FORMAT: 'json' }, flags: { logFormat: 'pretty' } }).logFormat,
    'pretty',
  );
  const err = t.throws(() => resolveOptions({ yamlText: 'node:\n  log_format: fancy\n' }), {
    instanceOf: ConfigError,
  });
  t.is(err.key, 'node.log_format');
  t.regex(err.reason, /json, pretty, auto/);
  t.is(resolveLogFormat('auto', true), 'pretty');
  t.is(resolveLogFormat('auto', false), 'json');
  t.is(resolveLogFormat('json', true), 'json');
});

test('--log-format pretty prints human-readable lines with the message text', async (t) => {
  const dir = tempDir(t);
  const p = runStandalone(t, ['--log-format', 'pretty'], { dataDir: path.join(dir, 'data') });
  const started = await waitFor(() => p.stdout.find((l) => l.includes('node started')), 'the started line');
  const line = started!;
  t.throws(() => JSON.parse(line));
  t.regex(line, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO.*: node started /);
  // Fields follow on the same line, the component before the message.
  t.regex(line, /"client":"127\.0\.0\.1:\d+"/);
  t.true(p.stdout.some((l) => /INFO: durable: durable store loaded/.test(l)));
  p.child.kill('SIGTERM');
  t.is(await p.exited, 0);
  t.true(
    p.stdout.some((l) => l.includes('node stopped')),
    'lines written just before exit are there',
  );
});

test('auto (the default) writes JSON lines when stdout is not a terminal', async (t) => {
  const dir = tempDir(t);
  for (const args of [[], ['--log-format', 'auto']]) {
    const p = runStandalone(t, args, { dataDir: path.join(dir, 'data') });
    await p.waitForLog((l) => l.msg === 'node started');
    p.child.kill('SIGTERM');
    t.is(await p.exited, 0);
    t.true(p.stdout.length > 2);
    for (const l of p.stdout) t.notThrows(() => JSON.parse(l), l);
  }
});
