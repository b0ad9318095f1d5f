/** Membership (protocol/MESH.md M2) without sockets: which heartbeats change the view. */
import test from 'ava';
import { fakeMembership } from '../fuzz/service-fuzzers.js';
import { PEER, heartbeat } from '../fuzz/samples.js';

function membership(): { m: ReturnType<typeof fakeMembership>['m']; changes: () => number } {
  const { m } = fakeMembership();
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
