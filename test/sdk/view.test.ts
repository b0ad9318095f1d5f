/**
 * The SDK keeps its view current as nodes join (protocol/SDK.md SDK1.2):
 * a node added to a running cluster appears in the client's view through
 * its home node's INFO (CLIENT.md C2.9), and durable calls for the
 * destinations it now owns go straight to it.
 */
import test from 'ava';
import { connect, type ConsumedMessage } from '../../src/index.js';
import { startCluster, waitForView } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wire.js';

test('a joining node enters the SDK view, and sends for what it owns go straight to it (SDK1.2, SDK2.1)', async (t) => {
  const cluster = await startCluster(t, 3);
  const c = await connect({ servers: [`127.0.0.1:${cluster.nodes[0]!.port}`] });
  t.teardown(() => c.close());
  await waitFor(() => c.view?.members.length === 3, 'a view of 3 in the SDK');
  const sizes: number[] = [];
  c.on('view', (v) => sizes.push(v.members.length));

  const joined = await cluster.add();
  await waitForView(cluster.nodes, 4);
  await waitFor(() => c.view?.members.length === 4, 'the new member in the SDK view', 30_000);
  t.true(sizes.includes(4), 'a view event told of it');
  t.true(c.view!.members.some((m) => m.id === joined.peerId && m.client.endsWith(`:${joined.port}`)));

  // Destinations the new node owns, by the SDK's ring (the nodes' own, M3.2).
  const mine: string[] = [];
  for (let i = 0; mine.length < 3 && i < 1000; i++)
    if (c.ownerOf(`join.d${i}`)?.id === joined.peerId) mine.push(`join.d${i}`);
  t.is(mine.length, 3);
  const before = c.stats;
  // The joining owner serves its destinations once its merges are done (M7.2); the SDK just waits.
  await Promise.all(
    mine.flatMap((d) => Array.from({ length: 10 }, (_, i) => c.send(d, `m${i}`, { id: `${d}-${i}` }))),
  );
  const after = c.stats;
  t.is(after.viaHome - before.viaHome, 0, 'nothing went through another node');
  t.true(after.toOwner - before.toOwner >= 30);
  for (const d of mine) {
    const got: ConsumedMessage[] = [];
    for await (const m of c.consume(d, { group: 'g', batch: 10, waitMs: 1000 })) {
      got.push(m);
      m.ack();
      if (got.length === 10) break;
    }
    t.is(new Set(got.map((m) => m.id)).size, 10);
  }
});
