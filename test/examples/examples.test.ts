/** Every example in examples/ runs to completion against a real node. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import test from 'ava';
import { startTestNode } from '../helpers/wire.js';
import { startCluster } from '../helpers/cluster.js';

const examplesDir = path.resolve(import.meta.dirname, '../../examples');

async function runExample(file: string, url: string): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [path.join(examplesDir, file)], {
    env: { PATH: process.env.PATH ?? '', SWARMMQ_URL: url },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  return { code, out };
}

test('request-reply example', async (t) => {
  const { port } = await startTestNode(t);
  const r = await runExample('request-reply.js', `127.0.0.1:${port}`);
  t.is(r.code, 0, r.out);
  t.is(r.out.match(/the time is \d{4}-/g)?.length, 3, r.out);
});

test('queue-workers example', async (t) => {
  const { port } = await startTestNode(t);
  const r = await runExample('queue-workers.js', `127.0.0.1:${port}`);
  t.is(r.code, 0, r.out);
  t.regex(r.out, /30 jobs, each handled once/);
});

test('queue-workers example across a 3-node cluster: workers on different nodes, each job once (MESH.md M6.2)', async (t) => {
  const cluster = await startCluster(t, 3);
  const url = cluster.nodes.map((n) => `127.0.0.1:${n.port}`).join(',');
  const r = await runExample('queue-workers.js', url);
  t.is(r.code, 0, r.out);
  t.regex(r.out, /30 jobs, each handled once/);
});

// The SDK examples, each in one command against a 3-node cluster (as `npx swarmmq cluster --nodes 3`).
test('SDK examples: producer, consumer group and request/reply against a 3-node cluster', async (t) => {
  const cluster = await startCluster(t, 3);
  const seed = `127.0.0.1:${cluster.nodes[0]!.port}`;
  const producer = await runExample('sdk-producer.js', seed);
  t.is(producer.code, 0, producer.out);
  // The example prints the view it got; under load a member may be missing from it for a moment.
  t.regex(producer.out, /the cluster has [1-3] node\(s\)/);
  t.regex(producer.out, /sent 200 orders, 200 confirmed/);
  const group = await runExample('sdk-consumer-group.js', seed);
  t.is(group.code, 0, group.out);
  t.regex(group.out, /workers handled \d+ \+ \d+ \+ \d+ = 60 invoices, 0 twice/);
  const rr = await runExample(
    'sdk-request-reply.js',
    cluster.nodes.map((n) => `127.0.0.1:${n.port}`).join(','),
  );
  t.is(rr.code, 0, rr.out);
  t.is(rr.out.match(/\d doubled is \d+/g)?.length, 5, rr.out);
  t.regex(rr.out, /5 doubled is 10/);
  t.regex(rr.out, /no responders/);
});
