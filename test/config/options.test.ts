/** Options: defaults, YAML, env and flags in order, and refusals that name the key. */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { DEFAULT_OPTIONS, resolveOptions } from '../../src/config/options.js';
import { ConfigError } from '../../src/errors.js';
import { parseBytes, parseDurationMs } from '../../src/config/units.js';
import { RawClient, startTestNode } from '../helpers/wire.js';

const configsDir = path.resolve(import.meta.dirname, '../../../configs');

test('defaults with no sources; the result is frozen', (t) => {
  const o = resolveOptions();
  t.deepEqual(o, DEFAULT_OPTIONS);
  t.is(o.port, 4222);
  t.is(o.host, '127.0.0.1');
  t.is(o.dataDir, './data');
  t.is(o.maxPayloadBytes, 1024 * 1024);
  t.true(Object.isFrozen(o));
});

test('flags over env over YAML over defaults', (t) => {
  const yamlText = 'client:\n  port: 1111\n  host: 0.0.0.0\nnode:\n  name: from-yaml\n';
  const env = { SWARMMQ_PORT: '2222', SWARMMQ_NAME: 'from-env' };
  const o = resolveOptions({ yamlText, env, flags: { port: '3333' } });
  t.is(o.port, 3333);
  t.is(o.name, 'from-env');
  t.is(o.host, '0.0.0.0');
  t.is(resolveOptions({ yamlText, env }).port, 2222);
  t.is(resolveOptions({ yamlText }).port, 1111);
});

test('SWARMMQ_CONFIG names the file when no --config is given', (t) => {
  const o = resolveOptions({ env: { SWARMMQ_CONFIG: path.join(configsDir, 'constrained.yaml') } });
  t.is(o.maxConnections, 128);
});

test('sizes and durations take units', (t) => {
  const o = resolveOptions({
    yamlText: 'performance:\n  max_message_size: 64KB\nlimits:\n  ping_interval: 1.5s\n  max_pending: 2MiB\n',
  });
  t.is(o.maxPayloadBytes, 65536);
  t.is(o.pingIntervalMs, 1500);
  t.is(o.maxPendingBytes, 2 * 1024 * 1024);
  t.is(parseBytes(1024), 1024);
  t.is(parseDurationMs('2m'), 120_000);
  t.is(typeof parseBytes('12 parsecs'), 'string');
  t.is(typeof parseDurationMs(-1), 'string');
});

const refusals: [string, Parameters<typeof resolveOptions>[0], string, RegExp][] = [
  ['port out of range in YAML', { yamlText: 'client:\n  port: 70000\n' }, 'client.port', /0-65535/],
  ['port not a number in env', { env: { SWARMMQ_PORT: 'http' } }, 'environment SWARMMQ_PORT', /port number/],
  ['unknown section', { yamlText: 'clients:\n  port: 1\n' }, 'clients', /unknown section/],
  ['unknown key', { yamlText: 'client:\n  prot: 1\n' }, 'client.prot', /unknown key.*client\.port/],
  ['bad log level flag', { flags: { logLevel: 'loud' } }, '--log-level', /one of/],
  [
    'bad size',
    { yamlText: 'performance:\n  max_message_size: lots\n' },
    'performance.max_message_size',
    /size/,
  ],
  [
    'below minimum',
    { yamlText: 'limits:\n  max_control_line: 10\n' },
    'limits.max_control_line',
    /at least 256/,
  ],
  ['section not a mapping', { yamlText: 'limits: 5\n' }, 'limits', /mapping/],
  ['top level a list', { yamlText: '- a\n- b\n' }, '<yaml>', /mapping/],
  ['YAML syntax', { yamlText: 'client:\n  port: [1\n' }, '<yaml>', /invalid YAML/],
  ['duplicate key', { yamlText: 'client:\n  port: 1\n  port: 2\n' }, '<yaml>', /invalid YAML/],
  ['name with spaces', { flags: { name: 'my node' } }, '--name', /whitespace/],
  ['missing file', { configFile: '/nonexistent/swarmmq.yaml' }, '/nonexistent/swarmmq.yaml', /cannot read/],
  [
    'total pending below per-connection pending',
    { yamlText: 'limits:\n  max_pending: 2MB\n  max_total_pending: 1MB\n' },
    'limits.max_total_pending',
    /at least/,
  ],
];

for (const [title, sources, key, reason] of refusals) {
  test(`refused, naming the key: ${title}`, (t) => {
    const err = t.throws(() => resolveOptions(sources), { instanceOf: ConfigError });
    t.is(err?.name, 'ConfigError');
    t.is(err?.key, key);
    t.regex(err?.reason ?? '', reason);
    t.true(err?.message.includes(key));
  });
}

