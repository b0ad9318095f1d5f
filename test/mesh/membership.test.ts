/** Membership (protocol/MESH.md M2) without sockets: which heartbeats change the view. */
import test from 'ava';
import { Membership } from '../../src/mesh/membership.js';
import type { MeshLibp2p } from '../../src/mesh/peer.js';
import { silentLog } from '../fuzz/fakes.js';
import { PEER, SELF, heartbeat } from '../fuzz/samples.js';

class FakePubsub extends EventTarget {
  subscribe(): void {}
  async publish(): Promise<void> {}
}

function membership(): { m: Membership; changes: () => number } {
  const p2p = {
    peerId: { toString: () => SELF },
    services: { pubsub: new FakePubsub() },
    addEventListener: () => undefined,
    dial: async () => undefined,
  };
  const m = new Membership(
    p2p as unknown as MeshLibp2p,
    {
      cluster: 'swarmmq',
      heartbeatIntervalMs: 60_000,
      memberTimeoutMs: 3_600_000,
      self: () => heartbeat(SELF),
    },
    silentLog,
  );
  let changes = 0;
  m.on('change', () => changes++);
  return { m, changes: () => changes };
}

test('M2.5: a member whose client or mesh address changes changes the view; a repeat does not', (t) => {
  const { m, changes } = membership();
  m.onHeartbeat(PEER, heartbeat(PEER));
  t.is(changes(), 1, 'a new member');
  m.onHeartbeat(PEER, heartbeat(PEER));
  t.is(changes(), 1, 'the same heartbeat again');
  m.onHeartbeat(PEER, { ...heartbeat(PEER), client: '10.0.0.9:4222' });
  t.is(changes(), 2, 'a new client address (CLIENT.md C2.9 routes by it)');
  m.onHeartbeat(PEER, {
    ...heartbeat(PEER),
    client: '10.0.0.9:4222',
    mesh: [`/ip4/10.0.0.9/tcp/6222/p2p/${PEER}`],
  });
  t.is(changes(), 3, 'a new mesh address');
  t.is(m.members.get(PEER)?.client, '10.0.0.9:4222');
});
