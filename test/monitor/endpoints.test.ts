/**
 * The monitoring endpoints (src/monitor/server.ts): /healthz, /readyz and
 * /varz on a live node, over real HTTP.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import test from 'ava';
import { runCli, runStandalone, tempDir } from '../helpers/process.js';
import { QUIET, RawClient, startTestNode, waitFor } from '../helpers/wire.js';

async function get(
  port: number,
  path: string,
  method = 'GET',
): Promise<{ status: number; body: Record<string, unknown>; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>), text };
}

test('healthz, readyz and varz on a standalone node; counters move with traffic', async (t) => {
  const { node, port } = await startTestNode(t);
  const m = node.monitor!.port;
  t.true(m > 0 && m !== port);
  t.deepEqual((await get(m, '/healthz')).body, { status: 'ok' });
  t.deepEqual((await get(m, '/readyz')).body, { status: 'ready' });
  const [c, info] = await RawClient.open(t, port, QUIET);
  c.send('SUB a 1\r\nPUB a 5\r\nhello\r\n');
  await c.expect(/^MSG a 1 5\r\nhello\r\n/);
  const v = (await get(m, '/varz')).body;
  t.is(v.server_id, info.server_id);
  t.is(v.port, port);
  t.is(v.monitor_port, m);
  t.is(v.connections, 1);
  t.is(v.subscriptions, 1);
  t.true((v.in_bytes as number) > 0 && (v.out_bytes as number) > 0);
  t.is(v.mesh, null);
  t.is(v.auth_required, false);
  t.is((v.limits as Record<string, number>).max_payload, node.options.maxPayloadBytes);
  c.socket.destroy();
  await waitFor(
    async () => (await get(m, '/varz')).body.connections === 0,
    'the connection to be gone from varz',
  );
  const closes = (await get(m, '/varz')).body.closes as Record<string, number>;
  t.is(closes.client_closed, 1);
});

test('unknown paths get 404 and other methods 405, as JSON', async (t) => {
  const { node } = await startTestNode(t);
  const m = node.monitor!.port;
  const missing = await get(m, '/nope');
  t.is(missing.status, 404);
  t.deepEqual((missing.body.endpoints as string[]).slice(0, 3), ['/healthz', '/readyz', '/varz']);
  t.is((await get(m, '/healthz', 'POST')).status, 405);
  const head = await get(m, '/healthz', 'HEAD');
  t.is(head.status, 200);
  t.is(head.text, '');
});

test('MON2.3 a request target that is no URL gets 400 and the node goes on', async (t) => {
  const { node } = await startTestNode(t);
  const m = node.monitor!.port;
  const answer = await new Promise<string>((resolve, reject) => {
    const s = net.connect(m, '127.0.0.1', () =>
      s.end('GET //[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
    );
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString()));
    s.on('close', () => resolve(got));
    s.on('error', reject);
    s.setTimeout(5000, () => s.destroy(new Error('no answer')));
  });
  t.regex(answer, /^HTTP\/1\.1 400 /);
  t.regex(answer, /bad request target/);
  t.deepEqual((await get(m, '/healthz')).body, { status: 'ok' });
});

test('a cluster node is ready once it has joined; varz shows the mesh and no secret', async (t) => {
  const key = randomBytes(32).toString('hex');
  const p = runCli(t, ['start', '--port', '0', '--data-dir', tempDir(t)], { SWARMMQ_CLUSTER_KEY: key });
  const started = await p.waitForLog((l) => l.msg === 'node started');
  const m = Number(String(started.monitor).split(':').pop());
  await waitFor(async () => (await get(m, '/readyz')).status === 200, 'readyz 200', 15_000);
  const v = await get(m, '/varz');
  const mesh = v.body.mesh as Record<string, unknown>;
  t.is(mesh.members, 1);
  t.is(mesh.joined, true);
  t.regex(String(mesh.peer_id), /^12D3Koo/);
  t.false(v.text.includes(key) || v.text.includes(Buffer.from(key, 'hex').toString('base64')));
  p.child.kill('SIGTERM');
  t.is(await p.exited, 0);
});

test('--monitor false serves no monitoring port', async (t) => {
  const p = runStandalone(t, ['--monitor', 'false']);
  const started = await p.waitForLog((l) => l.msg === 'node started');
  t.is(started.monitor, undefined);
  p.child.kill('SIGTERM');
  t.is(await p.exited, 0);
});
