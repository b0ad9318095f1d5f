/**
 * Who may join the mesh (protocol/SECURITY.md section 1), against real node
 * processes and real outsider libp2p nodes made in this process with the
 * same stack as src/mesh/peer.ts:
 *
 * - SEC1.1 nodes with one cluster key form a cluster and carry a durable
 *   SEND from one to another; an outsider without the key, or with another
 *   key, cannot connect, open a stream or read a heartbeat, and a node
 *   process with another key never becomes a member;
 * - SEC1.2 with an allow-list, an outsider that holds the key but whose
 *   peer id is not listed is refused after noise, and the members neither
 *   dial it nor stop being a cluster;
 * - SEC1.2 every listed peer is let in, with `--allowed-peer` repeated;
 * - SEC1.3 every refusal is logged at warn with its reason, the remote
 *   address and a running count, also in a burst of connections from one
 *   host, and no log line holds the key in any encoding;
 * - SEC1.4 a node without a key says so at start.
 *
 * Every negative check is bounded by something the test sees happen: the
 * refusals the members log, and outsiders that keep trying for several
 * heartbeat intervals. The tests are serial: each runs two or three node
 * processes on a small machine.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { PrivateKey } from '@libp2p/interface';
import test, { type ExecutionContext } from 'ava';
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { PEER_KEY_FILE } from '../../src/mesh/peer.js';
import { ROUTE_PROTOCOL } from '../../src/mesh/routes.js';
import { DurableClient, type Delivery } from '../helpers/durable-client.js';
import { joinAndReadHeartbeat, nextSource, startOutsider, type Outsider } from '../helpers/outsider.js';
import { runCli, tempDir, type CliProcess } from '../helpers/process.js';
import { waitFor } from '../helpers/wire.js';

/** How long a node process may take to log `node started` (2 cores, other test files running). */
const NODE_START_TIMEOUT_MS = 30_000;
/** How long a fresh cluster may take until every node sees all the others. */
const FORM_TIMEOUT_MS = 30_000;
/** How long one refusal may take to be logged after the outsider's try ended. */
const REFUSAL_LOG_TIMEOUT_MS = 10_000;
/**
 * How long a member may hold a connection that never finishes its upgrade:
 * libp2p closes it after its inbound upgrade timeout (10 s), plus a margin.
 */
const UNFINISHED_UPGRADE_CLOSE_MS = 20_000;
/**
 * How long an outsider's dial may take when its pre-shared key differs (or it has
 * none): then each side reads the other's nonce through the wrong key, and when
 * the garbage happens to read as the start of a longer multistream message both
 * wait for more (seen here: one dial in three, until libp2p's 6 s address dial
 * timeout). The outsider gives up sooner; the member logs the refusal at once.
 */
const MISMATCHED_DIAL_TIMEOUT_MS = 2000;
/** How long any other outsider dial may take to fail (a loaded machine is slow). */
const DIAL_TIMEOUT_MS = 10_000;
/**
 * How long an outsider keeps trying while subscribed to the members topic:
 * three heartbeat intervals (DEFAULT_HEARTBEAT_INTERVAL_MS), so a member that
 * let it in would have published to it meanwhile.
 */
const OUTSIDER_WINDOW_MS = 3000;
/** Most tries in one window, whatever the timing. */
const MAX_TRIES = 30;
/** Stream protocols an outsider tries to open: a SwarmMQ service and gossipsub. */
const PROTOCOLS = [ROUTE_PROTOCOL, '/meshsub/1.1.0'];
/** pino's numeric levels. */
const INFO = 30;
const WARN = 40;
const REFUSED = 'mesh connection refused';
const NO_KEY_NOTICE = 'the mesh has no cluster key';

type LogLine = Record<string, unknown>;

// ---- node processes --------------------------------------------------------

interface Member {
  proc: CliProcess;
  /** Client port. */
  port: number;
  peerId: string;
  /** Mesh multiaddrs as logged in `mesh started` (with /p2p/<id>). */
  mesh: string[];
  started: LogLine;
}

