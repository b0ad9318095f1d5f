/**
 * TLS on the client port (protocol/SECURITY.md SEC4.1-SEC4.3): INFO in
 * plaintext with `tls_required`, then a TLS 1.3 handshake started by the
 * client, as nats-server 2.9 does it; plaintext, old-TLS, untrusting, silent
 * and (with mutual TLS) certificate-less clients are refused; credentials
 * (SEC2) apply on top; a bad TLS configuration names its key (exit 2).
 *
 * The certificates are made once for the file by the real CLI (`swarmmq gen
 * certs`, SEC4.3), plus a second, unrelated set that stands for "some other
 * CA": a client that trusts it does not trust the node, and a client
 * certificate it signed is refused by a node that verifies against the first.
 */
import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { parse as parseYaml } from 'yaml';
import { parseAuthorization } from '../../src/auth/config.js';
import { hashApiKey, newApiKey } from '../../src/auth/credentials.js';
import { resolveOptions, type NodeOptions } from '../../src/config/options.js';
import { ConfigError } from '../../src/errors.js';
import { CLI, runStandalone, tempDir } from '../helpers/process.js';
import { QUIET, RawClient, startTestNode, waitFor } from '../helpers/wire.js';

const te = new TextEncoder();
const td = new TextDecoder();

/** The five files SEC4.3 promises (the CA key, a sixth, stays beside them). */
const PEM_FILES = ['ca.pem', 'server.pem', 'server-key.pem', 'client.pem', 'client-key.pem'];
const KEY_FILES = ['ca-key.pem', 'server-key.pem', 'client-key.pem'];
/** A short tls.timeout, so the silent-client test is quick; long enough for a loaded 2-core machine to finish real handshakes. */
const SHORT_TLS_TIMEOUT_MS = 300;
/** Generous upper bound for "closed after tls.timeout" on a loaded machine. */
const CLOSE_DEADLINE_MS = 8_000;

interface Gen {
  dir: string;
  stdout: string;
  stderr: string;
}

/** Our certificates (the node's) and another CA's, made by the real CLI once for the file. */
let ours: Gen;
let other: Gen;
let root: string;

async function genCerts(dir: string): Promise<Gen> {
  const { stdout, stderr } = await promisify(execFile)(
    process.execPath,
    [CLI, 'gen', 'certs', '--out', dir],
    {
      timeout: 30_000,
    },
  );
  return { dir, stdout, stderr };
}

test.before(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'swarmmq-tls-'));
  [ours, other] = await Promise.all([genCerts(path.join(root, 'ours')), genCerts(path.join(root, 'other'))]);
});

test.after.always(() => {
  if (root !== undefined) rmSync(root, { recursive: true, force: true });
});

const file = (g: Gen, name: string): string => path.join(g.dir, name);

/** Node options with TLS on from our certificates. */
function tlsOn(extra: Partial<NodeOptions> = {}): Partial<NodeOptions> {
  return { tlsCertFile: file(ours, 'server.pem'), tlsKeyFile: file(ours, 'server-key.pem'), ...extra };
}

/** Node options with mutual TLS (SEC4.2). */
function mutualTls(extra: Partial<NodeOptions> = {}): Partial<NodeOptions> {
  return tlsOn({ tlsCaFile: file(ours, 'ca.pem'), tlsVerify: true, ...extra });
}

async function natsClient(
  t: ExecutionContext,
  port: number,
  opts: Record<string, unknown>,
): Promise<NatsConnection> {
  const nc = await connect({ servers: `127.0.0.1:${port}`, reconnect: false, timeout: 10_000, ...opts });
  t.teardown(async () => {
    if (!nc.isClosed()) await nc.close();
  });
  return nc;
}

/**
 * Opens TCP, reads the plaintext INFO line (SEC4.1), then runs the TLS
 * handshake on the same socket with node:tls. Resolves once the client side
 * is secure; rejects with the handshake error (or a close) otherwise.
 */
