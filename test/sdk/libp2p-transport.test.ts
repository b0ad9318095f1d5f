/**
 * Clients over libp2p (protocol/SECURITY.md section 6): in-process nodes
 * with their mesh on loopback, port 0 (no local discovery, no mDNS: nodes of
 * concurrent tests never meet), and clients through the SDK's libp2p
 * transport (src/sdk/transport/libp2p.ts) and the wire client's
 * connectStream:
 *
 * - SEC6.1 core pub/sub between a libp2p client and a TCP client on one
 *   node; durable SEND, PULL and ACK; /connz lists the libp2p client with its
 *   peer id (SEC6.4);
 * - SEC6.2 a node with TLS on its client port serves libp2p clients without
 *   TLS: their INFO has no tls_required;
 * - SEC6.3 credentials still apply (SEC2); the cluster key and allow-list
 *   (SEC1) admit clients as they admit nodes;
 * - SEC6.5 a reset stream closes its connection as `stream_reset`; a stop
 *   closes libp2p clients too (OPS1.2: they see `ldm` first);
 * - SEC6.6 `cluster.client_streams: false` serves no client stream; limits
 *   bound libp2p clients as TCP ones (control line, connections, slow
 *   consumer), and the node goes on serving.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { Stream } from '@libp2p/interface';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { parseAuthorization } from '../../src/auth/config.js';
import { hashApiKey, newApiKey } from '../../src/auth/credentials.js';
import type { NodeOptions } from '../../src/config/options.js';
import type { StreamSocket } from '../../src/mesh/stream-socket.js';
import {
  connect,
  connectStream,
  type Client,
  type StreamConnectOptions,
} from '../../src/sdk/wire/connection.js';
import { ClientError, ClientErrorCode } from '../../src/sdk/wire/errors.js';
import type { Msg, ServerInfo } from '../../src/sdk/wire/types.js';
import {
  libp2pTransport,
  openClientStream,
  type Libp2pTransport,
  type Libp2pTransportOptions,
} from '../../src/sdk/transport/libp2p.js';
import { getJson } from '../helpers/monitor.js';
import { CLI } from '../helpers/process.js';
import { startTestNode, waitFor, type TestNode } from '../helpers/wire.js';

/** A stream open plus handshake on a loaded 2-core machine with other test files running. */
const CONNECT_TIMEOUT_MS = 15_000;
/**
 * How long a refused client may try. A client with another cluster key can
 * wait for bytes that never come (test/security/mesh-admission.test.ts,
 * MISMATCHED_DIAL_TIMEOUT_MS), so the refusal is bounded by this deadline.
 */
const REFUSED_TIMEOUT_MS = 4_000;
const ANSWER_TIMEOUT_MS = 10_000;

interface MeshNode extends TestNode {
  /** The node's mesh multiaddr, with /p2p/<peer id>. */
  addr: string;
  peerId: string;
}

/** A node with its mesh on loopback port 0, alone: no local discovery, no mDNS. */
async function meshNode(t: ExecutionContext, overrides: Partial<NodeOptions> = {}): Promise<MeshNode> {
  const n = await startTestNode(t, {
    meshEnabled: true,
    meshPort: 0,
    localDiscovery: false,
    mdns: 'off',
    clusterName: `l2p-${randomBytes(4).toString('hex')}`,
    clientStreams: true,
    ...overrides,
  });
  const p2p = n.node.mesh!.p2p;
  const peerId = p2p.peerId.toString();
  const a = p2p.getMultiaddrs()[0]!.toString();
  return { ...n, peerId, addr: a.includes('/p2p/') ? a : `${a}/p2p/${peerId}` };
}

function transport(t: ExecutionContext, opts: Libp2pTransportOptions = {}): Libp2pTransport {
  const tr = libp2pTransport(opts);
  t.teardown(() => tr.close());
  return tr;
}

/** A wire client over a libp2p client stream (teardowns run in reverse: it closes before its node). */
async function libp2pClient(
  t: ExecutionContext,
  node: MeshNode,
  opts: { transport?: Libp2pTransportOptions; connect?: StreamConnectOptions; via?: Libp2pTransport } = {},
): Promise<Client> {
  const tr = opts.via ?? transport(t, opts.transport);
  const signal = AbortSignal.timeout(CONNECT_TIMEOUT_MS);
  const socket = await openClientStream(tr, node.addr, signal);
  const c = await connectStream(socket, node.addr, { ...opts.connect, signal });
  t.teardown(() => c.close());
  return c;
}