interface MemberInit {
  dataDir: string;
  cluster: string;
  registryDir: string;
  /** 64 hex digits, or none. */
  clusterKey?: string;
  /** Given as SWARMMQ_ALLOWED_PEERS (comma-separated). */
  allowedPeers?: string[];
  logLevel?: string;
  /** More `start` flags. */
  flags?: string[];
}

/** One member of a fresh cluster with a fresh cluster key, its peer key given and its flags. */
async function keyedMember(
  t: ExecutionContext,
  peerKey: PrivateKey,
  flags: string[],
  logLevel?: string,
): Promise<{ m: Member; cluster: string; key: string }> {
  const root = tempDir(t);
  const cluster = `adm-${randomBytes(4).toString('hex')}`;
  const key = randomBytes(32).toString('hex');
  const m = await startMember(t, {
    dataDir: dataDirWithKey(path.join(root, 'node'), peerKey),
    cluster,
    registryDir: path.join(root, 'registry'),
    clusterKey: key,
    flags,
    ...(logLevel === undefined ? {} : { logLevel }),
  });
  return { m, cluster, key };
}

/** A data dir holding `key` as the node's peer key (src/mesh/peer.ts reads it), so its peer id is known before start. */
function dataDirWithKey(dataDir: string, key: PrivateKey): string {
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(path.join(dataDir, PEER_KEY_FILE), privateKeyToProtobuf(key), { mode: 0o600 });
  return dataDir;
}

/** One `swarmmq start` process on loopback, port 0, local discovery through `registryDir`. */
async function startMember(t: ExecutionContext, init: MemberInit): Promise<Member> {
  mkdirSync(init.dataDir, { recursive: true });
  const args = ['start', '--host', '127.0.0.1', '--port', '0', '--data-dir', init.dataDir];
  args.push('--cluster', init.cluster, '--registry-dir', init.registryDir);
  args.push('--log-level', init.logLevel ?? 'info', ...(init.flags ?? []));
  const env: Record<string, string> = {};
  if (init.clusterKey !== undefined) env.SWARMMQ_CLUSTER_KEY = init.clusterKey;
  if (init.allowedPeers !== undefined) env.SWARMMQ_ALLOWED_PEERS = init.allowedPeers.join(',');
  const proc = runCli(t, args, env);
  const started = await proc.waitForLog((l) => l.msg === 'mesh started', NODE_START_TIMEOUT_MS);
  const node = await proc.waitForLog((l) => l.msg === 'node started', NODE_START_TIMEOUT_MS);
  return {
    proc,
    port: Number(node.port),
    peerId: String(started.peerId),
    mesh: started.mesh as string[],
    started,
  };
}

interface Cluster {
  members: Member[];
  cluster: string;
  registryDir: string;
  root: string;
  /** 64 hex digits. */
  key: string;
}

/** `n` members with one fresh cluster key, started at once; resolves when every view has all of them. */
async function startKeyedCluster(t: ExecutionContext, n: number): Promise<Cluster> {
  const root = tempDir(t);
  const registryDir = path.join(root, 'registry');
  const cluster = `adm-${randomBytes(4).toString('hex')}`;
  const key = randomBytes(32).toString('hex');
  const members = await Promise.all(
    Array.from({ length: n }, (_, i) => {
      const dataDir = path.join(root, `node${i}`);
      return startMember(t, { dataDir, cluster, registryDir, clusterKey: key });
    }),
  );
  await waitForViews(members, n);
  return { members, cluster, registryDir, root, key };
}

function logLines(proc: CliProcess): LogLine[] {
  const out: LogLine[] = [];
  for (const l of proc.stdout) {
    try {
      out.push(JSON.parse(l) as LogLine);
    } catch {
      // not a JSON line
    }
  }
  return out;
}

/** Every `cluster view changed` line of a node, oldest first. */
function views(proc: CliProcess): { members: number; ids: string[] }[] {
  return logLines(proc)
    .filter((l) => l.msg === 'cluster view changed')
    .map((l) => ({ members: Number(l.members), ids: l.ids as string[] }));
}

