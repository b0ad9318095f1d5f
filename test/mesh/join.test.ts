/**
 * `--join` and peer exchange (protocol/MESH.md M1.5-M1.7), with local
 * discovery off so that the join address is all a node knows: two nodes
 * join through a seed, learn each other from the seed's members, and stay
 * one cluster after the seed is killed; a node of another cluster joining
 * through the same seed never becomes a member.
 */
import test from 'ava';
import { runCli, tempDir, type CliProcess } from '../helpers/process.js';
import { waitFor } from '../helpers/wire.js';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

type LogLine = Record<string, unknown>;

function lastView(p: CliProcess): number {
  let n = 1;
  for (const l of p.stdout) {
    if (!l.includes('"cluster view changed"')) continue;
    n = (JSON.parse(l) as LogLine).members as number;
  }
  return n;
}

async function start(
  t: Parameters<typeof runCli>[0],
  dir: string,
  name: string,
  cluster: string,
  join: string[],
): Promise<{ proc: CliProcess; meshAddr: string; peerId: string }> {
  const args = ['start', '--port', '0', '--mesh-port', '0', '--data-dir', path.join(dir, name)];
  args.push('--local-discovery', 'false', '--mdns', 'off', '--log-level', 'info');
  for (const j of join) args.push('--join', j);
  const proc = runCli(t, args, { SWARMMQ_CLUSTER: cluster });
  const started = await proc.waitForLog((l) => l.msg === 'mesh started', 30_000);
  const addrs = started.mesh as string[];
  const tcp = /\/ip4\/([\d.]+)\/tcp\/(\d+)/.exec(addrs[0]!)!;
  return { proc, meshAddr: `${tcp[1]}:${tcp[2]}`, peerId: started.peerId as string };
}

test('M1.5/M1.6 nodes that join through a seed learn each other and survive its death; M1.7 another cluster stays apart', async (t) => {
  t.timeout(120_000);
  const dir = tempDir(t);
  const cluster = `join-${randomBytes(4).toString('hex')}`;
  const seed = await start(t, dir, 'seed', cluster, []);
  const b = await start(t, dir, 'b', cluster, [seed.meshAddr]);
  const c = await start(t, dir, 'c', cluster, [seed.meshAddr]);
  const stranger = await start(t, dir, 'x', `${cluster}-other`, [seed.meshAddr]);
  const formed = Date.now();
  await waitFor(
    () => [seed, b, c].every((n) => lastView(n.proc) === 3),
    'a view of 3 on seed, b and c',
    30_000,
  );
  t.log(`view of 3 everywhere ${Date.now() - formed} ms after the last node started`);

  // The stranger reached the seed (it dialled it) but is a member of nothing here, and has no members itself.
  t.is(lastView(stranger.proc), 1);
  for (const n of [seed, b, c]) {
    t.false(
      n.proc.stdout.some((l) => l.includes('"member up"') && l.includes(stranger.peerId)),
      'a node of another cluster never comes up as a member',
    );
  }

  // b and c know each other directly (peer exchange), so the seed's death leaves them a cluster of 2.
  const killedAt = Date.now();
  seed.proc.child.kill('SIGKILL');
  await seed.proc.exited;
  await waitFor(() => lastView(b.proc) === 2 && lastView(c.proc) === 2, 'b and c at a view of 2', 20_000);
  t.log(`seed dropped by b and c ${Date.now() - killedAt} ms after kill -9`);
  // And they stay so: heartbeats flow between them without the seed.
  const settle = Date.now() + 5000;
  await waitFor(() => Date.now() > settle, 'five seconds of heartbeats', 10_000);
  t.is(lastView(b.proc), 2);
  t.is(lastView(c.proc), 2);
  // A loaded machine may stall a node past the member timeout: logged, not failed; the view above is what counts.
  const flaps = b.proc.stdout.filter((l) => l.includes('"member down"') && l.includes(c.peerId));
  if (flaps.length > 0)
    t.log(`b dropped c ${flaps.length} time(s) and took it back: ${flaps[0]!.slice(0, 300)}`);
});
