/**
 * The monitoring endpoints of a live 3-node cluster of real `swarmmq start`
 * processes (protocol/MONITORING.md sections 4-7, protocol/MESH.md): every
 * node's /meshz agrees on members, ring and owners, and with OWNER; /destz
 * shows the same depth and group lag at the owner and at both replicas, and
 * /meshz?stats=1 the owner's numbers at any node; /subsz shows another
 * node's interest; a killed member is listed as departed. One cluster is
 * shared by the file's serial tests (started in a before hook).
 */
import test from 'ava';
import { natsClient, startCluster, type Cluster, type ClusterNode } from '../helpers/cluster.js';
import { DurableClient } from '../helpers/durable-client.js';
import { getJson, hookContext, monitorOf, nameOf, owners, type OwnerAnswer } from '../helpers/monitor.js';
import { RawClient, waitFor } from '../helpers/wire.js';

type Json = Record<string, unknown>;
/** In flight stays in flight however slow the machine: no redelivery at the default 5 s ack timeout. */
const LONG_ACK = ' ack_timeout=10m';
const rows = (body: Json, key: string): Json[] => body[key] as Json[];

/** Destinations of the test; the i-th gets i + 1 messages. */
const DESTS = ['audit', 'billing', 'events', 'mail', 'orders'];
const VIEW_DEADLINE_MS = 30_000;

const hook = hookContext();
let cluster: Cluster;
let monitors: string[];
/** OWNER's answer for each destination, from node 0. */
let placed: Map<string, OwnerAnswer>;

test.before(async () => {
  cluster = await startCluster(hook.t, 3);
  monitors = cluster.nodes.map(monitorOf);
  for (const m of monitors) {
    await waitFor(async () => (await getJson(m, '/readyz')).status === 200, `${m} ready`, VIEW_DEADLINE_MS);
  }
  const c = await DurableClient.connect(cluster.nodes[0]!.port);
  for (const d of DESTS) await c.create(d);
  c.close();
  // Sends through every node: forwarded to each destination's owner (M4.5).
  for (let i = 0; i < DESTS.length; i++) {
    const via = await DurableClient.connect(cluster.nodes[i % 3]!.port);
    for (let k = 0; k <= i; k++) {
      const r = await via.send(DESTS[i]!, `m${k}`);
      if (!r.ok) throw new Error(`send to ${DESTS[i]} refused: ${r.error}`);
    }
    via.close();
  }
});

test.after.always(() => hook.cleanup());

const nodeById = (id: string): ClusterNode => cluster.nodes.find((n) => n.peerId === id)!;