async function tlsAfterInfo(
  t: ExecutionContext,
  port: number,
  opts: tls.ConnectionOptions,
): Promise<{ secure: tls.TLSSocket; info: Record<string, unknown> }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  t.teardown(() => {
    socket.destroy();
  });
  const info = await new Promise<Record<string, unknown>>((resolve, reject) => {
    let text = '';
    const onData = (d: Buffer): void => {
      text += d.toString('latin1');
      const end = text.indexOf('\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      socket.pause();
      const m = /^INFO (.*)$/.exec(text.slice(0, end));
      if (m === null || end + 2 !== text.length) reject(new Error(`expected one INFO line, got ${text}`));
      else resolve(JSON.parse(m[1]!) as Record<string, unknown>);
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('closed before INFO')));
  });
  const secure = tls.connect({ socket, servername: 'localhost', ...opts });
  t.teardown(() => {
    secure.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    secure.once('secureConnect', () => resolve());
    secure.once('error', reject);
    secure.once('close', () => reject(new Error('closed during the handshake')));
  });
  return { secure, info };
}

/** Sends CONNECT and PING over a secured socket and resolves with what came back up to the PONG. */
async function pingOver(
  secure: tls.TLSSocket,
  connectFields: Record<string, unknown> = QUIET,
): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    secure.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (/(?:PONG|-ERR [^\r\n]*)\r\n/.test(text)) resolve(text);
    });
    // A refused connection ends in a reset or a close: what came before it is the answer.
    secure.once('error', () => resolve(text));
    secure.once('close', () => resolve(text));
    secure.write(`CONNECT ${JSON.stringify(connectFields)}\r\nPING\r\n`);
  });
}

/** Log lines (parsed) with the given msg. */
function logged(logs: string[], msg: string): Record<string, unknown>[] {
  return logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === msg);
}

// ---- SEC4.3: swarmmq gen certs ----------------------------------------------

test('gen certs makes a CA, a server and a client certificate, keys 0600, and prints the tls config (SEC4.3)', (t) => {
  for (const name of PEM_FILES) {
    const text = readFileSync(file(ours, name), 'latin1');
    const marker = name.endsWith('-key.pem')
      ? /^-----BEGIN PRIVATE KEY-----\n/
      : /^-----BEGIN CERTIFICATE-----\n/;
    t.regex(text, marker, `${name} is PEM`);
  }
  for (const name of KEY_FILES) {
    t.is(statSync(file(ours, name)).mode & 0o777, 0o600, `${name} is mode 0600`);
  }
  const ca = new X509Certificate(readFileSync(file(ours, 'ca.pem')));
  const server = new X509Certificate(readFileSync(file(ours, 'server.pem')));
  const client = new X509Certificate(readFileSync(file(ours, 'client.pem')));
  t.true(ca.ca, 'ca.pem is a CA');
  t.true(server.verify(ca.publicKey), 'the CA signed the server certificate');
  t.true(client.verify(ca.publicKey), 'the CA signed the client certificate');
  t.false(server.verify(new X509Certificate(readFileSync(file(other, 'ca.pem'))).publicKey));
  t.is(server.checkHost('localhost'), 'localhost');
  t.is(server.checkIP('127.0.0.1'), '127.0.0.1');
  for (const name of ['server-key.pem', 'client-key.pem']) {
    const key = createPrivateKey(readFileSync(file(ours, name)));
    t.is(key.asymmetricKeyType, 'ec');
    t.is(key.asymmetricKeyDetails?.namedCurve, 'prime256v1', `${name} is P-256`);
  }
  const days = (Date.parse(server.validTo) - Date.now()) / 86_400_000;
  t.true(days > 29 && days <= 30, `valid for 30 days (${days.toFixed(2)})`);
  t.not(server.fingerprint256, new X509Certificate(readFileSync(file(other, 'server.pem'))).fingerprint256);

  const printed = parseYaml(ours.stdout) as { tls: Record<string, unknown> };
  t.deepEqual(printed.tls, {
    cert_file: file(ours, 'server.pem'),
    key_file: file(ours, 'server-key.pem'),
    ca_file: file(ours, 'ca.pem'),
    verify: true,
  });
  // The printed block is a config the node takes as it is.
  const o = resolveOptions({ yamlText: ours.stdout });
  t.is(o.tlsKeyFile, file(ours, 'server-key.pem'));
  t.true(o.tlsVerify);
  // SEC4.5: gen shows where the keys are, never what they hold.
  for (const name of KEY_FILES) {
    for (const line of pemBodyLines(readFileSync(file(ours, name), 'latin1'))) {
      t.false(ours.stdout.includes(line) || ours.stderr.includes(line), `no line of ${name} printed`);
    }
  }
});