/** The node's latest view (a view of itself before the first change is logged). */
function lastView(m: Member): string[] {
  return views(m.proc).at(-1)?.ids ?? [m.peerId];
}

async function waitForViews(members: readonly Member[], n: number): Promise<void> {
  const want = members.map((m) => m.peerId).sort();
  try {
    await waitFor(
      () => members.every((m) => lastView(m).length === n),
      `a view of ${n} members on every node`,
      FORM_TIMEOUT_MS,
    );
  } catch (err) {
    const sizes = members.map((m, i) => `node${i}:${lastView(m).length}`).join(' ');
    throw new Error(`${(err as Error).message} (latest views: ${sizes})`);
  }
  for (const m of members) {
    if (members.length === n && JSON.stringify([...lastView(m)].sort()) !== JSON.stringify(want))
      throw new Error(`view of ${m.peerId} is ${lastView(m).join(',')}, expected ${want.join(',')}`);
  }
}

/** The `mesh connection refused` lines of a node, oldest first. */
function refusals(proc: CliProcess, reason?: string): LogLine[] {
  return logLines(proc).filter((l) => l.msg === REFUSED && (reason === undefined || l.reason === reason));
}

/** SEC1.3: each refusal at warn, with the remote address, and a count per reason that goes 1, 2, 3, ... */
function assertRefusalLines(t: ExecutionContext, m: Member): void {
  const byReason = new Map<string, number[]>();
  for (const l of refusals(m.proc)) {
    t.is(l.level, WARN, `refusals are logged at warn: ${JSON.stringify(l)}`);
    t.regex(String(l.remote), /^\/ip4\/127\.\d+\.\d+\.\d+\/tcp\/\d+$/, 'the remote address is logged');
    const reason = String(l.reason);
    t.true(['handshake_failed', 'peer_not_allowed'].includes(reason), `reason ${reason}`);
    byReason.set(reason, [...(byReason.get(reason) ?? []), Number(l.refusedTotal)]);
  }
  for (const [reason, counts] of byReason) {
    t.deepEqual(
      counts,
      counts.map((_, i) => i + 1),
      `refusedTotal of ${reason} counts every refusal`,
    );
  }
}

/** No member's view, nor any `member up`, ever named `peerId`. */
function assertNeverMember(t: ExecutionContext, members: readonly Member[], peerId: string): void {
  for (const m of members) {
    t.false(
      views(m.proc).some((v) => v.ids.includes(peerId)),
      `${peerId} is in no view of ${m.peerId}`,
    );
    t.false(
      logLines(m.proc).some((l) => l.msg === 'member up' && l.member === peerId),
      `${peerId} never came up as a member of ${m.peerId}`,
    );
  }
}

/** SEC1.3: the key, in every encoding a careless log call could give it, is in no output of any node. */
function assertKeyNeverLogged(t: ExecutionContext, procs: readonly CliProcess[], hexKey: string): void {
  const key = Buffer.from(hexKey, 'hex');
  const forms = [
    hexKey.toLowerCase(),
    hexKey.toUpperCase(),
    key.toString('base64'),
    key.toString('base64').replace(/=+$/, ''),
    key.toString('base64url'),
    // A Buffer passed to pino is logged as {"type":"Buffer","data":[...]}.
    `[${[...key].join(',')}]`,
    // Part of the key is a leak too: its first and last 16 hex digits.
    hexKey.slice(0, 16),
    hexKey.slice(48),
  ];
  let lines = 0;
  for (const p of procs) {
    const all = `${p.stdout.join('\n')}\n${p.stderr}`;
    lines += p.stdout.length;
    for (const f of forms)
      t.false(all.includes(f), `the cluster key (as ${f.slice(0, 6)}...) is not in the output`);
  }
  t.true(lines > 0, 'there was output to search');
}

// ---- outsiders (test/helpers/outsider.ts) ----------------------------------

