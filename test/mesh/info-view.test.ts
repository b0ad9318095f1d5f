/**
 * The cluster view in INFO (protocol/CLIENT.md C2.9, protocol/MESH.md M2.5)
 * and HSEND across the mesh (protocol/DURABLE.md D3.9, MESH.md M4.5), on a
 * live 3-node cluster of real `swarmmq start` processes: every node's INFO
 * lists the same ring, owners computed from it with HashRing are the ones
 * OWNER names (M3.2, M3.3), an HSEND through a node that does not own the
 * destination keeps its headers at the owner and at the replica that takes
 * over, and connected clients get a new INFO when a member is killed or
 * leaves (OPS1.2). One cluster is shared by the file's serial tests, the
 * last of which stops nodes; every wait polls with a deadline.
 */
import test from 'ava';
import { HashRing, DEFAULT_VNODES, placementKey } from '../../src/mesh/ring.js';
import { connect, type Client } from '../../src/sdk/wire/connection.js';
import type { Delivery } from '../../src/sdk/wire/types.js';
import { startCluster, type Cluster, type ClusterNode } from '../helpers/cluster.js';
import { hookContext, owners } from '../helpers/monitor.js';
import { QUIET, RawClient, startTestNode } from '../helpers/wire.js';
import { parseAuthorization } from '../../src/auth/config.js';
import { connect as connectSdk } from '../../src/index.js';
import { hashApiKey } from '../../src/auth/credentials.js';

interface ViewMember {
  id: string;
  client: string;
  mesh: string[];
}

interface Info {
  connect_urls?: string[];
  ldm?: boolean;
  swarmmq?: { self: string; rf: number; vnodes: number; members: ViewMember[] };
}

/** INFO lines a node re-sends on membership changes (M2.5), skipped before an answer. */
const INFOS = '(?:INFO [^\\r\\n]*\\r\\n)*';
/** How long a view change may take to reach clients on two busy cores (M2.3 drops a silent member in ~4 s). */
const VIEW_DEADLINE_MS = 30_000;
/** The destination the HSEND tests use, and its header block (C3.1). */
const DEST = 'hs.orders';
const HEADERS = 'NATS/1.0\r\nNats-Msg-Id: hs-1\r\nX-Trace: abc\u00e9\r\n\r\n';

const hook = hookContext();
let cluster: Cluster;

test.before(async () => {
  cluster = await startCluster(hook.t, 3);
});

test.after.always(() => hook.cleanup());

const address = (n: ClusterNode): string => `127.0.0.1:${n.port}`;

/** A raw connection to `node` (CONNECT with headers) and the INFO it was greeted with. */
async function openRaw(node: ClusterNode): Promise<[RawClient, Info]> {
  const [c, info] = await RawClient.open(hook.t, node.port, QUIET);
  return [c, info as Info];
}

/** Reads INFO lines from `c` until one satisfies `want` (C2.9: a new INFO per view change). */
async function nextInfo(c: RawClient, want: (i: Info) => boolean, what: string): Promise<Info> {
  const deadline = Date.now() + VIEW_DEADLINE_MS;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`no INFO with ${what} within ${VIEW_DEADLINE_MS} ms`);
    const info = JSON.parse((await c.expect(/^INFO (.*)\r\n/, left))[1]!) as Info;
    if (want(info)) return info;
  }
}

/** What a client that routes to owners computes from INFO (C2.9): the preference list, owner first. */
function preferenceFromInfo(info: Info, dest: string): string[] {
  const v = info.swarmmq!;
  return new HashRing(
    v.members.map((m) => m.id),
    v.vnodes,
  ).preferenceList(placementKey(dest), v.rf);
}

/** Pulls through `client` until a message comes, retrying refusals (a failover, M4.5) until the deadline. */
async function pullOne(client: Client, group: string): Promise<Delivery[]> {
  const deadline = Date.now() + VIEW_DEADLINE_MS;
  let last = 'no message';
  while (Date.now() < deadline) {
    try {
      const got = await client.pull(DEST, group, { batch: 10, waitMs: 1000 });
      if (got.length > 0) return got;
    } catch (err) {
      last = (err as Error).message;
      await new Promise((r) => setTimeout(r, 200)); // pace retries of a refused pull
    }
  }
  throw new Error(`no message from ${DEST} for ${group}: ${last}`);
}