// ---- SEC4.1: INFO in plaintext, then TLS 1.3 --------------------------------

test('INFO is plaintext with tls_required; a plaintext CONNECT gets Secure Connection - TLS Required and is closed (SEC4.1)', async (t) => {
  const { node, port, logs } = await startTestNode(t, tlsOn());
  const [c, info] = await RawClient.open(t, port);
  t.true(info.tls_required);
  t.is(info.tls_verify, undefined, 'no client certificate asked for without tls.verify');
  t.is(info.auth_required, undefined);
  c.send('CONNECT {}\r\n');
  await c.expect(/^-ERR 'Secure Connection - TLS Required'\r\n/);
  await c.waitClosed();
  t.is(c.buffer, '', 'nothing after the -ERR');
  t.is(node.server.stats().closes.tls_required, 1);
  t.is(node.server.connections.size, 0, 'the plaintext client was never admitted');
  t.is(logged(logs, 'connection accepted').length, 0);
});

test('the stock client with tls.caFile does pub/sub, request/reply and a durable publish over TLS 1.3 (SEC4.1, D3.7)', async (t) => {
  const dest = 'orders.tls';
  const { node, port } = await startTestNode(t, tlsOn({ destinations: [{ name: dest, settings: {} }] }));
  const tlsOpts = { tls: { caFile: file(ours, 'ca.pem') } };
  const sub = await natsClient(t, port, tlsOpts);
  const pub = await natsClient(t, port, tlsOpts);
  t.true(sub.info?.tls_required);

  // Core pub/sub between two TLS clients.
  const got: string[] = [];
  const s = sub.subscribe('greet.*', {
    callback: (_e, m) => {
      got.push(`${m.subject}:${td.decode(m.data)}`);
    },
  });
  await sub.flush();
  pub.publish('greet.joe', te.encode('hello'));
  pub.publish('greet.ann', te.encode('hi'));
  await waitFor(() => got.length === 2, 'two messages over TLS');
  t.deepEqual(got, ['greet.joe:hello', 'greet.ann:hi']);
  s.unsubscribe();

  // Request/reply.
  sub.subscribe('math.double', {
    callback: (_e, m) => {
      m.respond(te.encode(String(2 * Number(td.decode(m.data)))));
    },
  });
  await sub.flush();
  const answer = await pub.request('math.double', te.encode('21'), { timeout: 10_000 });
  t.is(td.decode(answer.data), '42');

  // A publish with a reply to a durable destination is stored and acked in JSON (DURABLE.md D3.7).
  const acks = [];
  for (const body of ['first', 'second']) {
    const m = await pub.request(dest, te.encode(body), { timeout: 10_000 });
    acks.push(JSON.parse(td.decode(m.data)) as Record<string, unknown>);
  }
  t.deepEqual(acks, [
    { stream: dest, seq: 1 },
    { stream: dest, seq: 2 },
  ]);
  t.is(node.server.connections.size, 2);

  // The connection really is TLS 1.3: the same handshake from node:tls, then the protocol over it.
  const { secure, info } = await tlsAfterInfo(t, port, { ca: readFileSync(file(ours, 'ca.pem')) });
  t.true(info.tls_required);
  t.is(secure.getProtocol(), 'TLSv1.3');
  t.true(secure.authorized);
  t.regex(await pingOver(secure), /^PONG\r\n$/);
});

test('a client that offers only TLS 1.2 fails the handshake (SEC4.1)', async (t) => {
  const { node, port, logs } = await startTestNode(t, tlsOn());
  const err = await t.throwsAsync(
    tlsAfterInfo(t, port, { ca: readFileSync(file(ours, 'ca.pem')), maxVersion: 'TLSv1.2' }),
  );
  t.regex(String(err?.message), /protocol version|unsupported protocol|closed during/i);
  await waitFor(() => node.server.stats().closes.tls_handshake_failed === 1, 'the refusal to be counted');
  t.is(node.server.connections.size, 0);
  t.is(logged(logs, 'TLS connection refused').length, 1);
});