/** The refusals a node logged for connections from `source`. */
function refusalsFrom(proc: CliProcess, source: string): LogLine[] {
  return refusals(proc).filter((l) => String(l.remote).startsWith(`/ip4/${source}/tcp/`));
}

/**
 * One tryJoin on `m`: nothing may open, and `m` logs exactly one refusal per
 * attempt, from its source address, with `reason` and (after noise) the
 * outsider's peer id. Returns the outcomes.
 */
async function expectRefused(
  t: ExecutionContext,
  outsider: Outsider,
  m: Member,
  reason: string,
): Promise<string[]> {
  const timeoutMs = reason === 'handshake_failed' ? MISMATCHED_DIAL_TIMEOUT_MS : DIAL_TIMEOUT_MS;
  const attempts = await outsider.tryJoin(m.mesh[0]!, PROTOCOLS, timeoutMs);
  for (const a of attempts)
    t.false(a.outcome.startsWith('OPENED'), `${a.what} to ${m.peerId} from ${a.source}: ${a.outcome}`);
  await waitFor(
    () => attempts.every((a) => refusalsFrom(m.proc, a.source).length > 0),
    `a refusal logged by ${m.peerId} for each of ${attempts.map((a) => `${a.what} from ${a.source}`).join(', ')}`,
    REFUSAL_LOG_TIMEOUT_MS,
  );
  for (const a of attempts) {
    const lines = refusalsFrom(m.proc, a.source);
    t.is(lines.length, 1, `one refusal for the ${a.what} from ${a.source}`);
    t.is(lines[0]!.reason, reason, `the reason for the ${a.what} from ${a.source}`);
    t.is(
      lines[0]!.peer,
      reason === 'peer_not_allowed' ? outsider.peerId : undefined,
      'the peer id noise proved, and none before noise',
    );
  }
  return attempts.map((a) => `${a.what}: ${a.outcome}`);
}

/**
 * The outsider tries each member in turn, for at least OUTSIDER_WINDOW_MS and
 * at least once each, while subscribed to the members topic. Returns the
 * distinct outcomes (numbers masked).
 */
async function keepTrying(
  t: ExecutionContext,
  outsider: Outsider,
  members: readonly Member[],
  reason: string,
): Promise<string[]> {
  const seen = new Set<string>();
  const endMs = Date.now() + OUTSIDER_WINDOW_MS;
  for (let i = 0; i < MAX_TRIES && (i < members.length || Date.now() < endMs); i++) {
    for (const o of await expectRefused(t, outsider, members[i % members.length]!, reason))
      seen.add(o.replace(/\d+/g, 'N'));
  }
  return [...seen];
}

/** After its tries: no connection left, no heartbeat ever read. */
function assertOutsiderGotNothing(t: ExecutionContext, outsider: Outsider): void {
  t.deepEqual(
    outsider.node.getConnections().map((c) => c.remoteAddr.toString()),
    [],
    'the outsider holds no connection',
  );
  t.deepEqual(outsider.heartbeats, [], 'the outsider never read a membership heartbeat');
}

// ---- tests -----------------------------------------------------------------

