/**
 * SIGHUP reload of a real `swarmmq start` process (protocol/SECURITY.md
 * SEC2.6): the config file is rewritten, the process gets SIGHUP, and what
 * can change live (log level, client limits) changes, for connections
 * opened before the reload too where server/limits.ts says so; the rest is
 * reported as needing a restart and stays as it was.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { runCli, tempDir, type CliProcess } from '../helpers/process.js';
import { resolveOptions, type NodeOptions } from '../../src/config/options.js';
import type { SwarmNode } from '../../src/node.js';
import { QUIET, RawClient, startTestNode, waitFor } from '../helpers/wire.js';

interface Settings {
  logLevel?: string;
  name?: string;
  port?: number;
  maxPayload?: string;
  maxConnections?: number | string;
  maxPingsOut?: number;
}

interface Running {
  proc: CliProcess;
  port: number;
  /** Rewrites the config file with `s` and sends SIGHUP. */
  rewrite(s: Settings): void;
  /** rewrite, then resolves with the next `configuration reloaded` line. */
  reload(s: Settings): Promise<Record<string, unknown>>;
}

/** One config file, rewritten in place by each reload. */
function configText(dataDir: string, s: Settings): string {
  return [
    'node:',
    `  log_level: ${s.logLevel ?? 'info'}`,
    ...(s.name === undefined ? [] : [`  name: ${s.name}`]),
    'client:',
    '  host: 127.0.0.1',
    `  port: ${s.port ?? 0}`,
    'storage:',
    `  data_dir: ${JSON.stringify(dataDir)}`,
    'cluster:',
    '  enabled: false',
    'monitor:',
    '  enabled: false',
    'performance:',
    `  max_message_size: ${s.maxPayload ?? '1MB'}`,
    'limits:',
    `  max_connections: ${s.maxConnections ?? 1024}`,
    `  max_pings_out: ${s.maxPingsOut ?? 2}`,
    '',
  ].join('\n');
}