test('a client that does not trust the CA fails the handshake, with node:tls and with the stock client (SEC4.1)', async (t) => {
  const { node, port } = await startTestNode(t, tlsOn());
  // Trusting another CA.
  const err = await t.throwsAsync(tlsAfterInfo(t, port, { ca: readFileSync(file(other, 'ca.pem')) }));
  t.regex(String((err as NodeJS.ErrnoException).code), /SELF_SIGNED|UNABLE_TO_VERIFY|CERT/);
  // Trusting the system's CAs only.
  await t.throwsAsync(tlsAfterInfo(t, port, {}));
  await t.throwsAsync(natsClient(t, port, { tls: { caFile: file(other, 'ca.pem') } }));
  await waitFor(
    () => node.server.stats().closes.tls_handshake_failed === 3,
    'three refused handshakes to be counted',
  );
  t.is(node.server.connections.size, 0);
});

test('a client that opens TCP and sends nothing is closed after tls.timeout; so is a stalled handshake (SEC4.1)', async (t) => {
  const { node, port } = await startTestNode(t, tlsOn({ tlsTimeoutMs: SHORT_TLS_TIMEOUT_MS }));
  const silent = async (first?: Buffer): Promise<number> => {
    const start = Date.now();
    const [c, info] = await RawClient.open(t, port);
    t.true(info.tls_required);
    if (first !== undefined) c.send(first);
    await c.waitClosed(CLOSE_DEADLINE_MS);
    t.is(c.buffer, '', 'closed without a word');
    return Date.now() - start;
  };
  // A TLS record header of a handshake that never goes on.
  const [idle, stalled] = await Promise.all([silent(), silent(Buffer.from([0x16, 0x03, 0x01, 0x00]))]);
  t.log(`closed after ${idle} ms (silent) and ${stalled} ms (stalled handshake)`);
  t.true(idle >= SHORT_TLS_TIMEOUT_MS - 5, `not before tls.timeout (${idle} ms)`);
  t.true(stalled >= SHORT_TLS_TIMEOUT_MS - 5, `not before tls.timeout (${stalled} ms)`);
  t.is(node.server.stats().closes.tls_handshake_failed, 2);
  t.is(node.server.connections.size, 0);
});

test('sockets in their handshake count against max_connections (SEC4.1)', async (t) => {
  const { port } = await startTestNode(t, tlsOn({ maxConnections: 1 }));
  const [holder] = await RawClient.open(t, port);
  const [refused, info] = await RawClient.open(t, port);
  t.true(info.tls_required);
  await refused.expect(/^-ERR 'maximum connections exceeded'\r\n/);
  await refused.waitClosed();
  t.false(holder.closed, 'the socket in its handshake keeps its place');
});

// ---- SEC4.2: mutual TLS -----------------------------------------------------

test('mutual TLS: tls_verify in INFO; no client certificate or one from another CA fails; ours works (SEC4.2)', async (t) => {
  const { node, port, logs } = await startTestNode(t, mutualTls());
  const [raw, info] = await RawClient.open(t, port);
  t.true(info.tls_required);
  t.true(info.tls_verify);
  // A socket closed before its handshake counts as a failed one.
  raw.socket.destroy();
  await waitFor(() => node.server.stats().closes.tls_handshake_failed === 1, 'the INFO reader to be counted');

  const ca = file(ours, 'ca.pem');
  await t.throwsAsync(natsClient(t, port, { tls: { caFile: ca } }), undefined, 'no certificate');
  await t.throwsAsync(
    natsClient(t, port, {
      tls: { caFile: ca, certFile: file(other, 'client.pem'), keyFile: file(other, 'client-key.pem') },
    }),
    undefined,
    'a certificate from another CA',
  );
  // The same from node:tls: TLS 1.3 lets the client finish its side first, then the node closes.
  const foreign = await tlsAfterInfo(t, port, {
    ca: readFileSync(ca),
    cert: readFileSync(file(other, 'client.pem')),
    key: readFileSync(file(other, 'client-key.pem')),
  });
  t.is(await pingOver(foreign.secure), '', 'closed before any protocol answer');
  await waitFor(() => node.server.stats().closes.tls_handshake_failed === 4, 'the refusals to be counted');
  t.is(node.server.stats().totalConnections, 4);
  t.is(node.server.connections.size, 0);
  const refusals = logged(logs, 'TLS connection refused').map((l) => String(l.why));
  t.is(refusals.filter((why) => /certificate/i.test(why)).length, 3, refusals.join('; '));

  const withCert = {
    tls: { caFile: ca, certFile: file(ours, 'client.pem'), keyFile: file(ours, 'client-key.pem') },
  };
  const nc = await natsClient(t, port, withCert);
  t.true(nc.info?.tls_verify);
  const sub = nc.subscribe('mtls', { max: 1 });
  nc.publish('mtls', te.encode('verified'));
  for await (const m of sub) t.is(td.decode(m.data), 'verified');

  // The same from node:tls: TLS 1.3 with our client certificate.
  const { secure } = await tlsAfterInfo(t, port, {
    ca: readFileSync(ca),
    cert: readFileSync(file(ours, 'client.pem')),
    key: readFileSync(file(ours, 'client-key.pem')),
  });
  t.is(secure.getProtocol(), 'TLSv1.3');
  t.regex(await pingOver(secure), /^PONG\r\n$/);
});