test.serial(
  'SEC1.1 nodes with one cluster key form a cluster, carry a SEND, and let in an outsider with the key',
  async (t) => {
    t.timeout(90_000);
    const c = await startKeyedCluster(t, 3);
    const [a, b] = c.members as [Member, Member, Member];
    for (const m of c.members) {
      t.is(m.started.clusterKey, true, 'mesh started says the node has a cluster key');
      t.false(
        logLines(m.proc).some((l) => String(l.msg).startsWith(NO_KEY_NOTICE)),
        'no SEC1.4 notice with a key',
      );
    }

    // A durable SEND through a, pulled through b: the mesh carries frames under the key.
    const sender = await DurableClient.connect(a.port);
    t.teardown(() => sender.close());
    const payloads = Array.from({ length: 10 }, (_, i) => `keyed-${i}`);
    const replies = await Promise.all(payloads.map((p, i) => sender.send('sec1', p, { id: `k${i}` })));
    t.deepEqual(
      replies.filter((r) => !r.ok).map((r) => r.error),
      [],
      'every SEND is stored',
    );
    const puller = await DurableClient.connect(b.port);
    t.teardown(() => puller.close());
    const got: Delivery[] = [];
    const deadline = Date.now() + 30_000;
    while (got.length < payloads.length && Date.now() < deadline)
      got.push(...(await puller.pull('sec1', 'g1', 100, '2000')));
    t.deepEqual(
      got.map((m) => m.payload.toString()).sort(),
      [...payloads].sort(),
      'each pulled once through b',
    );

    // The control for the outsider tests below: an outsider WITH the key connects and
    // reads heartbeats, so their "no heartbeat" is not an artefact of how they listen.
    const insider = await startOutsider(t, c.cluster, c.key);
    await joinAndReadHeartbeat(insider, a.mesh[0]!);
    t.deepEqual(refusals(a.proc), [], 'a holder of the key is not refused');
    // It sends no heartbeat of its own, so it is no member.
    assertNeverMember(t, c.members, insider.peerId);
    assertKeyNeverLogged(
      t,
      c.members.map((m) => m.proc),
      c.key,
    );
  },
);

async function outsiderWithoutTheKey(t: ExecutionContext, outsiderKey: 'none' | 'wrong'): Promise<void> {
  t.timeout(90_000);
  const c = await startKeyedCluster(t, 2);
  const wrongKey = randomBytes(32).toString('hex');
  const outsider = await startOutsider(t, c.cluster, outsiderKey === 'none' ? undefined : wrongKey);
  const outcomes = await keepTrying(t, outsider, c.members, 'handshake_failed');
  t.log(`what the outsider saw: ${outcomes.join(' | ')}`);

  assertOutsiderGotNothing(t, outsider);
  assertNeverMember(t, c.members, outsider.peerId);
  for (const m of c.members) assertRefusalLines(t, m);
  // Still a cluster of the two.
  await waitForViews(c.members, 2);
  assertKeyNeverLogged(
    t,
    c.members.map((m) => m.proc),
    c.key,
  );
  if (outsiderKey === 'wrong')
    assertKeyNeverLogged(
      t,
      c.members.map((m) => m.proc),
      wrongKey,
    );
}

test.serial(
  'SEC1.1/SEC1.3 an outsider without a cluster key cannot connect, open a stream or read gossip',
  (t) => outsiderWithoutTheKey(t, 'none'),
);

test.serial(
  'SEC1.1/SEC1.3 an outsider with another cluster key cannot connect, open a stream or read gossip',
  (t) => outsiderWithoutTheKey(t, 'wrong'),
);

test.serial(
  'SEC1.2/SEC1.3 an outsider with the key but not on allowed_peers is refused after noise and never dialled',
  async (t) => {
    t.timeout(90_000);
    // The members' peer keys are made here, so their ids can be listed before they start.
    const keys = await Promise.all([generateKeyPair('Ed25519'), generateKeyPair('Ed25519')]);
    const ids = keys.map((k) => peerIdFromPrivateKey(k).toString());

    // The outsider exists first and is put in the cluster's registry, as if it were a
    // node of the cluster on this host: the members find each other there (and dial),
    // and must not dial the outsider they read there too.
    const cluster = `adm-${randomBytes(4).toString('hex')}`;
    const root = tempDir(t);
    const registryDir = path.join(root, 'registry');
    const key = randomBytes(32).toString('hex');
    const outsider = await startOutsider(t, cluster, key);
    mkdirSync(path.join(registryDir, cluster), { recursive: true });
    writeFileSync(
      path.join(registryDir, cluster, `${outsider.peerId}.json`),
      JSON.stringify({
        id: outsider.peerId,
        pid: process.pid,
        addrs: outsider.node.getMultiaddrs().map((a) => a.toString()),
      }),
    );

    const members = await Promise.all(
      keys.map(async (k, i) => {
        const dataDir = dataDirWithKey(path.join(root, `node${i}`), k);
        return startMember(t, { dataDir, cluster, registryDir, clusterKey: key, allowedPeers: ids });
      }),
    );
    t.deepEqual(
      members.map((m) => m.peerId),
      ids,
      'the nodes use the peer keys written for them',
    );
    t.deepEqual(
      members.map((m) => m.started.allowedPeers),
      [2, 2],
      'mesh started counts the allow-list',
    );
    // The members, both listed, form their cluster.
    await waitForViews(members, 2);

    const outcomes = await keepTrying(t, outsider, members, 'peer_not_allowed');
    t.log(`what the outsider saw: ${outcomes.join(' | ')}`);

    assertOutsiderGotNothing(t, outsider);
    assertNeverMember(t, members, outsider.peerId);
    for (const m of members) assertRefusalLines(t, m);
    // SEC1.2: the members read the outsider in the registry the whole time, and never dialled it.
    t.is(outsider.inboundTcp, 0, 'no member dialled a peer that is not allowed');
    await waitForViews(members, 2);
    assertKeyNeverLogged(
      t,
      members.map((m) => m.proc),
      key,
    );
  },
);

