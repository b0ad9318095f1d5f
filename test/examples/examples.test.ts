/** Every example in examples/ runs to completion against a real node. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import test from 'ava';
import { startTestNode } from '../helpers/wire.js';

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
