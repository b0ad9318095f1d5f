/** `swarmmq start` as a real process: startup line, clean shutdown, and clear refusals. */
import net from 'node:net';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { connect } from '@nats-io/transport-node';
import { runCli, tempDir } from '../helpers/process.js';

const started = (l: Record<string, unknown>): boolean => l.msg === 'node started';

test('starts on flags, logs its port, serves a stock client, exits 0 on SIGTERM', async (t) => {
  const dir = tempDir(t);
  const p = runCli(t, ['start', '--port', '0', '--data-dir', path.join(dir, 'data'), '--name', 'cli-node']);
  const line = await p.waitForLog(started);
  t.is(line.name, 'cli-node');
  t.is(typeof line.port, 'number');
  const nc = await connect({ servers: `127.0.0.1:${line.port as number}`, reconnect: false });
  t.is(nc.info?.server_name, 'cli-node');
  const closed = nc.closed();
  p.child.kill('SIGTERM');
  t.is(await p.exited, 0);
  await closed;
  t.truthy(p.stdout.find((l) => l.includes('"node stopped"')));
});

test('SIGINT also stops it cleanly', async (t) => {
  const dir = tempDir(t);
  const p = runCli(t, ['start', '--port', '0', '--data-dir', dir]);
  await p.waitForLog(started);
  p.child.kill('SIGINT');
  t.is(await p.exited, 0);
});

test('environment variables configure it', async (t) => {
  const dir = tempDir(t);
  const p = runCli(t, ['start'], { SWARMMQ_PORT: '0', SWARMMQ_DATA_DIR: dir, SWARMMQ_NAME: 'env-node' });
  const line = await p.waitForLog(started);
  t.is(line.name, 'env-node');
  p.child.kill('SIGTERM');
  t.is(await p.exited, 0);
});

test('a taken port: exit 1 with a message naming the port', async (t) => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.teardown(() => blocker.close());
  const port = (blocker.address() as net.AddressInfo).port;
  const p = runCli(t, ['start', '--port', String(port), '--data-dir', tempDir(t)]);
  t.is(await p.exited, 1);
  t.regex(p.stderr, new RegExp(`127\\.0\\.0\\.1:${port} is already in use`));
});

test('an unusable data dir: exit 1 naming the directory', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'not-a-dir');
  writeFileSync(file, 'x');
  const p = runCli(t, ['start', '--port', '0', '--data-dir', file]);
  t.is(await p.exited, 1);
  t.regex(p.stderr, /data dir .*not-a-dir is unusable/);
});

test('a data dir in use by another node: exit 1 saying so', async (t) => {
  const dir = tempDir(t);
  const first = runCli(t, ['start', '--port', '0', '--data-dir', dir]);
  await first.waitForLog(started);
  const second = runCli(t, ['start', '--port', '0', '--data-dir', dir]);
  t.is(await second.exited, 1);
  t.regex(second.stderr, /another node using this data dir/);
  first.child.kill('SIGTERM');
  t.is(await first.exited, 0);
});

test('another master key than the store was written with: exit 1 saying so (S3.5)', async (t) => {
  const dir = tempDir(t);
  const keyA = Buffer.alloc(32, 1).toString('base64');
  const keyB = Buffer.alloc(32, 2).toString('base64');
  const first = runCli(t, ['start', '--port', '0', '--data-dir', dir], { SWARMMQ_MASTER_KEY: keyA });
  await first.waitForLog(started);
  first.child.kill('SIGTERM');
  t.is(await first.exited, 0);
  const second = runCli(t, ['start', '--port', '0', '--data-dir', dir], { SWARMMQ_MASTER_KEY: keyB });
  t.is(await second.exited, 1);
  t.regex(second.stderr, /master key is not the one this store was written with/);
  t.false(second.stderr.includes(keyB));
  const again = runCli(t, ['start', '--port', '0', '--data-dir', dir], { SWARMMQ_MASTER_KEY: keyA });
  await again.waitForLog(started);
  again.child.kill('SIGTERM');
  t.is(await again.exited, 0);
});

test('a bad config file: exit 2 naming the key and the reason', async (t) => {
  const dir = tempDir(t);
  const cfg = path.join(dir, 'bad.yaml');
  writeFileSync(cfg, 'client:\n  port: 99999\n');
  const p = runCli(t, ['start', '--config', cfg]);
  t.is(await p.exited, 2);
  t.regex(p.stderr, /client\.port.*0-65535/);
});

test('a bad flag value: exit 2 naming the flag', async (t) => {
  const p = runCli(t, ['start', '--max-payload', 'huge']);
  t.is(await p.exited, 2);
  t.regex(p.stderr, /--max-payload/);
});

test('start --help lists every option with its YAML key and env var', async (t) => {
  const p = runCli(t, ['start', '--help']);
  t.is(await p.exited, 0);
  const help = p.stdout.join('\n');
  for (const s of [
    '--port',
    '--host',
    '--data-dir',
    '--name',
    '--log-level',
    '--config',
    'SWARMMQ_PORT',
    'client.port',
  ]) {
    t.true(help.includes(s), s);
  }
});