/** A raw client stream: bytes in, latin1 text out. */
async function rawStream(
  t: ExecutionContext,
  node: MeshNode,
): Promise<{ socket: StreamSocket; text: () => string; closed: Promise<void> }> {
  const tr = transport(t);
  const socket = await tr.openClientStream(node.addr, AbortSignal.timeout(CONNECT_TIMEOUT_MS));
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  t.teardown(() => socket.destroy());
  return { socket, text: () => text, closed };
}

/** Resolves with the first message on `subject`, after the subscription is in place at the node. */
async function nextMsg(c: Client, subject: string): Promise<{ got: Promise<string> }> {
  let resolve!: (s: string) => void;
  const got = new Promise<string>((r) => (resolve = r));
  c.subscribe(subject, (m: Msg) => resolve(m.payload.toString()), { max: 1 });
  await c.flush(AbortSignal.timeout(ANSWER_TIMEOUT_MS));
  return { got };
}

/** Rejects with the ClientError of `p`, failing the test when it resolves. */
async function refusal(t: ExecutionContext, p: Promise<unknown>): Promise<ClientError> {
  const err = await t.throwsAsync(p);
  t.true(err instanceof ClientError, String(err));
  return err as ClientError;
}

// ---- SEC6.1, SEC6.4 -----------------------------------------------------------

test('a libp2p client and a TCP client exchange core messages on one node; /connz lists the libp2p one (SEC6.1, SEC6.4)', async (t) => {
  const node = await meshNode(t);
  const tcpClient = await connect({
    host: '127.0.0.1',
    port: node.port,
    signal: AbortSignal.timeout(CONNECT_TIMEOUT_MS),
  });
  t.teardown(() => tcpClient.close());
  const tr = transport(t);
  const p2pClient = await libp2pClient(t, node, { via: tr, connect: { name: 'over-libp2p' } });
  t.is(p2pClient.info.server_id, tcpClient.info.server_id);
  t.is(p2pClient.info.tls_required, undefined);

  const toP2p = await nextMsg(p2pClient, 'greet.p2p');
  tcpClient.publish('greet.p2p', Buffer.from('from tcp'));
  t.is(await toP2p.got, 'from tcp');
  const toTcp = await nextMsg(tcpClient, 'greet.tcp');
  p2pClient.publish('greet.tcp', Buffer.from('from libp2p'));
  t.is(await toTcp.got, 'from libp2p');

  // Request/reply across the two transports.
  tcpClient.subscribe('svc.echo', (m) =>
    tcpClient.publish(m.reply!, Buffer.from(`echo ${m.payload.toString()}`)),
  );
  await tcpClient.flush();
  const reply = await p2pClient.request('svc.echo', Buffer.from('hi'), {
    signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS),
  });
  t.is(reply.payload.toString(), 'echo hi');

  const { body } = await getJson(node.node.monitor!.port, '/connz');
  const conns = body.connections as Record<string, unknown>[];
  t.is(conns.length, 2);
  const p2p = conns.find((c) => c.name === 'over-libp2p');
  t.truthy(p2p, JSON.stringify(conns));
  const clientId = await tr.peerId();
  t.is(p2p!.peer_id, clientId);
  t.is(p2p!.ip, '127.0.0.1');
  t.regex(String(p2p!.multiaddr), /^\/ip4\/127\.0\.0\.1\/tcp\/\d+$/);
  t.true((p2p!.in_msgs as number) >= 1 && (p2p!.out_msgs as number) >= 1);
  const tcp = conns.find((c) => c.name !== 'over-libp2p')!;
  t.is(tcp.peer_id, undefined);
  // The connection logs name the client by its multiaddr and peer id.
  t.true(node.logs.some((l) => l.includes('"connection accepted"') && l.includes(`/p2p/${clientId}`)));
});

test('durable SEND, PULL and ACK over libp2p (SEC6.1)', async (t) => {
  const node = await meshNode(t);
  const c = await libp2pClient(t, node);
  const stored = await c.send(
    'jobs',
    Buffer.from('job 1'),
    { id: 'j1' },
    AbortSignal.timeout(ANSWER_TIMEOUT_MS),
  );
  t.is(stored.destination, 'jobs');
  t.is(stored.id, 'j1');
  const got = await c.pull('jobs', 'workers', { batch: 10 }, AbortSignal.timeout(ANSWER_TIMEOUT_MS));
  t.is(got.length, 1);
  t.is(Buffer.from(got[0]!.payload).toString(), 'job 1');
  c.settle('ACK', got[0]!.handle);
  await c.flush(AbortSignal.timeout(ANSWER_TIMEOUT_MS));
  const again = await c.pull(
    'jobs',
    'workers',
    { batch: 10, waitMs: 0 },
    AbortSignal.timeout(ANSWER_TIMEOUT_MS),
  );
  t.is(again.length, 0);
});

