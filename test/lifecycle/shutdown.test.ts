/**
 * A graceful stop, step by step (protocol/OPERATIONS.md OPS1.1-OPS1.4), on
 * a 3-node cluster of real processes: a connected client is told to move
 * (INFO with ldm), the node hands its destinations over and releases its
 * copies, exits 0, and every message it held is served by the others.
 */
import test from 'ava';
import { startCluster, waitForView } from '../helpers/cluster.js';
import { DurableClient, pullAll } from '../helpers/durable-client.js';
import { QUIET, RawClient, waitFor } from '../helpers/wire.js';

const MESSAGES_PER_DEST = 50;

test('OPS1.2-OPS1.4 SIGTERM: clients see ldm, the node hands over and releases its copies, exits 0, nothing is lost', async (t) => {
  t.timeout(120_000);
  const { nodes } = await startCluster(t, 3);
  const [leaving, b, c] = nodes as [(typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0]];
  // RF 3 on 3 nodes: the leaving node holds a copy of every destination, and owns some.
  const producer = await DurableClient.connect(leaving.port, '127.0.0.1', 'producer');
  t.teardown(() => producer.close());
  // Three destinations the leaving node owns and three it replicates, found by asking OWNER.
  const owned: string[] = [];
  const replicated: string[] = [];
  for (let i = 0; i < 200 && (owned.length < 3 || replicated.length < 3); i++) {
    const d = `s.${i}`;
    const list = (await ownerOf(producer, d)) === leaving.peerId ? owned : replicated;
    if (list.length < 3) list.push(d);
  }
  const dests = [...owned, ...replicated];
  t.is(dests.length, 6);
  const ids = new Set<string>();
  for (const d of dests) {
    for (let i = 0; i < MESSAGES_PER_DEST; i++) {
      const r = await producer.send(d, `${d}-${i}`, { id: `${d}-${i}` });
      t.true(r.ok, r.error);
      ids.add(r.id);
    }
  }

  const [watcher] = await RawClient.open(t, leaving.port, QUIET);
  await leaving.kill('SIGTERM');
  t.is(await leaving.proc.exited, 0);
  // OPS1.2: the open connection was told to move, and not to come back here.
  const ldm = await watcher.expect(/^INFO (\{.*"ldm":true.*\})\r\n/);
  const info = JSON.parse(ldm[1]!) as { connect_urls?: string[] };
  t.false(info.connect_urls?.includes(`127.0.0.1:${leaving.port}`) ?? false);
  // OPS1.3: everything handed over and released here.
  const left = leaving.proc.stdout.find((l) => l.includes('"left the mesh"'));
  t.truthy(left);
  t.log(left, leaving.proc.stdout.filter((l) => /"level":(40|50)/.test(l)).join('\n'));
  t.like(JSON.parse(left!), { handedOver: true, remaining: 0 });
  t.true(leaving.proc.stdout.some((l) => l.includes('"node stopped"')));

  await waitForView([b, c], 2);
  const reader = await DurableClient.connect(b.port, '127.0.0.1', 'reader');
  t.teardown(() => reader.close());
  const got = new Set<string>();
  for (const d of dests) for (const m of await pullAll(reader, d, 'audit', { ack: true })) got.add(m.id);
  t.deepEqual(
    [...ids].filter((id) => !got.has(id)),
    [],
  );
});

test('OPS1.1 a second signal during the stop exits at once with 1', async (t) => {
  t.timeout(120_000);
  // The peer is frozen (SIGSTOP) and counts as a member for a minute, so the
  // hand-over cannot finish and the stop is still under way at the second signal.
  const { nodes } = await startCluster(t, 2, { flags: ['--member-timeout', '60s'] });
  const [node, peer] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
  const client = await DurableClient.connect(node.port, '127.0.0.1', 'producer');
  t.teardown(() => client.close());
  for (let i = 0; i < 20; i++) t.true((await client.send(`twice.${i}`, 'x')).ok);
  peer.proc.child.kill('SIGSTOP');
  t.teardown(() => void peer.proc.child.kill('SIGCONT'));
  node.proc.child.kill('SIGTERM');
  await waitFor(
    () => node.proc.stdout.some((l) => l.includes('"leaving the mesh: handing destinations over"')),
    'the hand-over to begin',
  );
  node.proc.child.kill('SIGINT');
  t.is(await node.proc.exited, 1);
  t.regex(node.proc.stderr, /second SIGINT: exiting at once/);
  t.false(node.proc.stdout.some((l) => l.includes('"left the mesh"')));
});

async function ownerOf(c: DurableClient, destination: string): Promise<string> {
  c.write(`OWNER ${destination}\r\n`);
  // OWNER is answered in order, so before the PONG.
  await c.ping();
  const line = c.other.find((l) => l.startsWith(`+OWNER ${destination} `));
  if (line === undefined) throw new Error(`no answer to OWNER ${destination}: ${c.errors.join('; ')}`);
  return line.split(' ')[2]!;
}
