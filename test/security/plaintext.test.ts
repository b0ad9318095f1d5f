/**
 * No plaintext payload is readable on the wire between nodes or on disk:
 * every node-to-node byte goes through noise (protocol/MESH.md, first
 * paragraph) and every stored payload and header block is sealed with
 * AES-256-GCM (protocol/STORAGE.md section 3).
 *
 * Three nodes with RF 3, so every node stores a copy. Random markers travel
 * in payloads and header values: SENDs and a stock-client HPUB to a
 * destination through a node that is not its owner (forwarded, M4.5, and
 * replicated, M5.2), a core message from a publisher on that node to a
 * subscriber on another (M6.1), and a PULL through a non-owner. tcpdump
 * records the mesh ports in one file and the publishing node's client port
 * in another; both files, and every file in every data dir, are searched for
 * the markers as ASCII, hex and base64, in the raw bytes and in each TCP
 * stream reassembled (a marker cut across two segments is found too).
 *
 * Positive controls, so a pass means something: the client capture holds the
 * markers (clients speak plaintext, so the search works on these captures);
 * the mesh capture holds a connection per pair of nodes and at least the
 * bytes the payloads must cross the mesh with; every socket of the nodes is
 * on a client port or the mesh (no other path between them); tcpdump dropped
 * nothing and had written out everything sent before it was stopped; the
 * messages are pulled back with their markers; and each message's id, clear
 * metadata by design (STORAGE.md S3.4), is found in every node's data dir
 * (every node stored a copy, and the disk search reads where records land).
 * The payload and header markers go nowhere that is clear by design: not in
 * ids, producer (CONNECT name), destination, subject or group names.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { headers } from '@nats-io/transport-node';
import {
  CAPTURE_TIMEOUT_MS,
  Capture,
  captureHaystacks,
  filesUnder,
  needles,
  nodeSockets,
  occurrences,
  readPcap,
  sentinelPort,
} from '../helpers/capture.js';
import { natsClient, startCluster, type ClusterNode } from '../helpers/cluster.js';
import { DurableClient, type Delivery } from '../helpers/durable-client.js';
import { tempDir } from '../helpers/process.js';
import { RawClient, waitFor } from '../helpers/wire.js';

const te = new TextEncoder();
const td = new TextDecoder();

/** SENDs carrying the payload marker; with their filler they must cross the mesh several times (below). */
const SEND_COUNT = 16;
/** Filler after the marker in each SEND payload, so the payloads dominate the mesh bytes. */
const FILLER_BYTES = 4096;
/** How long a node may take to stop on SIGTERM before it is killed. */
const STOP_TIMEOUT_MS = 20_000;

/** INFO lines the node re-sends on membership changes (CLIENT.md), skipped before an answer. */
const INFOS = '(?:INFO [^\\r\\n]*\\r\\n)*';

/** The mesh port a node logged in `mesh started` (MESH.md M1.2: random when the client port is 0). */
function meshPortOf(node: ClusterNode): number {
  const line = node.proc.stdout.find((l) => l.includes('"mesh started"'));
  const m = line === undefined ? null : /\/tcp\/(\d+)\//.exec(line);
  if (m === null) throw new Error(`node${node.index} logged no mesh address: ${line}`);
  return Number(m[1]);
}

/** The owner's peer id from OWNER (M3.3). */
async function ownerOf(t: ExecutionContext, node: ClusterNode, dest: string): Promise<string> {
  const [c] = await RawClient.open(t, node.port);
  c.send(`OWNER ${dest}\r\n`);
  const m = await c.expect(new RegExp(`^${INFOS}\\+OWNER ${dest.replace(/\./g, '\\.')} (\\S+) `), 15_000);
  c.socket.destroy();
  return m[1]!;
}

async function durable(t: ExecutionContext, node: ClusterNode): Promise<DurableClient> {
  const c = await DurableClient.connect(node.port);
  t.teardown(() => c.close());
  return c;
}