// ---- SEC6.2 ----------------------------------------------------------------------

test('a node with TLS on its client port serves libp2p clients without TLS (SEC6.2)', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'swarmmq-l2p-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await promisify(execFile)(process.execPath, [CLI, 'gen', 'certs', '--out', dir], { timeout: 30_000 });
  const node = await meshNode(t, {
    tlsCertFile: path.join(dir, 'server.pem'),
    tlsKeyFile: path.join(dir, 'server-key.pem'),
  });
  const c = await libp2pClient(t, node);
  t.is(c.info.tls_required, undefined);
  t.is(c.info.server_id, node.node.server.serverId);
  const m = await nextMsg(c, 'secure');
  c.publish('secure', Buffer.from('no tls needed'));
  t.is(await m.got, 'no tls needed');
  // TCP clients of the same node are still asked for TLS.
  const tcp = await refusal(
    t,
    connect({ host: '127.0.0.1', port: node.port, signal: AbortSignal.timeout(CONNECT_TIMEOUT_MS) }),
  );
  t.is(tcp.code, ClientErrorCode.Tls);
});

// ---- SEC6.3: credentials, cluster key, allow-list -----------------------------------

test('credentials apply over libp2p: a bad or missing token is refused, a good one accepted (SEC6.3, SEC2.3)', async (t) => {
  const key = newApiKey();
  const node = await meshNode(t, {
    auth: parseAuthorization({ keys: [{ name: 'app', key_hash: hashApiKey(key) }] }),
  });
  const tr = transport(t);
  for (const token of [undefined, newApiKey()]) {
    const err = await refusal(
      t,
      libp2pClient(t, node, { via: tr, connect: token === undefined ? {} : { token } }),
    );
    t.is(err.code, ClientErrorCode.Server);
    t.is(err.serverText, 'Authorization Violation');
  }
  const c = await libp2pClient(t, node, { via: tr, connect: { token: key } });
  t.true(c.info.auth_required);
  await c.flush();
  await waitFor(() => node.node.server.stats().closes.authorization_violation === 2, 'two refusals counted');
});

test('a node with a cluster key refuses clients without it or with another one (SEC6.3, SEC1.1)', async (t) => {
  const clusterKey = randomBytes(32).toString('hex');
  const node = await meshNode(t, { clusterKey: Buffer.from(clusterKey, 'hex') });
  for (const opts of [{}, { clusterKey: randomBytes(32).toString('hex') }]) {
    const err = await refusal(
      t,
      transport(t, opts).openClientStream(node.addr, AbortSignal.timeout(REFUSED_TIMEOUT_MS)),
    );
    t.true(err.code === ClientErrorCode.Connect || err.code === ClientErrorCode.Timeout, err.message);
  }
  t.is(node.node.server.stats().totalConnections, 0);
  const c = await libp2pClient(t, node, { transport: { clusterKey } });
  await c.flush();
  // The key is never in a message.
  t.false(node.logs.some((l) => l.includes(clusterKey)));
});

test('with allowed_peers, an unlisted client is refused and a listed one accepted (SEC6.3, SEC1.2)', async (t) => {
  const clusterKey = randomBytes(32).toString('hex');
  const listed = await generateKeyPair('Ed25519');
  const node = await meshNode(t, {
    clusterKey: Buffer.from(clusterKey, 'hex'),
    allowedPeers: [peerIdFromPrivateKey(listed).toString()],
  });
  const stranger = transport(t, { clusterKey });
  const strangerId = await stranger.peerId();
  const err = await refusal(t, stranger.openClientStream(node.addr, AbortSignal.timeout(REFUSED_TIMEOUT_MS)));
  t.true(err.code === ClientErrorCode.Connect || err.code === ClientErrorCode.Timeout, err.message);
  // SEC1.3: refused and logged as a node would be.
  await waitFor(
    () => node.logs.some((l) => l.includes('"peer_not_allowed"') && l.includes(strangerId)),
    'the refusal logged',
  );
  t.is(node.node.server.stats().totalConnections, 0);
  const c = await libp2pClient(t, node, { transport: { clusterKey, privateKey: listed } });
  await c.flush();
});

