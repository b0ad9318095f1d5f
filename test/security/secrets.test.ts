/**
 * No secret in any output (protocol/SECURITY.md SEC4.5, SEC0 "Secrets"): a
 * full run of a secured three-node cluster at `--log-level trace`, then a
 * search of everything every process wrote for every secret in several
 * encodings.
 *
 * The run: secrets made by the real CLI (`swarmmq gen certs`, `gen key`
 * twice, `gen user` with the password on stdin); three `swarmmq start`
 * processes with the cluster key and master key in the environment (as
 * SEC0 asks), TLS and `authorization:` (two API keys, one user) from one
 * YAML file; traffic through the stock NATS client over TLS with a token and
 * with user/password (core pub/sub across nodes, request/reply, a durable
 * publish acked in JSON, so the master key seals and the cluster key carries
 * replication); failed logins (wrong token, wrong password, unknown user, a
 * malformed CONNECT around a token); a SIGHUP with a raw key pasted where its
 * hash belongs (refused, and the refusal must not quote it); a SIGHUP reload
 * after the YAML lost a key, which closes the connection that used it
 * (SEC2.6); and a graceful stop of every node (SIGTERM, exit 0).
 *
 * The search: every node's stdout and stderr, and the output of `gen certs`
 * and `gen user`, for the cluster key (hex either case, base64, base64url,
 * its bytes as a JSON array as pino prints a Buffer), the master key (the
 * same), each API key and the wrong token (as is, base64, the 32 random
 * bytes in hex), the password and the wrong password (as is, base64), and
 * the node's TLS private key (every base64 line of its PEM body, its DER in
 * hex and base64, its private scalar in hex and base64url). `gen key` prints
 * its key by design, so its output is not searched; it is the positive
 * control of the search itself (the API key is found there). Positive
 * controls of the logs: they are long, hold trace lines, and hold each event
 * the run must have caused.
 */