test.serial(
  'SEC1.1 a node process with another cluster key, in the same cluster and registry, never becomes a member',
  async (t) => {
    t.timeout(90_000);
    const c = await startKeyedCluster(t, 2);
    const before = c.members.map((m) => refusals(m.proc, 'handshake_failed').length);
    const wrongKey = randomBytes(32).toString('hex');
    const stranger = await startMember(t, {
      dataDir: path.join(c.root, 'stranger'),
      cluster: c.cluster,
      registryDir: c.registryDir,
      clusterKey: wrongKey,
    });

    // Both sides find each other in the registry and keep trying (discovery retries with
    // backoff): wait until each member has refused the stranger twice and the stranger
    // has refused the members' dials; only then are the views read once more.
    const startedAtMs = Date.now();
    await waitFor(
      () =>
        c.members.every((m, i) => refusals(m.proc, 'handshake_failed').length >= before[i]! + 2) &&
        refusals(stranger.proc, 'handshake_failed').length >= 2,
      'refusals on both sides of the wrong key',
      30_000,
    );
    t.log(`refused on both sides ${Date.now() - startedAtMs} ms after the stranger started`);
    assertNeverMember(t, c.members, stranger.peerId);
    t.deepEqual(
      views(stranger.proc).filter((v) => v.members > 1),
      [],
      'the stranger never saw a member either',
    );
    await waitForViews(c.members, 2);
    for (const m of [...c.members, stranger]) assertRefusalLines(t, m);
    const procs = [...c.members, stranger].map((m) => m.proc);
    assertKeyNeverLogged(t, procs, c.key);
    assertKeyNeverLogged(t, procs, wrongKey);
  },
);

test.serial('SEC1.4 a node without a cluster key says so at start, at info on loopback', async (t) => {
  t.timeout(60_000);
  const root = tempDir(t);
  const m = await startMember(t, {
    dataDir: path.join(root, 'node'),
    cluster: `adm-${randomBytes(4).toString('hex')}`,
    registryDir: path.join(root, 'registry'),
  });
  t.is(m.started.clusterKey, false, 'mesh started says the node has no cluster key');
  const notice = await m.proc.waitForLog((l) => String(l.msg).startsWith(NO_KEY_NOTICE), 10_000);
  t.is(notice.level, INFO, 'at info: the mesh binds loopback');
  t.is(notice.host, '127.0.0.1');
  t.is(logLines(m.proc).filter((l) => String(l.msg).startsWith(NO_KEY_NOTICE)).length, 1, 'said once');
});