async function wireClient(node: ClusterNode): Promise<Client> {
  const client = await connect({ host: '127.0.0.1', port: node.port });
  hook.t.teardown(() => client.close());
  return client;
}

test('C2.9 a node with credentials shows the view only to a client that proved itself', async (t) => {
  const token = 'view-token-0123456789';
  const { port } = await startTestNode(t, {
    meshEnabled: true,
    meshPort: 0,
    localDiscovery: false,
    mdns: 'off',
    clusterName: `iv-${Date.now().toString(36)}`,
    auth: parseAuthorization({ keys: [{ name: 'app', key_hash: hashApiKey(token) }] }),
  });
  const [stranger, first] = await RawClient.open(t, port);
  t.false('swarmmq' in first, 'no view before CONNECT');
  stranger.send('CONNECT {"verbose":false,"auth_token":"wrong"}\r\nPING\r\n');
  await stranger.expect(/^-ERR 'Authorization Violation'\r\n/);
  t.notRegex(stranger.buffer, /swarmmq/);

  const [app] = await RawClient.open(t, port);
  app.send(`CONNECT {"verbose":false,"auth_token":"${token}"}\r\nPING\r\n`);
  const info = await app.expect(/^INFO (.*)\r\n/);
  const view = (JSON.parse(info[1]!) as { swarmmq?: { members: unknown[] } }).swarmmq;
  t.is(view?.members.length, 1, 'the view, once authenticated');
  await app.expect(/^PONG\r\n/);

  // The SDK reads the view from that second INFO.
  const sdk = await connectSdk({ servers: [`127.0.0.1:${port}`], token });
  t.teardown(() => sdk.close());
  t.is(sdk.view?.members.length, 1);
});

test('C2.9 a standalone node sends no swarmmq (nor connect_urls)', async (t) => {
  const { port } = await startTestNode(t);
  const [, info] = await RawClient.open(t, port);
  t.false('swarmmq' in info);
  t.false('connect_urls' in info);
});