/** JSON log lines of the process so far, in the order it wrote them. */
function logLines(proc: CliProcess): Record<string, unknown>[] {
  return proc.stdout.flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

async function startWithConfig(t: ExecutionContext, first: Settings): Promise<Running> {
  const dir = tempDir(t);
  const file = path.join(dir, 'node.yaml');
  const dataDir = path.join(dir, 'data');
  writeFileSync(file, configText(dataDir, first));
  const proc = runCli(t, ['start', '--config', file]);
  const started = await proc.waitForLog((l) => l.msg === 'node started');
  const reloads = (): Record<string, unknown>[] =>
    logLines(proc).filter((l) => l.msg === 'configuration reloaded');
  const rewrite = (s: Settings): void => {
    writeFileSync(file, configText(dataDir, s));
    proc.child.kill('SIGHUP');
  };
  return {
    proc,
    port: started.port as number,
    rewrite,
    async reload(s) {
      const seen = reloads().length;
      rewrite(s);
      const line = await waitFor(() => reloads()[seen], 'the configuration reloaded line');
      return line!;
    },
  };
}

test('SEC2.6 the log level changes live, for a connection opened before the reload too', async (t) => {
  const node = await startWithConfig(t, { logLevel: 'info' });
  const [c, info] = await RawClient.open(t, node.port, { ...QUIET, name: 'early' });
  const cid = info.client_id;
  const pubsOf = (): Record<string, unknown>[] =>
    logLines(node.proc).filter((l) => l.msg === 'pub' && l.cid === cid);
  c.send('SUB a 1\r\nPUB a 2\r\nhi\r\n');
  await c.flushed();

  const toTrace = await node.reload({ logLevel: 'trace' });
  t.deepEqual(toTrace.applied, ['logLevel']);
  t.deepEqual(toTrace.needRestart, []);
  t.deepEqual(toTrace.changes, { logLevel: { from: 'info', to: 'trace' } });
  // Lines are read in the order written: the reload line is in, so any earlier trace line would be too.
  t.is(pubsOf().length, 0, 'no per-message line at info');

  c.send('PUB a 5\r\nhello\r\n');
  await c.flushed();
  const pub = await waitFor(() => pubsOf()[0], 'a trace line of the early connection');
  t.like(pub, { component: 'server', clientName: 'early', subject: 'a', bytes: 5 });

  // Down to warn: the reload line is still written (before the switch), then the connection is quiet.
  const toWarn = await node.reload({ logLevel: 'warn' });
  t.deepEqual(toWarn.changes, { logLevel: { from: 'trace', to: 'warn' } });
  c.send('PUB a 5\r\nquiet\r\n');
  await c.flushed();
  // Back to info: written after the switch, so it is seen although warn hid info lines.
  const toInfo = await node.reload({ logLevel: 'info' });
  t.deepEqual(toInfo.changes, { logLevel: { from: 'warn', to: 'info' } });
  t.is(pubsOf().length, 1, 'nothing per message at warn');
});

test('SEC2.6 a lowered max_connections refuses the next connection; open ones stay', async (t) => {
  const node = await startWithConfig(t, { maxConnections: 3 });
  const [a] = await RawClient.open(t, node.port, QUIET);
  await RawClient.open(t, node.port, QUIET);
  const r = await node.reload({ maxConnections: 2 });
  t.deepEqual(r.applied, ['maxConnections']);
  t.deepEqual(r.changes, { maxConnections: { from: 3, to: 2 } });
  const refused = await RawClient.connect(t, node.port);
  await refused.expect(/^INFO [^\r]*\r\n/);
  await refused.expect(/^-ERR 'maximum connections exceeded'\r\n/); // C6.10
  await refused.waitClosed();
  t.is(await a.flushed(), '', 'a connection over the new limit is not closed');
});

test('SEC2.6 a lowered max_payload: new INFO, a bigger PUB refused; an open connection keeps its INFO value', async (t) => {
  const node = await startWithConfig(t, { maxPayload: '4KB' });
  const [old, oldInfo] = await RawClient.open(t, node.port, QUIET);
  t.is(oldInfo.max_payload, 4096);
  const r = await node.reload({ maxPayload: '1KB' });
  t.deepEqual(r.applied, ['maxPayloadBytes']);
  t.deepEqual(r.changes, { maxPayloadBytes: { from: 4096, to: 1024 } });

  const [fresh, info] = await RawClient.open(t, node.port, QUIET);
  t.is(info.max_payload, 1024);
  fresh.send(`PUB big 2000\r\n${'x'.repeat(2000)}\r\n`);
  await fresh.expect(/^-ERR 'Maximum Payload Violation'\r\n/); // C6.4
  await fresh.waitClosed();

  // server/limits.ts: stock clients size their publishes by the INFO they got.
  old.send(`SUB big 1\r\nPUB big 2000\r\n${'y'.repeat(2000)}\r\n`);
  await old.expect(/^MSG big 1 2000\r\ny{2000}\r\n/);
});

test('SEC2.6 a change that takes a restart is reported and not applied', async (t) => {
  const node = await startWithConfig(t, { name: 'before' });
  // Port 1 is never bound: it only has to differ from the running one.
  const r = await node.reload({ name: 'after', port: 1, maxPingsOut: 3 });
  t.deepEqual(r.applied, ['maxPingsOut']);
  t.deepEqual([...(r.needRestart as string[])].sort(), ['name', 'port']);
  t.deepEqual(r.changes, { maxPingsOut: { from: 2, to: 3 } }, 'no value of a key not applied');
  const [, info] = await RawClient.open(t, node.port, QUIET);
  t.is(info.server_name, 'before');
  t.is(info.port, node.port);
});

test('SEC2.6 a file that does not load changes nothing, even its valid keys', async (t) => {
  const node = await startWithConfig(t, { maxConnections: 3 });
  await RawClient.open(t, node.port, QUIET);
  await RawClient.open(t, node.port, QUIET);
  // max_connections 1 alone would refuse the next connection; max_pings_out 0 spoils the file.
  node.rewrite({ maxConnections: 1, maxPingsOut: 0 });
  const refused = await node.proc.waitForLog(
    (l) => l.msg === 'reload refused: configuration error, nothing changed',
  );
  t.is(refused.key, 'limits.max_pings_out');
  t.regex(String(refused.reason), /at least 1/);
  t.is(logLines(node.proc).filter((l) => l.msg === 'configuration reloaded').length, 0);
  const [third] = await RawClient.open(t, node.port, QUIET);
  t.is(await third.flushed(), '', 'a third connection is still taken');
});

/** In process: the reload SIGHUP triggers, with `change` laid over the options in force. */
function reloadWith(node: SwarmNode, change: Partial<NodeOptions>): ReturnType<SwarmNode['reload']> {
  return node.reload(resolveOptions({ overrides: { ...node.current, ...change } }));
}

test('SEC2.6 max_control_line, max_subscriptions and ping_interval reach connections already open', async (t) => {
  const { node, port } = await startTestNode(t);
  const [c] = await RawClient.open(t, port, QUIET);
  const [d] = await RawClient.open(t, port, QUIET);
  const longSub = `SUB ${'a'.repeat(300)} 9\r\n`; // 308 bytes: fine under the default 4 KiB
  d.send(longSub);
  t.is(await d.flushed(), '');

  const r = reloadWith(node, { maxControlLineBytes: 256, maxSubscriptions: 1 });
  t.deepEqual([...r.applied].sort(), ['maxControlLineBytes', 'maxSubscriptions']);
  c.send('SUB a 1\r\nSUB b 2\r\n');
  await c.expect(/^-ERR 'maximum subscriptions exceeded'\r\n/); // C4.4
  d.send(longSub);
  await d.expect(/^-ERR 'maximum control line exceeded'\r\n/); // C6.5
  await d.waitClosed();

  // From 2 minutes to 50 ms: without the change no PING would come within the deadline.
  reloadWith(node, { pingIntervalMs: 50 });
  await c.expect(/^PING\r\n/);
  c.send('PONG\r\n');
  t.is(node.server.limits.pingIntervalMs, 50);
});

test('SEC2.6 a lowered max_pending cuts off an open subscriber at its next delivery over it', async (t) => {
  const { node, port } = await startTestNode(t);
  const [sub] = await RawClient.open(t, port, QUIET);
  const [pub] = await RawClient.open(t, port, QUIET);
  const big = `PUB s 2000\r\n${'z'.repeat(2000)}\r\n`;
  sub.send('SUB s 1\r\n');
  await sub.flushed();
  pub.send(big);
  await sub.expect(/^MSG s 1 2000\r\nz{2000}\r\n/);
  const r = reloadWith(node, { maxPendingBytes: 1024 });
  t.deepEqual(r.applied, ['maxPendingBytes']);
  pub.send(big);
  await sub.waitClosed(); // C6.9: 2000 bytes queued is over the new 1 KiB
  t.is(node.server.stats().closes.slow_consumer, 1);
  t.is(await pub.flushed(), '', 'the publisher is not affected');
});

test('SEC2.6 an INFO resent to a connection older than a max_payload reload keeps its value', async (t) => {
  const { node, port } = await startTestNode(t, { maxPayloadBytes: 4096 });
  const [old] = await RawClient.open(t, port, QUIET);
  reloadWith(node, { maxPayloadBytes: 1024 });
  // M2.5: a cluster view change resends INFO to every client.
  const view = {
    self: 'p1',
    rf: 1,
    vnodes: 128,
    members: [{ id: 'p1', client: '127.0.0.1:4999', mesh: [] }],
  };
  node.server.setClusterView({ connectUrls: ['127.0.0.1:4999'], view });
  const resent = JSON.parse((await old.expect(/^INFO (.*)\r\n/))[1]!) as Record<string, unknown>;
  t.like(resent, { max_payload: 4096, connect_urls: ['127.0.0.1:4999'] });
  const [, info] = await RawClient.open(t, port, QUIET);
  t.like(info, { max_payload: 1024, connect_urls: ['127.0.0.1:4999'] });
});