test('security.master_key: base64 of 32 bytes; a bad one is refused without echoing it', (t) => {
  const key = Buffer.alloc(32, 7).toString('base64');
  t.deepEqual(
    resolveOptions({ yamlText: `security:\n  master_key: ${key}\n` }).masterKey,
    Buffer.alloc(32, 7),
  );
  t.deepEqual(resolveOptions({ env: { SWARMMQ_MASTER_KEY: key } }).masterKey, Buffer.alloc(32, 7));
  const short = Buffer.alloc(16, 1).toString('base64');
  const err = t.throws(() => resolveOptions({ yamlText: `security:\n  master_key: ${short}\n` }), {
    instanceOf: ConfigError,
  });
  t.is(err?.key, 'security.master_key');
  t.false(err?.message.includes(short));
  const notB64 = t.throws(() => resolveOptions({ env: { SWARMMQ_MASTER_KEY: 'not base64 at all!' } }), {
    instanceOf: ConfigError,
  });
  t.false(notB64?.message.includes('not base64 at all'));
});

test('destinations: names or mappings with settings', (t) => {
  const o = resolveOptions({
    yamlText: [
      'destinations:',
      '  - orders',
      '  - a*b',
      '  - name: audit.log',
      '    ttl: 1h',
      '    max_msgs: 1000',
      '    max_bytes: 10MB',
      '    dead_letter_expired: true',
      '    max_deliveries: 3',
      '    ack_timeout: 30s',
      '',
    ].join('\n'),
  });
  t.deepEqual(o.destinations, [
    { name: 'orders', settings: {} },
    { name: 'a*b', settings: {} },
    {
      name: 'audit.log',
      settings: {
        defaultTtlMs: 3_600_000,
        maxMsgs: 1000,
        maxBytes: 10 * 1024 * 1024,
        deadLetterExpired: true,
        maxDeliveries: 3,
        ackTimeoutMs: 30_000,
      },
    },
  ]);
});

const destinationRefusals: [string, string, string][] = [
  ['not a list', 'destinations: orders\n', 'destinations'],
  ['wildcard name', 'destinations:\n  - orders.*\n', 'destinations[0].name'],
  ['empty token', 'destinations:\n  - a..b\n', 'destinations[0].name'],
  ['longer than 255 bytes', `destinations:\n  - ${'n'.repeat(256)}\n`, 'destinations[0].name'],
  ['unknown key', 'destinations:\n  - name: a\n    colour: red\n', 'destinations[0].colour'],
  ['bad ttl', 'destinations:\n  - name: a\n    ttl: soon\n', 'destinations[0].ttl'],
  ['listed twice', 'destinations:\n  - a\n  - name: a\n', 'destinations[1].name'],
];
for (const [title, yamlText, key] of destinationRefusals) {
  test(`destinations refused, naming the key: ${title}`, (t) => {
    const err = t.throws(() => resolveOptions({ yamlText }), { instanceOf: ConfigError });
    t.is(err?.key, key);
  });
}

const configFiles = readdirSync(configsDir).filter((f) => f.endsWith('.yaml'));

test('configs/ holds examples', (t) => {
  t.true(configFiles.length >= 3);
});

for (const file of configFiles) {
  test(`configs/${file} loads and a node runs with it`, async (t) => {
    const options = resolveOptions({ configFile: path.join(configsDir, file) });
    // Port and data dir are moved aside so examples can run side by side here.
    const { port, node } = await startTestNode(t, {
      ...options,
      port: 0,
      name: undefined,
      logLevel: 'silent',
      dataDir: undefined,
    });
    for (const d of options.destinations) t.true(node.durable.isDestination(d.name), d.name);
    // An example with authorization names its development admin key in a comment.
    const text = readFileSync(path.join(configsDir, file), 'utf8');
    const token = /admin:\s+(smq_\S+)/.exec(text)?.[1];
    t.is(options.auth !== undefined, token !== undefined);
    const [c, info] = await RawClient.open(t, port, { verbose: false, auth_token: token });
    t.is(info.max_payload, options.maxPayloadBytes);
    t.is(await c.flushed(), '');
  });
}

test('max_message_size stays within one mesh frame (MESH.md M4.1)', (t) => {
  t.is(resolveOptions({ overrides: { maxPayloadBytes: 7 * 1024 * 1024 } }).maxPayloadBytes, 7 * 1024 * 1024);
  const err = t.throws(() => resolveOptions({ overrides: { maxPayloadBytes: 8 * 1024 * 1024 } }), {
    instanceOf: ConfigError,
  });
  t.is(err?.key, 'performance.max_message_size');
});
