/**
 * The master key never reaches the logs (STORAGE.md S3.1): neither a
 * configured one nor one the node generated, through a run that stores,
 * pulls, dead-letters and fails integrity checks.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { QUIET, RawClient, startTestNode, waitFor } from '../helpers/wire.js';

async function exercise(port: number, t: Parameters<typeof RawClient.open>[0]): Promise<void> {
  const [c] = await RawClient.open(t, port, QUIET);
  c.send('SEND secret.q id=a 5\r\nhello\r\nSEND secret.q 5\r\nworld\r\nSEND secret.q id=a 5\r\nagain\r\n');
  await c.expect(
    /^\+STORED secret\.q 1 a\r\n\+STORED secret\.q 2 [0-9a-f]{32}\r\n\+STORED secret\.q 1 a duplicate\r\n/,
  );
  c.send('PULL secret.q g 10\r\n');
  const m = await c.expect(
    /^DMSG secret\.q (\S+) [^\r]*\r\nhello\r\nDMSG [^\r]*\r\nworld\r\n\+PULLED secret\.q 2\r\n/,
  );
  c.send(`TERM ${m[1]}\r\nBOGUS\r\nCONNECT {bad\r\n`);
  await c.waitClosed();
}

function searchable(key: Buffer): string[] {
  return [key.toString('base64'), key.toString('hex'), key.toString('base64url'), key.toString('latin1')];
}

test('a configured master key appears in no log line', async (t) => {
  const key = Buffer.alloc(32);
  for (let i = 0; i < 32; i++) key[i] = (i * 37 + 11) & 0xff;
  const { node, port, logs } = await startTestNode(t, { masterKey: key, logLevel: 'trace' });
  await exercise(port, t);
  await waitFor(() => node.durable.stats.deadLettered === 1, 'the dead letter');
  const all = logs.join('');
  t.true(all.length > 0);
  for (const form of searchable(key)) t.false(all.includes(form), 'master key found in the logs');
});

test('a generated master key appears in no log line', async (t) => {
  const { node, port, logs } = await startTestNode(t, { logLevel: 'trace' });
  await exercise(port, t);
  await waitFor(() => node.durable.stats.deadLettered === 1, 'the dead letter');
  const file = path.join(node.options.dataDir, 'master.key');
  const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
  t.is(key.length, 32);
  const all = logs.join('');
  t.true(all.includes('no master key configured'));
  for (const form of searchable(key)) t.false(all.includes(form), 'master key found in the logs');
});
