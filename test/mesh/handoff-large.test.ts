/**
 * A hand-off of large messages (protocol/MESH.md M7.2, M4.1): a fetch answer
 * holds at most 4 MiB of bodies and names what it held back, so a node that
 * takes over a destination of large messages gets them all instead of
 * aborting on a frame past the 8 MiB limit and retrying for ever.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { PEER_KEY_FILE } from '../../src/mesh/peer.js';
import { HashRing, placementKey } from '../../src/mesh/ring.js';
import { startCluster, waitForView, type ClusterNode } from '../helpers/cluster.js';
import { DurableClient, pullAll } from '../helpers/durable-client.js';

const MESSAGES = 24;
const BYTES = 512 * 1024;

test('a joining owner takes over 12 MiB of 512 KiB messages, more than one frame holds (M7.2)', async (t) => {
  t.timeout(120_000);
  const cluster = await startCluster(t, 2, { flags: ['--replication-factor', '1'] });
  const [a, b0] = cluster.nodes as [ClusterNode, ClusterNode];
  // The joining node's peer key is made here, so the destination it will own can be chosen now.
  const key = await generateKeyPair('Ed25519');
  const joinerId = peerIdFromPrivateKey(key).toString();
  const ring = new HashRing([a.peerId, b0.peerId, joinerId]);
  let name = '';
  for (let i = 0; name === ''; i++) if (ring.owner(placementKey(`big.${i}`)) === joinerId) name = `big.${i}`;
  const joinerDir = path.join(path.dirname(a.dataDir), 'node2');
  mkdirSync(joinerDir, { recursive: true });
  writeFileSync(path.join(joinerDir, PEER_KEY_FILE), privateKeyToProtobuf(key), { mode: 0o600 });

  const c = await DurableClient.connect(a.port);
  t.teardown(() => c.close());
  await c.create(name);
  const sent = new Map<string, number>();
  for (let i = 0; i < MESSAGES; i++) {
    const r = await c.send(name, Buffer.alloc(BYTES, i));
    sent.set(r.id, i);
  }
  const b = await cluster.add();
  t.is(b.peerId, joinerId);
  await waitForView(cluster.nodes, 3, 30_000);
  // Pulled through the new owner: every message, whole, exactly once.
  const d = await DurableClient.connect(b.port);
  t.teardown(() => d.close());
  const got = await pullAll(d, name, 'g', { batch: 8, ack: true });
  t.is(got.length, MESSAGES);
  for (const m of got) {
    const i = sent.get(m.id);
    t.not(i, undefined, `unknown id ${m.id}`);
    t.true(m.payload.equals(Buffer.alloc(BYTES, i!)), `message ${i} arrived whole`);
  }
  const handed = await b.proc.waitForLog(
    (l) => typeof l.msg === 'string' && /merged|took over|taking over/.test(l.msg),
  );
  t.truthy(handed);
});