test.serial('SEC1.3 no refusal, at any log level, shows the cluster key', async (t) => {
  t.timeout(90_000);
  // One node with a key and an allow-list of itself, logging at debug (whatever it logs
  // below info is searched too); every kind of refusal.
  const k = await generateKeyPair('Ed25519');
  const selfId = peerIdFromPrivateKey(k).toString();
  const { m, cluster, key } = await keyedMember(t, k, ['--allowed-peer', selfId], 'debug');
  for (const [outsiderKey, reason] of [
    [undefined, 'handshake_failed'],
    [randomBytes(32).toString('hex'), 'handshake_failed'],
    [key, 'peer_not_allowed'],
  ] as const) {
    const outsider = await startOutsider(t, cluster, outsiderKey);
    await expectRefused(t, outsider, m, reason);
  }
  assertRefusalLines(t, m);
  assertKeyNeverLogged(t, [m.proc], key);
});

/** Repeated `--allowed-peer` flags add up (commander keeps only the last flag of a plain option). */
test.serial('SEC1.2 --allowed-peer is repeatable: every listed peer is let in', async (t) => {
  t.timeout(60_000);
  const [self, listed] = await Promise.all([generateKeyPair('Ed25519'), generateKeyPair('Ed25519')]);
  const selfId = peerIdFromPrivateKey(self).toString();
  const listedId = peerIdFromPrivateKey(listed).toString();
  const { m, cluster, key } = await keyedMember(t, self, [
    '--allowed-peer',
    listedId,
    '--allowed-peer',
    selfId,
  ]);
  t.is(m.started.allowedPeers, 2, 'mesh started counts both --allowed-peer flags');

  // The first listed peer, holding the key, connects, opens gossip and reads heartbeats.
  const outsider = await startOutsider(t, cluster, key, listed);
  t.is(outsider.peerId, listedId);
  await joinAndReadHeartbeat(outsider, m.mesh[0]!);
  t.deepEqual(
    refusals(m.proc).map((l) => `${String(l.reason)} ${String(l.peer)}`),
    [],
    'a listed peer is not refused',
  );
});

/**
 * A burst within libp2p's own flood limits (SEC1.5: 20 new connections per
 * second per address, 32 in their handshake) reaches the admission check,
 * and each refusal is logged and counted. Past those limits libp2p drops
 * connections before any check, unlogged, so a flood cannot flood the log.
 */
test.serial(
  'SEC1.3 every connection of a burst from one host is logged and counted when refused',
  async (t) => {
    t.timeout(60_000);
    const BURST = 10;
    const root = tempDir(t);
    const m = await startMember(t, {
      dataDir: path.join(root, 'node'),
      cluster: `adm-${randomBytes(4).toString('hex')}`,
      registryDir: path.join(root, 'registry'),
      clusterKey: randomBytes(32).toString('hex'),
    });
    const port = Number(/\/tcp\/(\d+)/.exec(m.mesh[0]!)![1]);
    // Raw TCP, not libp2p at all: each connection sends a few random bytes, ends,
    // and is done when the member has closed it too (at once when the garbage fails
    // the handshake or the rate limit refuses it; else at libp2p's upgrade timeout).
    const source = nextSource();
    const closed = await Promise.all(
      Array.from(
        { length: BURST },
        () =>
          new Promise<boolean>((resolve) => {
            const s = net.connect({ host: '127.0.0.1', port, localAddress: source });
            s.setTimeout(UNFINISHED_UPGRADE_CLOSE_MS, () => {
              s.destroy();
              resolve(false);
            });
            s.on('connect', () => s.end(randomBytes(64)));
            s.resume(); // read to the end, or 'close' never comes
            s.on('error', () => undefined);
            s.on('close', () => resolve(true));
          }),
      ),
    );
    t.deepEqual(
      closed.filter((c) => !c),
      [],
      'the member closed every connection',
    );
    const logged = await waitFor(
      () => refusalsFrom(m.proc, source).length >= BURST,
      `${BURST} refusals logged`,
      REFUSAL_LOG_TIMEOUT_MS,
    ).catch(() => false);
    t.true(
      logged,
      `refusals logged for ${refusalsFrom(m.proc, source).length} of ${BURST} refused connections`,
    );
    assertRefusalLines(t, m);
  },
);
