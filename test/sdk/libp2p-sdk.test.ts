/**
 * The SDK over the libp2p client transport (SECURITY.md section 6) against
 * a 3-node cluster with a cluster key: it learns the members' libp2p
 * addresses from one seed, sends to owners over noise-encrypted streams,
 * consumes and answers requests; without the key it cannot connect.
 */
import { randomBytes } from 'node:crypto';
import test from 'ava';
import { connect, DisconnectedError, type ConsumedMessage } from '../../src/index.js';
import { startCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wire.js';

test('SDK over libp2p: a cluster-key holder sends to owners, consumes and requests; a client without the key is refused', async (t) => {
  const clusterKey = randomBytes(32).toString('hex');
  const cluster = await startCluster(t, 3, {
    env: { SWARMMQ_CLUSTER_KEY: clusterKey },
    flags: ['--client-streams', 'true'],
  });
  // The seed's libp2p address, as INFO names it (C2.9): read through a TCP client.
  const probe = await connect({ servers: [`127.0.0.1:${cluster.nodes[0]!.port}`] });
  await waitFor(() => probe.view?.members.length === 3, 'the full view');
  const seed = probe.view!.members.find((m) => m.id === cluster.nodes[0]!.peerId)!.mesh[0]!;
  await probe.close();
  t.regex(seed, /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3/);

  const c = await connect({ servers: [seed], transport: 'libp2p', libp2p: { clusterKey } });
  t.teardown(() => c.close());
  await waitFor(() => c.view?.members.length === 3, 'the view over libp2p');
  const dests = ['p2p.a', 'p2p.b', 'p2p.c', 'p2p.d', 'p2p.e', 'p2p.f'];
  const owners = new Set(dests.map((d) => c.ownerOf(d)!.id));
  t.true(owners.size >= 2, 'the destinations have different owners');
  await Promise.all(
    dests.flatMap((d) => Array.from({ length: 20 }, (_, i) => c.send(d, `${d} ${i}`, { id: `${d}-${i}` }))),
  );
  for (const d of dests) {
    const got: ConsumedMessage[] = [];
    for await (const m of c.consume(d, { group: 'g', batch: 20, waitMs: 1000 })) {
      got.push(m);
      m.ack();
      if (got.length === 20) break;
    }
    t.deepEqual(got.map((m) => m.id).sort(), Array.from({ length: 20 }, (_, i) => `${d}-${i}`).sort());
  }
  t.is(c.stats.viaHome, 0, 'every durable call went straight to its owner, over libp2p');
  t.true(c.stats.toOwner >= dests.length * 20, `${c.stats.toOwner} calls to owners`);
  c.subscribe('svc.echo', { callback: (m) => m.respond(m.data) });
  await c.flush();
  t.is((await c.request('svc.echo', 'over noise')).string(), 'over noise');

  const outsider = await t.throwsAsync(
    connect({ servers: [seed], transport: 'libp2p', reconnect: { maxAttempts: 2 }, connectTimeoutMs: 2000 }),
  );
  t.true(outsider instanceof DisconnectedError, String(outsider));
});