import { randomBytes, createPrivateKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import test, { type ExecutionContext } from 'ava';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { runCli, tempDir, type CliProcess } from '../helpers/process.js';
import { cliOnce, type CliRun } from '../helpers/cli-once.js';
import { waitFor } from '../helpers/wire.js';

const te = new TextEncoder();
const td = new TextDecoder();

const NODES = 3;
/** How long a node may take to start, and the cluster to form, on a loaded 2-core machine. */
const START_TIMEOUT_MS = 30_000;
/** How long a node may take to stop on SIGTERM. */
const STOP_TIMEOUT_MS = 20_000;
/** Shortest base64 line of the PEM body searched for: shorter tails could match by chance. */
const MIN_PEM_LINE_CHARS = 16;

type LogLine = Record<string, unknown>;

interface Output {
  what: string;
  text: string;
}

/** Runs a `swarmmq gen ...` command to the end, with `input` on its stdin. */
function gen(t: ExecutionContext, args: string[], input = ''): Promise<CliRun> {
  return cliOnce(t, ['gen', ...args], { input });
}

/** A secret in each encoding it could leak in; `name` says which, for the failure message. */
function encodings(name: string, forms: Record<string, string>): [string, string][] {
  return Object.entries(forms).map(([form, text]) => [`${name} (${form})`, text]);
}

function keyEncodings(name: string, key: Buffer): [string, string][] {
  return encodings(name, {
    hex: key.toString('hex'),
    HEX: key.toString('hex').toUpperCase(),
    base64: key.toString('base64'),
    base64url: key.toString('base64url'),
    'JSON bytes': key.toJSON().data.join(','),
  });
}

function apiKeyEncodings(name: string, key: string): [string, string][] {
  return encodings(name, {
    'as is': key,
    base64: Buffer.from(key).toString('base64'),
    'random part': key.slice('smq_'.length),
    'random bytes hex': Buffer.from(key.slice('smq_'.length), 'base64url').toString('hex'),
  });
}

function passwordEncodings(name: string, password: string): [string, string][] {
  return encodings(name, { 'as is': password, base64: Buffer.from(password).toString('base64') });
}

function tlsKeyEncodings(pem: string): [string, string][] {
  const body = pem
    .split('\n')
    .filter((l) => !l.startsWith('-----') && l.length >= MIN_PEM_LINE_CHARS)
    .map((l, i): [string, string] => [`TLS key PEM body line ${i + 1}`, l]);
  const key = createPrivateKey(pem);
  const der = key.export({ format: 'der', type: 'pkcs8' });
  const d = Buffer.from(key.export({ format: 'jwk' }).d!, 'base64url');
  return [
    ...body,
    ...encodings('TLS key DER', { hex: der.toString('hex'), base64: der.toString('base64') }),
    ...encodings('TLS key scalar', { hex: d.toString('hex'), base64url: d.toString('base64url') }),
  ];
}

function parseLines(p: CliProcess): LogLine[] {
  const out: LogLine[] = [];
  for (const l of p.stdout) {
    try {
      out.push(JSON.parse(l) as LogLine);
    } catch {
      // not a JSON line
    }
  }
  return out;
}

function count(p: CliProcess, match: (l: LogLine) => boolean): number {
  return parseLines(p).filter(match).length;
}

async function natsClient(
  port: number,
  caFile: string,
  auth: Record<string, string>,
): Promise<NatsConnection> {
  return connect({
    servers: `127.0.0.1:${port}`,
    reconnect: false,
    timeout: 15_000,
    tls: { caFile },
    ...auth,
  });
}

test('a full secured cluster run at trace level writes no secret to any output (SEC4.5)', async (t) => {
  t.timeout(120_000);
  const t0 = Date.now();
  const phases: string[] = [];
  const mark = (phase: string): void => {
    phases.push(`${phase} at ${Date.now() - t0} ms`);
  };
  const dir = tempDir(t);

  // ---- secrets, made the way an operator makes them ------------------------
  const password = `pw-${randomBytes(12).toString('base64url')}`;
  const [certs, userGen, ...keyGens] = await Promise.all([
    gen(t, ['certs', '--out', path.join(dir, 'certs')]),
    gen(t, ['user', '--user', 'alice'], `${password}\n`),
    gen(t, ['key', '--name', 'app1']),
    gen(t, ['key', '--name', 'app2']),
  ]);
  for (const g of [certs, userGen, ...keyGens]) t.is(g.code, 0, g.stderr);
  const certFile = path.join(dir, 'certs', 'server.pem');
  const keyFile = path.join(dir, 'certs', 'server-key.pem');
  const caFile = path.join(dir, 'certs', 'ca.pem');
  // gen key: a comment, the key, a comment, then the YAML list entry (SEC2.2).
  const apiKeys = keyGens.map((g) => g.stdout.split('\n')[1]!);
  const keyEntries = keyGens.map(
    (g) => (parseYaml(g.stdout.split('\n').slice(2).join('\n')) as unknown[])[0],
  );
  for (const k of apiKeys) t.regex(k, /^smq_[A-Za-z0-9_-]{43}$/);
  const [key1, key2] = apiKeys as [string, string];
  const userEntries = parseYaml(userGen.stdout) as unknown[];

  const clusterKey = randomBytes(32);
  const masterKey = randomBytes(32);
  const wrongToken = `smq_${randomBytes(32).toString('base64url')}`;
  const wrongPassword = `wrong-${randomBytes(12).toString('base64url')}`;

  const configFile = path.join(dir, 'node.yaml');
  const writeConfig = (keys: unknown[]): void =>
    writeFileSync(
      configFile,
      stringifyYaml({
        tls: { cert_file: certFile, key_file: keyFile },
        authorization: { keys, users: userEntries },
        destinations: ['secure.orders'],
      }),
    );
  writeConfig(keyEntries);

  mark('secrets made');

  // ---- the cluster: keys in the environment, the rest in the YAML file ------
  const registryDir = path.join(dir, 'registry');
  const cluster = `sec-${randomBytes(4).toString('hex')}`;
  const env = {
    SWARMMQ_CLUSTER_KEY: clusterKey.toString('hex'),
    SWARMMQ_MASTER_KEY: masterKey.toString('base64'),
  };
  const nodes = Array.from({ length: NODES }, (_, i) =>
    runCli(
      t,
      [
        'start',
        '--config',
        configFile,
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--data-dir',
        path.join(dir, `node${i}`),
        '--cluster',
        cluster,
        '--registry-dir',
        registryDir,
        '--log-level',
        'trace',
      ],
      env,
    ),
  );
  const ports = await Promise.all(
    nodes.map(async (p) =>
      Number((await p.waitForLog((l) => l.msg === 'node started', START_TIMEOUT_MS)).port),
    ),
  );
  await Promise.all(
    nodes.map((p) =>
      p.waitForLog((l) => l.msg === 'cluster view changed' && l.members === NODES, START_TIMEOUT_MS),
    ),
  );
  const [p0, p1, p2] = ports as [number, number, number];

  const clients: NatsConnection[] = [];
  t.teardown(async () => {
    for (const nc of clients) if (!nc.isClosed()) await nc.close().catch(() => undefined);
  });
  const open = async (port: number, auth: Record<string, string>): Promise<NatsConnection> => {
    const nc = await natsClient(port, caFile, auth);
    clients.push(nc);
    return nc;
  };

  mark('cluster formed');

  // ---- traffic that works --------------------------------------------------
  const withKey = await open(p0, { token: key1 });
  const asUser = await open(p1, { user: 'alice', pass: password });
  const doomed = await open(p2, { token: key2 });
  t.true(withKey.info?.tls_required && withKey.info.auth_required);

  // Core pub/sub from node 0 to a user's subscription on node 1, and a request answered there.
  const got: string[] = [];
  asUser.subscribe('secure.events', {
    callback: (_e, m) => {
      got.push(td.decode(m.data));
    },
  });
  asUser.subscribe('secure.rpc', {
    callback: (_e, m) => {
      m.respond(te.encode(`re:${td.decode(m.data)}`));
    },
  });
  await asUser.flush();
  // Interest reaches node 0 over the mesh: publish until the first message arrives.
  await waitFor(
    () => {
      withKey.publish('secure.events', te.encode('probe'));
      return got.length > 0;
    },
    'a message from node 0 to a subscriber on node 1',
    START_TIMEOUT_MS,
  );
  const reply = await withKey.request('secure.rpc', te.encode('ping'), { timeout: 15_000 });
  t.is(td.decode(reply.data), 're:ping');
  // A durable publish, stored under the master key and replicated under the cluster key.
  const ack = await doomed.request('secure.orders', te.encode('order-1'), { timeout: 15_000 });
  t.like(JSON.parse(td.decode(ack.data)), { stream: 'secure.orders', seq: 1 });

  mark('traffic done');

  // ---- failed logins ---------------------------------------------------------
  const failedLogins: [string, Record<string, string>][] = [
    ['wrong token', { token: wrongToken }],
    ['wrong password', { user: 'alice', pass: wrongPassword }],
    ['unknown user', { user: 'mallory', pass: password }],
  ];
  for (const [what, auth] of failedLogins) {
    const err = await t.throwsAsync(natsClient(p0, caFile, auth), undefined, what);
    t.is(err?.name, 'AuthorizationError', what);
  }
  // A CONNECT that is not JSON, around a real token: its error must not quote the token back into a log.
  const malformed = await rawTls(t, p0, caFile, `CONNECT {"auth_token":"${key1}" x}\r\n`);
  t.regex(malformed, /^-ERR /);

  mark('failed logins done');

  // ---- SIGHUP with a key pasted where its hash belongs: refused, nothing changes
  writeConfig([{ name: 'app1', key_hash: key1 }, keyEntries[1]]);
  for (const p of nodes) p.child.kill('SIGHUP');
  await Promise.all(
    nodes.map((p) =>
      p.waitForLog(
        (l) =>
          l.msg === 'reload refused: configuration error, nothing changed' &&
          l.key === 'authorization.keys[0].key_hash',
      ),
    ),
  );
  t.false(doomed.isClosed(), 'a refused reload changes nothing');

  // ---- SIGHUP after the YAML lost app2's key ---------------------------------
  writeConfig([keyEntries[0]]);
  for (const p of nodes) p.child.kill('SIGHUP');
  await Promise.all(nodes.map((p) => p.waitForLog((l) => l.msg === 'configuration reloaded')));
  const why = await Promise.race([
    doomed.closed(),
    new Promise<string>((resolve) => setTimeout(() => resolve('still open'), STOP_TIMEOUT_MS).unref()),
  ]);
  t.is((why as Error | undefined)?.name, 'AuthorizationError', 'the revoked key is closed out');
  await nodes[2]!.waitForLog((l) => l.msg === 'credential revoked by reload' && l.key === 'app2');
  // The others go on.
  const before = got.length;
  withKey.publish('secure.events', te.encode('after reload'));
  await waitFor(() => got.length > before, 'a message after the reload', 15_000);
  t.is(got.at(-1), 'after reload');
  const refused = await t.throwsAsync(natsClient(p1, caFile, { token: key2 }));
  t.is(refused?.name, 'AuthorizationError', 'the removed key no longer logs in');

  mark('reload done');

  // ---- graceful stop --------------------------------------------------------
  for (const nc of clients) if (!nc.isClosed()) await nc.close();
  for (const p of nodes) p.child.kill('SIGTERM');
  const codes = await Promise.all(
    nodes.map((p) =>
      Promise.race([
        p.exited,
        new Promise<string>((resolve) => setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS).unref()),
      ]),
    ),
  );
  t.deepEqual(
    codes,
    nodes.map(() => 0),
  );

  mark('stopped');

  // ---- positive controls: the logs saw the whole run -----------------------
  for (const [i, p] of nodes.entries()) {
    const lines = parseLines(p);
    t.true(lines.length >= 10, `node${i} wrote ${lines.length} log lines`);
    t.true(
      lines.some((l) => l.level === 10),
      `node${i} logged at trace`,
    );
    for (const msg of ['mesh started', 'node started', 'configuration reloaded', 'node stopped']) {
      t.is(
        count(p, (l) => l.msg === msg),
        1,
        `node${i} logged ${msg} once`,
      );
    }
  }
  const [n0, n1, n2] = nodes as [CliProcess, CliProcess, CliProcess];
  t.is(
    count(n2, (l) => l.msg === 'configuration reloaded' && l.closedConnections === 1),
    1,
    'node2 closed the connection of the removed key',
  );
  t.is(
    count(n0, (l) => l.msg === 'client authenticated' && l.key === 'app1'),
    1,
  );
  t.is(
    count(n1, (l) => l.msg === 'client authenticated' && l.user === 'alice'),
    1,
  );
  t.is(
    count(n2, (l) => l.msg === 'client authenticated' && l.key === 'app2'),
    1,
  );
  t.is(
    count(n0, (l) => l.msg === 'authentication failed'),
    3,
  );
  t.is(
    count(n0, (l) => l.msg === 'authentication failed' && l.user === 'alice'),
    1,
  );
  t.is(
    count(n0, (l) => l.msg === 'authentication failed' && l.user === 'mallory'),
    1,
  );
  t.is(
    count(n1, (l) => l.msg === 'authentication failed'),
    1,
    'the removed key',
  );

  // ---- the search ------------------------------------------------------------
  const needles: [string, string][] = [
    ...keyEncodings('cluster key', clusterKey),
    ...keyEncodings('master key', masterKey),
    ...apiKeyEncodings('API key app1', key1),
    ...apiKeyEncodings('API key app2', key2),
    ...apiKeyEncodings('wrong token', wrongToken),
    ...passwordEncodings('password', password),
    ...passwordEncodings('wrong password', wrongPassword),
    ...tlsKeyEncodings(readFileSync(keyFile, 'latin1')),
  ];
  const outputs: Output[] = [
    ...nodes.flatMap((p, i) => [
      { what: `node${i} stdout`, text: p.stdout.join('\n') },
      { what: `node${i} stderr`, text: p.stderr },
    ]),
    { what: 'gen certs output', text: certs.stdout + certs.stderr },
    { what: 'gen user output', text: userGen.stdout + userGen.stderr },
  ];
  const found: string[] = [];
  for (const [name, needle] of needles) {
    for (const o of outputs) if (o.text.includes(needle)) found.push(`${name} in ${o.what}`);
  }
  t.deepEqual(found, [], 'no secret in any output');
  const total = outputs.reduce((n, o) => n + o.text.length, 0);
  t.log(phases.join(', '));
  t.log(`searched ${total} bytes of output for ${needles.length} encodings of secrets`);
  // The search finds what is there: gen key prints its key once, by design.
  t.true(keyGens[0]!.stdout.includes(apiKeyEncodings('API key app1', key1)[0]![1]));
  t.true(
    n0.stdout.some((l) => l.includes('"secure.events"')),
    'a trace line names the subject',
  );
});

/** Opens TLS after the INFO line, sends `data`, and returns what came back before the close. */
async function rawTls(t: ExecutionContext, port: number, caFile: string, data: string): Promise<string> {
  const socket = net.connect({ host: '127.0.0.1', port });
  t.teardown(() => {
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    let text = '';
    const onData = (d: Buffer): void => {
      text += d.toString('latin1');
      if (!text.includes('\r\n')) return;
      socket.off('data', onData);
      socket.pause();
      resolve();
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
  const secure = tls.connect({ socket, servername: 'localhost', ca: readFileSync(caFile) });
  t.teardown(() => {
    secure.destroy();
  });
  return new Promise((resolve, reject) => {
    let text = '';
    secure.once('secureConnect', () => secure.write(data));
    secure.on('data', (d: Buffer) => (text += d.toString('latin1')));
    secure.once('error', (err) => (text === '' ? reject(err) : resolve(text)));
    secure.once('close', () => resolve(text));
  });
}