// ---- SEC4.2 + SEC2: credentials on top of TLS -------------------------------

test('TLS plus an API key: the right token works, a wrong one is an Authorization Violation (SEC4.2, SEC2.3)', async (t) => {
  const key = newApiKey();
  const auth = parseAuthorization({ keys: [{ name: 'tls-app', key_hash: hashApiKey(key) }] });
  const { node, port, logs } = await startTestNode(t, tlsOn({ auth }));
  const [, info] = await RawClient.open(t, port);
  t.true(info.tls_required);
  t.true(info.auth_required);

  const caFile = file(ours, 'ca.pem');
  const nc = await natsClient(t, port, { tls: { caFile }, token: key });
  const answer = new Promise<string>((resolve) => {
    nc.subscribe('tls.auth', { max: 1, callback: (_e, m) => resolve(td.decode(m.data)) });
  });
  await nc.flush();
  nc.publish('tls.auth', te.encode('ok'));
  t.is(await answer, 'ok');
  t.is(logged(logs, 'client authenticated')[0]?.key, 'tls-app');

  const wrong = newApiKey();
  const err = await t.throwsAsync(natsClient(t, port, { tls: { caFile }, token: wrong }));
  t.is(err?.name, 'AuthorizationError');
  // Over node:tls: the exact wire text, then the close.
  const { secure } = await tlsAfterInfo(t, port, { ca: readFileSync(caFile) });
  t.is(await pingOver(secure, { ...QUIET, auth_token: wrong }), "-ERR 'Authorization Violation'\r\n");
  await waitFor(() => secure.destroyed || secure.readableEnded, 'the TLS connection to close');
  await waitFor(() => node.server.stats().closes.authorization_violation === 2, 'both violations counted');
  const failed = logged(logs, 'authentication failed');
  t.is(failed.length, 2);
  // SEC2.3, SEC4.5: neither token is logged.
  const all = logs.join('\n');
  t.false(all.includes(key));
  t.false(all.includes(wrong));
});

// ---- SEC4.1: configuration errors name the key ------------------------------

