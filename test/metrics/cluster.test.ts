/**
 * Mesh metrics of a 3-node cluster of real `swarmmq start` processes
 * (protocol/METRICS.md MT2.5, MT3.4), scraped over HTTP from each node's
 * monitoring port: every node sees 3 members, the ring shares of the view
 * sum to 1, a call forwarded to an owner shows up per owner peer, and the
 * owner's copies to its replicas show up per replica peer.
 */
import test from 'ava';
import { startCluster, type ClusterNode } from '../helpers/cluster.js';
import { RawClient, waitFor } from '../helpers/wire.js';
import { samples, scrape, value, type Scrape } from './exposition.js';

/** INFO lines a node re-sends on membership changes, skipped before an answer. */
const INFOS = '(?:INFO [^\\r\\n]*\\r\\n)*';
const QUIET = { verbose: false, pedantic: false };

async function monitorPort(node: ClusterNode): Promise<number> {
  const started = await node.proc.waitForLog((l) => l.msg === 'node started');
  return Number(String(started.monitor).split(':').pop());
}

test('3 nodes: 3 members each, ring shares sum to 1, forward and replication histograms per peer', async (t) => {
  const cluster = await startCluster(t, 3);
  const [entry] = cluster.nodes as [ClusterNode, ...ClusterNode[]];
  const peers = cluster.nodes.map((n) => n.peerId);
  const monitors = await Promise.all(cluster.nodes.map(monitorPort));
  const scrapeAll = (): Promise<Scrape[]> => Promise.all(monitors.map((p) => scrape(p)));

  const views = await waitFor(
    async () => {
      const all = await scrapeAll();
      return all.every((s) => value(s, 'swarmmq_mesh_members') === 3) ? all : undefined;
    },
    'every node to count 3 members',
    30_000,
  );
  const shares = views!.map((s) => value(s, 'swarmmq_mesh_ring_share_ratio')!);
  for (const share of shares) t.true(share > 0 && share < 1, `share ${share}`);
  t.true(Math.abs(shares.reduce((a, b) => a + b, 0) - 1) < 1e-9, `shares ${shares.join(' + ')}`);

  // A destination another node owns, as the entry node places it (M3.3).
  const [c] = await RawClient.open(t, entry.port, QUIET);
  let dest = '';
  let owner = '';
  for (let i = 0; owner === '' && i < 64; i++) {
    c.send(`OWNER mx.${i}\r\n`);
    const m = await c.expect(new RegExp(`^${INFOS}\\+OWNER mx\\.${i} (\\S+) \\S+ \\S+\\r\\n`), 15_000);
    if (m[1] !== entry.peerId) [dest, owner] = [`mx.${i}`, m[1]!];
  }
  t.not(owner, '', 'some destination is owned by another node');
  c.send(`SEND ${dest} 5\r\nhello\r\n`);
  await c.expect(new RegExp(`^${INFOS}\\+STORED ${dest.replace('.', '\\.')} 1 \\S+\\r\\n`), 20_000);
  c.send(`PULL ${dest} g 1\r\n`);
  const d = await c.expect(
    new RegExp(`^${INFOS}DMSG \\S+ (\\S+) [^\\r]*\\r\\nhello\\r\\n\\+PULLED \\S+ 1\\r\\n`),
    20_000,
  );
  c.send(`ACK ${d[1]!}\r\n`);
  t.regex(await c.flushed(20_000), new RegExp(`^${INFOS}$`));

  const ownerIndex = peers.indexOf(owner);
  t.true(ownerIndex > 0);
  const after = await waitFor(
    async () => {
      const all = await scrapeAll();
      // The owner counts the ACK before it answers; the entry counts the round trip once the answer is back.
      const settled =
        (value(all[ownerIndex]!, 'swarmmq_durable_settle_seconds_count', { kind: 'ack' }) ?? 0) >= 1 &&
        (value(all[0]!, 'swarmmq_mesh_forward_seconds_count', { peer: owner, op: 'settle' }) ?? 0) >= 1;
      return settled ? all : undefined;
    },
    'the forwarded ACK to reach the owner and its answer the entry node',
    20_000,
  );
  const [atEntry, atOwner] = [after![0]!, after![ownerIndex]!];
  for (const op of ['send', 'pull', 'settle']) {
    t.is(value(atEntry, 'swarmmq_mesh_forward_seconds_count', { peer: owner, op }), 1, `forwarded ${op}`);
  }
  t.true(value(atEntry, 'swarmmq_mesh_forwarded_total')! >= 3);
  // RF 3 on 3 nodes: the owner copied the message to both others before confirming (M5.2).
  for (const replica of peers.filter((p) => p !== owner)) {
    t.is(
      value(atOwner, 'swarmmq_mesh_replication_seconds_count', { peer: replica }),
      1,
      `replica ${replica}`,
    );
  }
  t.true(value(atOwner, 'swarmmq_mesh_replicated_total')! >= 1);
  t.is(value(atOwner, 'swarmmq_durable_destinations', { role: 'owner' })! >= 1, true);
  // MT3.4: the peer label only ever names another member.
  for (const s of after!) {
    for (const name of ['swarmmq_mesh_forward_seconds_count', 'swarmmq_mesh_replication_seconds_count']) {
      for (const sample of samples(s, name)) t.true(peers.includes(sample.labels.peer!), sample.labels.peer);
    }
  }
  t.is(
    samples(atEntry, 'swarmmq_mesh_replication_seconds_count', { peer: peers[0]! }).length,
    0,
    'never itself',
  );

  // MT2.5: a frozen replica holds the owner's copy unconfirmed: the backlog toward it shows 1, then drains.
  const frozen = cluster.nodes.find((n) => n.peerId !== owner && n !== entry)!;
  const backlog = (s: Scrape): number | undefined =>
    value(s, 'swarmmq_mesh_replication_backlog_messages', { peer: frozen.peerId });
  t.is(backlog(atOwner), undefined);
  frozen.proc.child.kill('SIGSTOP');
  t.teardown(() => {
    if (frozen.proc.child.exitCode === null) frozen.proc.child.kill('SIGCONT');
  });
  c.send(`SEND ${dest} 5\r\nagain\r\n`);
  try {
    await waitFor(
      async () => backlog(await scrape(monitors[ownerIndex]!)) === 1,
      'a backlog of 1 toward the frozen replica',
    );
  } finally {
    frozen.proc.child.kill('SIGCONT');
  }
  // Confirmed once the thawed replica syncs it, or refused if it was dropped meanwhile (M5.2): either ends the wait.
  await c.expect(new RegExp(`^${INFOS}(?:\\+STORED|-ERR)[^\r]*\r\n`), 20_000);
  await waitFor(
    async () => backlog(await scrape(monitors[ownerIndex]!)) === undefined,
    'the backlog to drain',
  );
});