// ---- SEC6.5: reset and stop -----------------------------------------------------------

test('a reset stream closes its connection as stream_reset; the node goes on (SEC6.5)', async (t) => {
  const node = await meshNode(t);
  const raw = await rawStream(t, node);
  await waitFor(() => raw.text().startsWith('INFO '), 'INFO on the raw stream');
  raw.socket.destroy();
  await waitFor(() => node.node.server.stats().closes.stream_reset === 1, 'the reset counted');
  t.is(node.node.server.connections.size, 0);
  const c = await libp2pClient(t, node);
  await c.flush();
});

test('a graceful stop tells libp2p clients (ldm) and closes them (SEC6.5, OPS1.2)', async (t) => {
  const node = await meshNode(t);
  const c = await libp2pClient(t, node);
  const infos: ServerInfo[] = [];
  c.onInfo = (info) => infos.push(info);
  await node.node.stop({ graceful: true, leaveTimeoutMs: 1000 });
  const why = await c.closed;
  t.is(why?.code, ClientErrorCode.Closed);
  t.true(infos.some((i) => i.ldm === true));
  t.is(node.node.server.stats().closes.server_shutdown, 1);
});

test('a paused connection stops reading its stream: the sender waits, nothing is lost (SEC6.5, SEC2.4)', async (t) => {
  const node = await meshNode(t);
  const raw = await rawStream(t, node);
  raw.socket.write('CONNECT {"verbose":false}\r\nPING\r\n');
  await waitFor(() => raw.text().includes('PONG'), 'the first PONG');
  const conn = [...node.node.server.connections.values()][0]!;
  const nodeStream = (conn.socket as unknown as { stream: Stream }).stream;
  const clientStream = (raw.socket as unknown as { stream: Stream }).stream;
  // As a password check or a stopping node does (SEC2.4, OPS1.2).
  conn.pauseInput();
  const before = conn.bytesIn;
  const count = 4096;
  const one = `PUB load 1000\r\n${'p'.repeat(1000)}\r\n`;
  raw.socket.write(`${one.repeat(count)}PING\r\n`);
  // yamux grants no more window: what the node holds is one window, the rest waits at the client.
  await waitFor(() => nodeStream.readBufferLength >= 128 * 1024, 'a full window at the node');
  t.is(conn.bytesIn, before);
  t.true(nodeStream.readBufferLength <= 1024 * 1024, String(nodeStream.readBufferLength));
  t.true(clientStream.writeBufferLength >= 2 * 1024 * 1024, String(clientStream.writeBufferLength));
  conn.resumeInput();
  await waitFor(() => raw.text().endsWith('PONG\r\nPONG\r\n'), 'the PONG after every PUB', ANSWER_TIMEOUT_MS);
  t.is(conn.msgsIn, count);
});

// ---- SEC6.6: off, and limits ---------------------------------------------------------

test('a stream paused after load grew its window holds at most that window, and goes on (SEC6.5)', async (t) => {
  const node = await meshNode(t);
  const raw = await rawStream(t, node);
  raw.socket.write('CONNECT {"verbose":false}\r\nPING\r\n');
  await waitFor(() => raw.text().includes('PONG'), 'the first PONG');
  const conn = [...node.node.server.connections.values()][0]!;
  const nodeStream = (conn.socket as unknown as { stream: Stream & { recvWindow: number } }).stream;
  // Load first, as a busy client makes it: yamux doubles the stream's window while data flows.
  const burst = `PUB load 16000\r\n${'p'.repeat(16000)}\r\n`.repeat(64);
  for (let i = 0; i < 64; i++) {
    if (!raw.socket.write(burst)) await new Promise((resolve) => raw.socket.once('drain', resolve));
  }
  raw.socket.write('PING\r\n');
  await waitFor(() => raw.text().split('PONG').length === 3, 'the PONG after the load', ANSWER_TIMEOUT_MS);
  t.log(`window after the load: ${nodeStream.recvWindow} bytes`);
  // Then a pause (D3.6, SEC2.4, OPS1.2) while the client keeps writing: the node takes one window,
  // below the 4 MiB libp2p lets a stream hold unread (16 MiB windows overflowed it and aborted).
  conn.pauseInput();
  for (let i = 0; i < 24; i++) raw.socket.write(burst);
  await waitFor(
    () => conn.closed || nodeStream.readBufferLength >= nodeStream.recvWindow - 64 * 1024,
    'the window to fill, or the stream to fail',
  );
  t.false(conn.closed, `closed as ${String(conn.closeReason)}`);
  t.true(nodeStream.readBufferLength <= 4 * 1024 * 1024, String(nodeStream.readBufferLength));
  conn.resumeInput();
  raw.socket.write('PING\r\n');
  await waitFor(() => raw.text().split('PONG').length === 4, 'the PONG after the rest', ANSWER_TIMEOUT_MS);
  t.is(conn.msgsIn, 88 * 64);
});