test.serial(
  '/meshz: every node lists the same members and ring, and owners that agree with OWNER (MON6)',
  async (t) => {
    const ids = cluster.nodes.map((n) => n.peerId).sort();
    const views = await Promise.all(
      monitors.map(
        async (m) =>
          (await waitFor(
            async () => {
              const b = (await getJson(m, '/meshz')).body;
              const names = rows(b, 'destinations').map((d) => d.name);
              const ready = rows(b, 'members').filter((x) => x.status === 'ready' && x.in_ring === true);
              return ready.length === 3 && DESTS.every((d) => names.includes(d)) ? b : undefined;
            },
            `${m}: 3 ready members and every destination`,
            VIEW_DEADLINE_MS,
          ))!,
      ),
    );
    for (const [i, v] of views.entries()) {
      const node = cluster.nodes[i]!;
      t.like(v, {
        mesh_enabled: true,
        peer_id: node.peerId,
        cluster: cluster.name,
        joined: true,
        replication_factor: 3,
      });
      t.like(v.ring, { members: 3, vnodes_per_member: 128, points: 384 });
      const members = rows(v, 'members');
      t.deepEqual(members.map((x) => x.peer_id).sort(), ids);
      t.deepEqual(
        members.filter((x) => x.self === true).map((x) => x.peer_id),
        [node.peerId],
      );
      for (const x of members) {
        const n = nodeById(String(x.peer_id));
        t.is(x.name, nameOf(n));
        t.is(x.client, `127.0.0.1:${n.port}`);
        t.is(x.vnodes, 128);
        t.true((x.heartbeat_age_ms as number) >= 0);
        if (x.self === true) t.is(x.link, null);
        else t.like(x.link, { connected: true, breaker: { state: 'closed', failures: 0, open_for_ms: 0 } });
      }
      const shares = members.reduce((sum, x) => sum + (x.ring_share as number), 0);
      t.true(Math.abs(shares - 1) < 1e-5, `ring shares sum to ${shares}`);
    }
    // Ownership: the same at every node, and what OWNER answers there (M3.3).
    placed = new Map((await owners(t, cluster.nodes[0]!.port, DESTS)).map((o, i) => [DESTS[i]!, o]));
    for (const [i, v] of views.entries()) {
      const asked = await owners(t, cluster.nodes[i]!.port, DESTS);
      for (const d of rows(v, 'destinations').filter((x) => DESTS.includes(String(x.name)))) {
        const o = asked[DESTS.indexOf(String(d.name))]!;
        t.deepEqual([d.owner, d.replicas], [o.owner, o.replicas], `${String(d.name)} at node${i}`);
        t.deepEqual(
          [d.owner, d.replicas],
          [placed.get(String(d.name))!.owner, placed.get(String(d.name))!.replicas],
        );
        t.is(d.known, true);
      }
    }
    const one = (await getJson(monitors[1]!, '/meshz?dest=billing')).body;
    t.like(one, { total: 1 });
    t.like(rows(one, 'destinations')[0], { name: 'billing', owner: placed.get('billing')!.owner });
    const unknown = rows((await getJson(monitors[1]!, '/meshz?dest=nowhere')).body, 'destinations')[0]!;
    t.like(unknown, { name: 'nowhere', known: false, here: null });
    t.is(typeof unknown.owner, 'string');
    const names = rows(views[0]!, 'destinations').map((d) => String(d.name));
    const page = (await getJson(monitors[0]!, '/meshz?limit=2&offset=1')).body;
    t.like(page, { total: names.length, offset: 1, limit: 2 });
    t.deepEqual(
      rows(page, 'destinations').map((d) => d.name),
      names.slice(1, 3),
    );
  },
);

test.serial(
  '/destz: owner and replicas agree on depth and group lag; /meshz?stats=1 reports the owner (MON7)',
  async (t) => {
    placed ??= new Map((await owners(t, cluster.nodes[0]!.port, DESTS)).map((o, i) => [DESTS[i]!, o]));
    // At each owner: group g takes one message and keeps it in flight; on `mail` group h takes two and acks them.
    for (const d of DESTS) {
      const c = await DurableClient.connect(nodeById(placed.get(d)!.owner).port);
      t.teardown(() => c.close());
      t.is((await c.pull(d, 'g', 1, '0', LONG_ACK)).length, 1);
      if (d === 'mail') {
        const h = await c.pull(d, 'h', 2);
        t.is(h.length, 2);
        c.ack(...h.map((x) => x.handle));
      }
      await c.ping();
    }
    const expected = (d: string): Json => {
      const n = DESTS.indexOf(d) + 1;
      const g = { name: 'g', lag: n - 1, in_flight: 1, acked: 0 };
      return {
        depth: n,
        groups: d === 'mail' ? [g, { name: 'h', lag: n - 2, in_flight: 0, acked: 2 }] : [g],
      };
    };
    const groupsOf = (x: Json): Json[] =>
      rows(x, 'groups')
        .map((g) => ({ name: g.name, lag: g.lag, in_flight: g.in_flight, acked: g.acked }))
        .sort((a, b) => String(a.name).localeCompare(String(b.name)));
    for (const d of DESTS) {
      const p = placed.get(d)!;
      t.is(p.replicas.length, 2);
      for (const [i, node] of cluster.nodes.entries()) {
        const role = node.peerId === p.owner ? 'owner' : 'replica';
        // Replicas apply the owner's changes as they come (M5.3): polled until they match.
        const seen = (await waitFor(
          async () => {
            const r = await getJson(monitors[i]!, `/destz?dest=${d}`);
            if (r.status !== 200) return undefined;
            const x = rows(r.body, 'destinations')[0]!;
            const same =
              x.role === role &&
              JSON.stringify({ depth: x.depth, groups: groupsOf(x) }) === JSON.stringify(expected(d));
            return same ? x : undefined;
          },
          `${d} at node${i} (${role}) to show ${JSON.stringify(expected(d))}`,
          VIEW_DEADLINE_MS,
        ))!;
        t.is(seen.oldest_seq, 1, `${d} at node${i}`);
      }
    }
    // Any node reports what each owner reports.
    const other = cluster.nodes.findIndex((n) => n.peerId !== placed.get('mail')!.owner);
    const stats = (await getJson(monitors[other]!, '/meshz?stats=1')).body;
    for (const d of rows(stats, 'destinations').filter((x) => DESTS.includes(String(x.name)))) {
      const s = d.stats as Json;
      t.deepEqual({ depth: s.depth, groups: groupsOf(s) }, expected(String(d.name)), String(d.name));
    }
  },
);