/** SIGTERM (a clean stop: everything on disk), SIGKILL past the deadline. */
async function stopNode(node: ClusterNode): Promise<void> {
  const timer = setTimeout(() => node.proc.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await node.kill('SIGTERM');
  clearTimeout(timer);
}

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');

test('no marker from a payload or header value is on the wire between nodes or on disk', async (t) => {
  t.timeout(90_000);
  const startedAt = performance.now();
  const { nodes } = await startCluster(t, 3, { flags: ['--replication-factor', '3'] });
  const dest = `sec.${hex(4)}`;
  const owner = await ownerOf(t, nodes[0]!, dest);
  const [a, b] = nodes.filter((n) => n.peerId !== owner) as [ClusterNode, ClusterNode];
  const o = nodes.find((n) => n.peerId === owner)!;
  const meshPorts = nodes.map(meshPortOf);
  t.log(
    `owner node${o.index}; publisher node${a.index} (client ${a.port}), subscriber and puller node${b.index}`,
  );
  t.log(`mesh ports ${meshPorts.join(' ')}`);

  // Set up outside the capture: the destination (its catalog entry reaching A, M3.4) and B's interest (M6.1).
  const sender = await durable(t, a);
  t.regex(await sender.create(dest), /^(CREATED|EXISTS)$/);
  const na = await natsClient(t, a);
  const nb = await natsClient(t, b);
  await waitFor(
    async () => {
      try {
        const r = await na.request(dest, te.encode('probe'), { timeout: 2000 });
        return (JSON.parse(td.decode(r.data)) as { stream?: string }).stream === dest;
      } catch {
        return false;
      }
    },
    `a stock PUB to ${dest} through node${a.index} to be stored`,
    30_000,
  );
  const core: { data: string; secret: string | undefined }[] = [];
  let probed = false;
  nb.subscribe('sec.core.>', {
    callback: (_e, m) => {
      if (m.subject === 'sec.core.probe') probed = true;
      else core.push({ data: td.decode(m.data), secret: m.headers?.get('X-Secret') });
    },
  });
  await nb.flush();
  await waitFor(
    () => {
      na.publish('sec.core.probe');
      return probed;
    },
    `interest in sec.core.> to reach node${a.index}`,
    30_000,
  );

  // The markers. Ids are clear metadata on disk by design (S3.4): the id marker is the disk's positive control.
  const payloadMarker = hex(12);
  const headerMarker = hex(12);
  const idMarker = hex(12);
  const secret = [...needles('payload marker', payloadMarker), ...needles('header marker', headerMarker)];
  const idNeedles = needles('id marker', idMarker);

  const dir = tempDir(t);
  const sentinel = await sentinelPort(t);
  const meshCapture = await Capture.start(t, path.join(dir, 'mesh.pcap'), [...meshPorts, sentinel.port]);
  const clientCapture = await Capture.start(t, path.join(dir, 'client.pcap'), [a.port, sentinel.port]);

  // Durable sends through a non-owner: forwarded to the owner and replicated to both others.
  const payload = (k: number): string => `secret ${payloadMarker} #${k} ${'f'.repeat(FILLER_BYTES)}`;
  const replies = await Promise.all(
    Array.from({ length: SEND_COUNT }, (_, k) => sender.send(dest, payload(k), { id: `${idMarker}-s${k}` })),
  );
  t.deepEqual(
    replies.filter((r) => !r.ok).map((r) => r.error),
    [],
    'every SEND is stored (+STORED)',
  );
  const sentPayloadBytes = SEND_COUNT * Buffer.byteLength(payload(0));

  // A stock HPUB to the destination: stored, with the header marker in a header value.
  const h = headers();
  h.set('Nats-Msg-Id', `${idMarker}-h`);
  h.set('X-Secret', headerMarker);
  const stored = await na.request(dest, te.encode(`hpub ${payloadMarker}`), { headers: h, timeout: 15_000 });
  t.is((JSON.parse(td.decode(stored.data)) as { stream?: string }).stream, dest, td.decode(stored.data));

  // Core pub/sub from A to B, routed over the mesh.
  const ch = headers();
  ch.set('X-Secret', headerMarker);
  na.publish('sec.core.data', te.encode(`core ${payloadMarker}`), { headers: ch });
  await waitFor(() => core.length > 0, `the core message at node${b.index}`, 30_000);
  t.deepEqual(core, [{ data: `core ${payloadMarker}`, secret: headerMarker }], 'B got the core message');

  // Positive control: the destination holds the messages; pulled through B, they cross the mesh again.
  const puller = await durable(t, b);
  const got = new Map<string, Delivery>();
  const expectedIds = [...Array.from({ length: SEND_COUNT }, (_, k) => `${idMarker}-s${k}`), `${idMarker}-h`];
  await waitFor(
    async () => {
      for (const m of await puller.pull(dest, 'g1', 1000, '1000')) got.set(m.id, m);
      return expectedIds.every((id) => got.has(id));
    },
    'every marked message pulled back',
    30_000,
  );
  for (let k = 0; k < SEND_COUNT; k++) t.is(got.get(`${idMarker}-s${k}`)?.payload.toString(), payload(k));
  const hpub = got.get(`${idMarker}-h`);
  t.is(hpub?.payload.toString(), `hpub ${payloadMarker}`);
  t.true(hpub?.headers.includes(`X-Secret: ${headerMarker}`), hpub?.headers.toString());

  // Every socket of the nodes is on a client port or the mesh: no other path between them to capture.
  // The monitoring ports serve HTTP to operators, never node to node: they count with the client ports.
  const monitorPorts = await Promise.all(
    nodes.map(async (n) => {
      const started = await n.proc.waitForLog((l) => l.msg === 'node started');
      return Number(String(started.monitor).split(':').pop());
    }),
  );
  const sockets = nodeSockets(
    nodes.map((n) => n.proc.child.pid!),
    [...nodes.map((n) => n.port), ...monitorPorts],
    meshPorts,
  );
  t.true(
    sockets.mesh.filter((l) => l.includes(' ESTAB ')).length >= 6,
    `both ends of a mesh connection per pair of nodes: ${sockets.mesh.join('\n')}`,
  );
  t.deepEqual(sockets.outside, [], 'node sockets that are neither client nor mesh');
  t.log(`node sockets: ${sockets.all.length}, ${sockets.mesh.length} on the mesh`);

  // Everything above is in both files once the sentinel, sent after it, is.
  const sentinelText = `sentinel-${hex(12)}`;
  sentinel.send(sentinelText);
  for (const cap of [meshCapture, clientCapture]) {
    await waitFor(
      () => readFileSync(cap.file).includes(sentinelText),
      `the sentinel in ${path.basename(cap.file)}`,
      CAPTURE_TIMEOUT_MS,
    );
  }
  const meshStats = await meshCapture.stop();
  const clientStats = await clientCapture.stop();
  t.is(meshStats.droppedByKernel, 0, 'the mesh capture lost nothing');
  t.is(clientStats.droppedByKernel, 0, 'the client capture lost nothing');

  // Positive control for the search: clients speak plaintext, so the client capture has every marker.
  const clientHaystacks = captureHaystacks(clientCapture.file, sentinel.port);
  const inClient = clientHaystacks.flatMap((x) => occurrences(x.where, x.bytes, [...secret, ...idNeedles]));
  for (const [name, marker] of [
    ['payload marker', payloadMarker],
    ['header marker', headerMarker],
    ['id marker', idMarker],
  ]) {
    t.true(
      inClient.some((f) => f.startsWith(`${name} as ascii in client.pcap stream`)),
      `${name} ${marker} in the client capture (${clientStats.captured} packets)`,
    );
  }

  // Positive control for the mesh capture: data on a connection per pair of nodes, and at least the bytes
  // the payloads must cross the mesh with: A to the owner (forward, M4.5), the owner to A and B (replicas,
  // M5.2), the owner to B (the pull). Not every mesh port: the dialling end of a connection is ephemeral.
  const meshFile = readFileSync(meshCapture.file);
  const mesh = readPcap(meshFile);
  const meshSegments = mesh.segments.filter(
    (s) => s.srcPort !== sentinel.port && s.dstPort !== sentinel.port,
  );
  const meshBytes = meshSegments.reduce((sum, s) => sum + s.payload.length, 0);
  const connections = new Set(
    meshSegments
      .filter((s) => s.payload.length > 0)
      .map((s) => [`${s.src}:${s.srcPort}`, `${s.dst}:${s.dstPort}`].sort().join(' ')),
  );
  t.true(
    connections.size >= 3,
    `data on ${connections.size} mesh connections, one per pair of nodes expected`,
  );
  t.true(
    meshBytes >= 4 * sentPayloadBytes,
    `${meshBytes} TCP payload bytes on the mesh ports, at least 4 x ${sentPayloadBytes} expected`,
  );
  t.log(
    `mesh capture: ${mesh.packets} packets, ${meshFile.length} bytes in the file, ${meshBytes} TCP payload bytes ` +
      `(${(meshBytes / sentPayloadBytes).toFixed(1)} x the SEND payloads); client capture: ${clientStats.captured} packets`,
  );

  // The claim on the wire.
  const onMesh = captureHaystacks(meshCapture.file, sentinel.port).flatMap((x) =>
    occurrences(x.where, x.bytes, [...secret, ...idNeedles]),
  );
  t.deepEqual(onMesh, [], 'no marker in any encoding on the mesh ports');

  // The claim on disk, every file of every node after a clean stop.
  await Promise.all(nodes.map(stopNode));
  for (const node of nodes) {
    const files = filesUnder(node.dataDir);
    let total = 0;
    const found: string[] = [];
    const ids: string[] = [];
    for (const f of files) {
      const bytes = readFileSync(f);
      total += bytes.length;
      const where = path.relative(node.dataDir, f);
      found.push(...occurrences(`node${node.index}/${where}`, bytes, secret));
      ids.push(...occurrences(`node${node.index}/${where}`, bytes, idNeedles.slice(0, 1)));
    }
    t.log(
      `node${node.index}: ${files.length} files, ${total} bytes: ${files.map((f) => path.basename(f)).join(' ')}`,
    );
    t.deepEqual(found, [], `no payload or header marker in node${node.index}'s data dir`);
    t.true(ids.length > 0, `the id marker (clear metadata) in node${node.index}'s data dir: it holds a copy`);
    t.log(`node${node.index}: the id marker (clear metadata) ${ids.length} times`);
  }
  t.log(`run time ${((performance.now() - startedAt) / 1000).toFixed(1)} s`);
});