test('cluster.client_streams false serves no client stream (SEC6.6)', async (t) => {
  const node = await meshNode(t, { clientStreams: false });
  const err = await refusal(
    t,
    transport(t).openClientStream(node.addr, AbortSignal.timeout(CONNECT_TIMEOUT_MS)),
  );
  t.is(err.code, ClientErrorCode.Connect);
  t.regex(err.message, /does not serve clients over libp2p/);
  t.true(node.logs.some((l) => l.includes('"mesh started"') && l.includes('"clientStreams":false')));
});

test('limits bound libp2p clients as TCP ones: control line, connections (SEC6.6, C1.5, C6.10)', async (t) => {
  const node = await meshNode(t, { maxConnections: 2 });
  const tr = transport(t);
  const first = await libp2pClient(t, node, { via: tr });
  // A control line over the limit: -ERR and close, before the rest is buffered.
  const raw = await rawStream(t, node);
  raw.socket.write(`PUB ${'x'.repeat(5000)}`);
  await raw.closed;
  t.regex(raw.text(), /-ERR 'maximum control line exceeded'\r\n$/);
  t.is(node.node.server.stats().closes.max_control_line_exceeded, 1);
  // Two connections at most, over both transports.
  await libp2pClient(t, node, { via: tr });
  const third = await rawStream(t, node);
  await third.closed;
  t.regex(third.text(), /^INFO .*\r\n-ERR 'maximum connections exceeded'\r\n$/);
  // The node goes on serving the clients it has.
  const m = await nextMsg(first, 'still');
  first.publish('still', Buffer.from('here'));
  t.is(await m.got, 'here');
});

test('new streams per second are counted by the client address, as TCP connections (SEC6.6, SEC5.2)', async (t) => {
  const node = await meshNode(t, { maxConnectionRate: 1 });
  const tr = transport(t);
  // Streams of one libp2p connection, opened together: all within the bucket's one second.
  const opened = await Promise.all(
    [1, 2, 3, 4].map(() => tr.openClientStream(node.addr, AbortSignal.timeout(CONNECT_TIMEOUT_MS))),
  );
  const texts = opened.map(() => '');
  opened.forEach((s, i) => {
    t.teardown(() => s.destroy());
    s.on('data', (d: Buffer) => (texts[i] += d.toString('latin1')));
  });
  await waitFor(() => texts.every((x) => x.startsWith('INFO ')), 'INFO on every stream');
  await waitFor(() => texts.some((x) => x.includes("-ERR 'maximum connection rate exceeded'")), 'a refusal');
  t.true((node.node.server.stats().closes.connection_rate_exceeded ?? 0) >= 1);
});

test('a libp2p client that stops reading is cut off as a slow consumer; the node goes on (SEC6.6, C6.9)', async (t) => {
  const node = await meshNode(t, { maxPendingBytes: 64 * 1024 });
  const publisher = await connect({
    host: '127.0.0.1',
    port: node.port,
    signal: AbortSignal.timeout(CONNECT_TIMEOUT_MS),
  });
  t.teardown(() => publisher.close());
  const raw = await rawStream(t, node);
  raw.socket.write('CONNECT {"verbose":false}\r\nSUB flood 1\r\nPING\r\n');
  await waitFor(() => raw.text().includes('PONG'), 'the subscription in place');
  // Stops reading: yamux stops granting window, the node's stream fills, its backlog grows.
  raw.socket.pause();
  const payload = Buffer.alloc(1024, 'f');
  for (let i = 0; i < 4096 && node.node.server.stats().closes.slow_consumer === undefined; i++) {
    if (!publisher.publish('flood', payload)) await publisher.drain();
    if (i % 64 === 63) await publisher.flush(AbortSignal.timeout(ANSWER_TIMEOUT_MS));
  }
  await waitFor(() => node.node.server.stats().closes.slow_consumer === 1, 'the slow consumer cut off');
  await publisher.flush(AbortSignal.timeout(ANSWER_TIMEOUT_MS));
  t.is(node.node.server.connections.size, 1);
});
