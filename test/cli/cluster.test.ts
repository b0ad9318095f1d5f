/** `swarmmq cluster` as a real process: N nodes that form a mesh, clean stop, a dead node, bad usage. */
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { runCli, runStandalone, tempDir, type CliProcess } from '../helpers/process.js';
import { RawClient, waitFor } from '../helpers/wire.js';

const NODE_LINE = /^node (\d+) {2}client (\S+) {2}data (\S+) {2}pid (\d+)$/;

interface NodeLine {
  index: number;
  client: string;
  port: number;
  pid: number;
}

/** Starts `cluster --nodes <n>` on free ports; every child pid it prints is SIGKILLed at teardown. */
function startCluster(
  t: ExecutionContext,
  n: number,
  dataDir = tempDir(t),
): { p: CliProcess; done: Promise<number | string>; nodes: () => NodeLine[] } {
  const p = runCli(t, ['cluster', '--nodes', String(n), '--base-port', '0', '--data-dir', dataDir]);
  const done = closed(p);
  const nodes = (): NodeLine[] =>
    p.stdout.flatMap((l) => {
      const m = NODE_LINE.exec(l);
      if (m === null) return [];
      return [{ index: Number(m[1]), client: m[2]!, port: Number(m[2]!.split(':')[1]), pid: Number(m[4]) }];
    });
  t.teardown(() => {
    for (const node of nodes()) if (alive(node.pid)) process.kill(node.pid, 'SIGKILL');
  });
  return { p, done, nodes };
}

/**
 * The exit code (or signal) once stdout and stderr are fully read: runCli's
 * `exited` comes on 'exit', which may be before the last output is in. Call at once after spawning.
 */
function closed(p: CliProcess): Promise<number | string> {
  return new Promise((resolve) =>
    p.child.once('close', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/** waitFor, with the process's output in the error when it times out. */
async function waitOutput<T>(p: CliProcess, check: () => T, what: string, timeoutMs?: number): Promise<T> {
  try {
    return await waitFor(check, what, timeoutMs);
  } catch (err) {
    throw new Error(`${(err as Error).message}\nstdout:\n${p.stdout.join('\n')}\nstderr:\n${p.stderr}`);
  }
}

const formedLine = async (p: CliProcess, n: number): Promise<string> =>
  (await waitOutput(p, () => p.stdout.find((l) => l.includes(`formed: ${n} nodes`)), 'formed', 30_000))!;

test('three nodes form a mesh, every INFO lists them all, SIGINT stops them all', async (t) => {
  const { p, done, nodes } = startCluster(t, 3);
  const formed = await formedLine(p, 3);
  const started = nodes();
  t.deepEqual(started.map((x) => x.index).sort(), [1, 2, 3]);
  const addrs = started.sort((a, b) => a.index - b.index).map((x) => x.client);
  t.regex(formed, /^cluster test-[0-9a-f]+ formed: 3 nodes; connect with /);
  t.true(formed.endsWith(addrs.map((a) => `nats://${a}`).join(',')));

  for (const node of started) {
    const c = await RawClient.connect(t, node.port);
    // No PING: the stream then holds only INFO lines, and the node re-sends INFO
    // to connected clients when its view changes; it may take one update to list all three.
    c.send('CONNECT {"verbose":false}\r\n');
    let urls: string[] = [];
    while (!addrs.every((a) => urls.includes(a))) {
      const m = await c.expect(/^INFO (.*)\r\n/, 10_000);
      urls = ((JSON.parse(m[1]!) as Record<string, unknown>).connect_urls as string[] | undefined) ?? [];
    }
    t.is(urls.length, 3, `node ${node.index}: ${JSON.stringify(urls)}`);
  }

  const t0 = Date.now();
  p.child.kill('SIGINT');
  t.is(await done, 0);
  t.true(Date.now() - t0 < 15_000);
  t.truthy(p.stdout.find((l) => l === 'cluster stopped'));
  await waitFor(() => started.every((x) => !alive(x.pid)), 'every node process to be gone', 5_000);
  t.false(p.stderr.includes('exited'), p.stderr);
});

test('--nodes 0: exit 2 with a one-line message', async (t) => {
  const p = runCli(t, ['cluster', '--nodes', '0']);
  t.is(await closed(p), 2);
  t.regex(p.stderr.trim(), /^swarmmq cluster: --nodes must be a whole number from 1 to 32, got "0"$/);
  t.deepEqual(p.stdout, []);
});

test('a node that cannot start: its reason is shown, the others are stopped, exit 1', async (t) => {
  const dir = tempDir(t);
  // Another node holds node 2's data dir, so node 2 fails whatever the ports.
  const held = path.join(dir, 'node-2');
  const holder = runStandalone(t, [], { dataDir: held });
  await holder.waitForLog((l) => l.msg === 'node started');
  const { done, p, nodes } = startCluster(t, 2, dir);
  t.is(await done, 1);
  t.regex(p.stderr, /^node 2 failed to start \(code 1\):$/m);
  t.regex(p.stderr, /^\[node 2\] .*another node using this data dir/m);
  t.false(nodes().some((x) => alive(x.pid)));
  holder.child.kill('SIGTERM');
  t.is(await holder.exited, 0);
});

test('a killed node is reported, the rest keep running, SIGTERM stops them', async (t) => {
  const { p, done, nodes } = startCluster(t, 3);
  await formedLine(p, 3);
  const [victim, ...rest] = nodes();
  process.kill(victim!.pid, 'SIGKILL');
  await waitOutput(p, () => p.stderr.includes(`node ${victim!.index} exited (signal SIGKILL)`), 'report');
  t.is(p.child.exitCode, null);
  t.true(rest.every((x) => alive(x.pid)));
  // Still serving: a survivor answers a PING (an INFO update may come first, so no RawClient.open).
  const c = await RawClient.connect(t, rest[0]!.port);
  c.send('CONNECT {"verbose":false}\r\n');
  t.regex(await c.flushed(), /^INFO /);
  p.child.kill('SIGTERM');
  t.is(await done, 0);
  t.truthy(p.stdout.find((l) => l === 'cluster stopped'));
  await waitFor(() => rest.every((x) => !alive(x.pid)), 'the surviving node processes to be gone', 5_000);
});