test('bad TLS configuration: resolveOptions throws a ConfigError naming the key (SEC4.1)', (t) => {
  const dir = tempDir(t);
  const notPem = path.join(dir, 'not-a-pem.txt');
  writeFileSync(notPem, 'just some text\n');
  const missing = path.join(dir, 'missing.pem');
  const cert = file(ours, 'server.pem');
  const key = file(ours, 'server-key.pem');
  const ca = file(ours, 'ca.pem');
  const cases: [string, Partial<NodeOptions>, string][] = [
    ['cert without key', { tlsCertFile: cert }, 'tls.key_file'],
    ['key without cert', { tlsKeyFile: key }, 'tls.cert_file'],
    ['verify without ca', { tlsCertFile: cert, tlsKeyFile: key, tlsVerify: true }, 'tls.verify'],
    ['ca without cert', { tlsCaFile: ca }, 'tls.ca_file'],
    ['missing cert file', { tlsCertFile: missing, tlsKeyFile: key }, 'tls.cert_file'],
    ['missing key file', { tlsCertFile: cert, tlsKeyFile: missing }, 'tls.key_file'],
    ['missing ca file', { tlsCertFile: cert, tlsKeyFile: key, tlsCaFile: missing }, 'tls.ca_file'],
    ['cert not PEM', { tlsCertFile: notPem, tlsKeyFile: key }, 'tls.cert_file'],
    ['key not PEM', { tlsCertFile: cert, tlsKeyFile: notPem }, 'tls.key_file'],
    ['key file holds a certificate', { tlsCertFile: cert, tlsKeyFile: cert }, 'tls.key_file'],
    ['cert file holds a key', { tlsCertFile: key, tlsKeyFile: key }, 'tls.cert_file'],
    ['ca not PEM', { tlsCertFile: cert, tlsKeyFile: key, tlsCaFile: notPem }, 'tls.ca_file'],
  ];
  const keyLines = pemBodyLines(readFileSync(key, 'latin1'));
  for (const [what, overrides, name] of cases) {
    const err = t.throws(() => resolveOptions({ overrides }), { instanceOf: ConfigError }, what);
    t.is(err?.key, name, what);
    t.true(err?.message.includes(name), `${what}: the message names ${name}`);
    for (const line of keyLines) t.false(String(err?.message).includes(line), `${what}: no key material`);
  }
  // The same from YAML.
  const yamlErr = t.throws(() => resolveOptions({ yamlText: `tls:\n  cert_file: ${cert}\n` }), {
    instanceOf: ConfigError,
  });
  t.is(yamlErr?.key, 'tls.key_file');
  const timeoutErr = t.throws(() => resolveOptions({ yamlText: 'tls:\n  timeout: 5ms\n' }), {
    instanceOf: ConfigError,
  });
  t.is(timeoutErr?.key, 'tls.timeout');
});

test('bad TLS configuration through the real CLI: exit 2 with the key in stderr (SEC4.1)', async (t) => {
  const dir = tempDir(t);
  const notPem = path.join(dir, 'not-a-pem.txt');
  writeFileSync(notPem, 'just some text\n');
  const cert = file(ours, 'server.pem');
  const key = file(ours, 'server-key.pem');
  const yamlFile = path.join(dir, 'verify-without-ca.yaml');
  writeFileSync(yamlFile, `tls:\n  cert_file: ${cert}\n  key_file: ${key}\n  verify: true\n`);
  const cases: [string, string[], Record<string, string>, string][] = [
    ['cert without key', ['--tls-cert', cert], {}, 'tls.key_file'],
    [
      'verify without ca (flags)',
      ['--tls-cert', cert, '--tls-key', key, '--tls-verify', 'true'],
      {},
      'tls.verify',
    ],
    ['verify without ca (YAML)', ['--config', yamlFile], {}, 'tls.verify'],
    ['missing file', ['--tls-cert', path.join(dir, 'nope.pem'), '--tls-key', key], {}, 'tls.cert_file'],
    ['non-PEM key (environment)', [], { SWARMMQ_TLS_CERT: cert, SWARMMQ_TLS_KEY: notPem }, 'tls.key_file'],
  ];
  await Promise.all(
    cases.map(async ([what, args, env, name]) => {
      const p = runStandalone(t, args, { dataDir: path.join(dir, 'data'), env });
      t.is(await p.exited, 2, `${what}: exit code`);
      t.true(p.stderr.includes(name), `${what}: stderr names ${name}: ${p.stderr}`);
      t.false(
        p.stdout.some((l) => l.includes('node started')),
        `${what}: the node did not start`,
      );
    }),
  );
});

test('a certificate with a key that does not match it stops the node without showing the key (SEC4.1, SEC4.5)', async (t) => {
  const dir = tempDir(t);
  const wrongKey = file(ours, 'client-key.pem');
  const p = runStandalone(t, ['--tls-cert', file(ours, 'server.pem'), '--tls-key', wrongKey], {
    dataDir: dir,
  });
  t.is(await p.exited, 1);
  t.regex(p.stderr, /cannot use the TLS certificate and key/);
  const out = `${p.stdout.join('\n')}\n${p.stderr}`;
  for (const line of pemBodyLines(readFileSync(wrongKey, 'latin1'))) t.false(out.includes(line));
});

/** The base64 lines between a PEM's BEGIN and END lines. */
function pemBodyLines(pem: string): string[] {
  return pem.split('\n').filter((l) => l.length > 0 && !l.startsWith('-----'));
}