test.serial(
  '/connz and /subsz: a stock client on one node, its interest seen by the others (MON4, MON5)',
  async (t) => {
    const [a, b] = cluster.nodes as [ClusterNode, ClusterNode];
    const nc = await natsClient(t, b);
    const got: string[] = [];
    nc.subscribe('news.>', { callback: (_err, msg) => void got.push(msg.subject) });
    await nc.flush();
    // Node a holds b's interest as an entry owned by b's peer (M6.1).
    const seen = (await waitFor(
      async () => {
        const r = (await getJson(monitors[0]!, '/subsz?test=news.today')).body;
        return rows(r, 'subscriptions_list').find((e) => e.peer === b.peerId);
      },
      "node a to list node b's interest",
      VIEW_DEADLINE_MS,
    ))!;
    t.like(seen, { subject: 'news.>' });
    t.is(seen.cid, undefined);
    t.true(((await getJson(monitors[0]!, '/subsz')).body.num_remote as number) >= 1);
    const [pub] = await RawClient.open(t, a.port, { verbose: false, pedantic: false });
    pub.send('PUB news.today 2\r\nhi\r\nPUB news.sport 2\r\nhi\r\n');
    await waitFor(() => got.length === 2, 'both messages at the stock client');
    const mine = (await waitFor(async () => {
      const r = (await getJson(monitors[1]!, '/connz?subs=1&sort=msgs_to')).body;
      const c = rows(r, 'connections').find((x) => x.lang === 'nats.js');
      return c !== undefined && c.out_msgs === 2 ? c : undefined;
    }, 'the stock client with its two messages in /connz'))!;
    t.deepEqual(mine.subscriptions_list, ['news.>']);
    t.is(mine.in_msgs, 0);
  },
);

test.serial('/meshz: a killed member leaves the view and is listed as departed (MON6.2)', async (t) => {
  const gone = cluster.nodes[2]!;
  await gone.kill();
  const body = (await waitFor(
    async () => {
      const b = (await getJson(monitors[0]!, '/meshz')).body;
      return rows(b, 'members').length === 2 ? b : undefined;
    },
    'node 0 to drop the killed member',
    VIEW_DEADLINE_MS,
  ))!;
  t.false(rows(body, 'members').some((m) => m.peer_id === gone.peerId));
  t.like(body.ring, { members: 2 });
  const departed = rows(body, 'departed').find((d) => d.peer_id === gone.peerId);
  t.truthy(departed);
  t.true((departed!.gone_for_ms as number) >= 0);
});