test.serial(
  'C2.9/M2.5 every node sends the same ring in INFO: self, sorted members, rf, vnodes',
  async (t) => {
    const nodes = cluster.nodes;
    const ids = nodes.map((n) => n.peerId).sort();
    const infos = await Promise.all(nodes.map(async (n) => (await openRaw(n))[1]));
    for (const [i, info] of infos.entries()) {
      const v = info.swarmmq;
      if (v === undefined) return t.fail(`node${i}'s INFO has no swarmmq`);
      t.is(v.self, nodes[i]!.peerId, `node${i} names itself`);
      t.is(v.rf, 3, 'cluster.replication_factor 3 over 3 members (M3.1)');
      t.is(v.vnodes, DEFAULT_VNODES, 'the vnodes the mesh builds its ring with (M3.2)');
      t.deepEqual(
        v.members.map((m) => m.id),
        ids,
        `node${i}: the view, sorted by id`,
      );
      for (const m of v.members) {
        const node = nodes.find((n) => n.peerId === m.id)!;
        t.is(m.client, address(node), `client address of ${m.id}`);
        t.true(m.mesh.length > 0 && m.mesh.length <= 4, `node${i} lists 1-4 mesh addresses of ${m.id}`);
        for (const a of m.mesh) t.regex(a, new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/p2p/${m.id}$`));
      }
      t.deepEqual(
        [...info.connect_urls!].sort(),
        v.members.map((m) => m.client).sort(),
        'connect_urls: the same members',
      );
      t.deepEqual(v.members, infos[0]!.swarmmq!.members, `node${i} and node0 list the same members`);
    }
  },
);

test.serial(
  'C2.9/M3.2 owners computed from INFO with HashRing are the ones OWNER names at every node',
  async (t) => {
    const dests = [...Array.from({ length: 30 }, (_, i) => `d${i}.x`), 'orders', 'orders.DLQ', DEST];
    for (const node of cluster.nodes) {
      const [, info] = await openRaw(node);
      const answers = await owners(t, node.port, dests);
      for (const [i, d] of dests.entries()) {
        const a = answers[i]!;
        t.deepEqual(preferenceFromInfo(info, d), [a.owner, ...a.replicas], `${d} at node${node.index}`);
        t.is(a.client, info.swarmmq!.members.find((m) => m.id === a.owner)!.client);
      }
    }
  },
);

test.serial(
  'D3.9/M4.5 HSEND through a node that does not own the destination keeps its headers at the owner',
  async (t) => {
    const [, info] = await openRaw(cluster.nodes[0]!);
    const [ownerId] = preferenceFromInfo(info, DEST);
    const owner = cluster.nodes.find((n) => n.peerId === ownerId)!;
    const others = cluster.nodes.filter((n) => n !== owner);
    const total = Buffer.byteLength(HEADERS, 'latin1') + 'order one'.length;
    const frame = `HSEND ${DEST} priority=8 ${Buffer.byteLength(HEADERS, 'latin1')} ${total}\r\n${HEADERS}order one\r\n`;
    const [via] = await openRaw(others[0]!);
    via.send(frame);
    // D3.9: without id= the Nats-Msg-Id header is the id, carried to the owner with the message.
    await via.expect(new RegExp(`^${INFOS}\\+STORED ${DEST.replace('.', '\\.')} 1 hs-1\\r\\n`), 20_000);
    // Through the other non-owner: the same id, de-duplicated at the owner (D3.4).
    const [via2] = await openRaw(others[1]!);
    via2.send(frame);
    await via2.expect(
      new RegExp(`^${INFOS}\\+STORED ${DEST.replace('.', '\\.')} 1 hs-1 duplicate\\r\\n`),
      20_000,
    );

    // Pulled at the owner itself: the stored copy has the headers byte for byte.
    const got = await pullOne(await wireClient(owner), 'g1');
    t.deepEqual(
      got.map((m) => [m.id, m.priority, m.headers?.toString('latin1'), m.payload.toString()]),
      [['hs-1', 8, HEADERS, 'order one']],
    );
  },
);

test.serial(
  'M2.5/OPS1.2 connected clients get a new INFO when a member is killed or leaves; the replica keeps the headers',
  async (t) => {
    t.timeout(120_000);
    const [, before] = await openRaw(cluster.nodes[0]!);
    const [ownerId] = preferenceFromInfo(before, DEST);
    const owner = cluster.nodes.find((n) => n.peerId === ownerId)!;
    const survivors = cluster.nodes.filter((n) => n !== owner);
    const watchers = await Promise.all(survivors.map(async (n) => (await openRaw(n))[0]));

    await owner.kill('SIGKILL');
    const gone = (i: Info): boolean => i.swarmmq?.members.every((m) => m.id !== owner.peerId) === true;
    for (const [i, w] of watchers.entries()) {
      const info = await nextInfo(w, gone, `no ${owner.peerId}`);
      t.is(info.swarmmq!.self, survivors[i]!.peerId);
      t.deepEqual(
        info.swarmmq!.members.map((m) => m.id),
        survivors.map((n) => n.peerId).sort(),
      );
      t.is(info.swarmmq!.rf, 2, 'RF capped at the two members left (M3.1)');
      t.false(info.connect_urls!.includes(address(owner)), 'connect_urls without the dead node');
    }

    // M5.5: the next member of the preference list owns the destination with its replicated copy, headers intact.
    const [, after] = await openRaw(survivors[0]!);
    t.not(preferenceFromInfo(after, DEST)[0], owner.peerId);
    const got = await pullOne(await wireClient(survivors[0]!), 'g2');
    t.deepEqual(
      got.map((m) => [m.id, m.headers?.toString('latin1'), m.payload.toString()]),
      [['hs-1', HEADERS, 'order one']],
    );

    // OPS1.2: a leaving node tells its clients to go elsewhere, and names itself in neither list.
    const [leaving, staying] = survivors as [ClusterNode, ClusterNode];
    await leaving.kill('SIGTERM');
    const ldm = await nextInfo(watchers[0]!, (i) => i.ldm === true, 'ldm');
    t.is(ldm.swarmmq!.self, leaving.peerId);
    t.deepEqual(
      ldm.swarmmq!.members.map((m) => m.id),
      [staying.peerId],
    );
    t.is(ldm.swarmmq!.rf, 1);
    t.deepEqual(ldm.connect_urls, [address(staying)]);
    t.is(await leaving.proc.exited, 0);
    // And the node that stays drops it from its view.
    const alone = await nextInfo(watchers[1]!, (i) => i.swarmmq?.members.length === 1, 'one member');
    t.deepEqual(alone.swarmmq, {
      self: staying.peerId,
      rf: 1,
      vnodes: DEFAULT_VNODES,
      members: [{ id: staying.peerId, client: address(staying), mesh: alone.swarmmq!.members[0]!.mesh }],
    });
  },
);
