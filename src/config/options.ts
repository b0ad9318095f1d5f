/**
 * Node options: one table of every option (where it lives in YAML, its
 * environment variable and flag, how it is parsed and checked), and one
 * function, `resolveOptions`, that lays flags over environment over YAML over
 * the defaults and returns frozen, validated options. A refusal is a
 * ConfigError naming the key and the reason.
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { ConfigError } from '../errors.js';
import * as D from './defaults.js';
import { parseBytes, parseDurationMs } from './units.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A node's options after validation. Frozen. */
export interface NodeOptions {
  /** Client port bind address. @default "127.0.0.1" */
  readonly host: string;
  /** Client port; 0 picks a free one. @default 4222 */
  readonly port: number;
  /** State directory. @default "./data" */
  readonly dataDir: string;
  /** Node name shown in INFO (`server_name`) and logs. @default "<hostname>:<port>" */
  readonly name: string | undefined;
  /** @default "info" */
  readonly logLevel: LogLevel;
  /** Cluster name, shown in INFO. @default "swarmmq" */
  readonly clusterName: string;
  /** Largest client payload (`max_payload` in INFO). @default 1 MiB */
  readonly maxPayloadBytes: number;
  /** Longest control line. @default 4096 */
  readonly maxControlLineBytes: number;
  /** Subscriptions per connection. @default 4096 */
  readonly maxSubscriptions: number;
  /** Client connections per node. @default 1024 */
  readonly maxConnections: number;
  /** Outbound bytes queued per connection before it is cut off as slow. @default 16 MiB */
  readonly maxPendingBytes: number;
  /** Outbound bytes queued over all connections. @default 256 MiB */
  readonly maxTotalPendingBytes: number;
  /** Server PING interval. @default 120000 */
  readonly pingIntervalMs: number;
  /** Unanswered PINGs before a connection is closed as stale. @default 2 */
  readonly maxPingsOut: number;
}

type Kind = 'string' | 'name' | 'host' | 'port' | 'bytes' | 'duration' | 'count' | 'logLevel';

export interface OptionSpec {
  readonly key: keyof NodeOptions;
  /** Dotted path in the YAML file. */
  readonly yaml: string;
  /** Environment variable. */
  readonly env: string;
  /** Long flag without dashes. */
  readonly flag: string;
  readonly kind: Kind;
  readonly describe: string;
  /** Smallest accepted value for numeric kinds. */
  readonly min?: number;
}

/** Every option a node takes. Flags and env vars are derived from this table, never written elsewhere. */
export const OPTION_SPECS: readonly OptionSpec[] = [
  {
    key: 'host',
    yaml: 'client.host',
    env: 'SWARMMQ_HOST',
    flag: 'host',
    kind: 'host',
    describe: 'client port bind address',
  },
  {
    key: 'port',
    yaml: 'client.port',
    env: 'SWARMMQ_PORT',
    flag: 'port',
    kind: 'port',
    describe: 'client port (0 picks a free one)',
  },
  {
    key: 'dataDir',
    yaml: 'storage.data_dir',
    env: 'SWARMMQ_DATA_DIR',
    flag: 'data-dir',
    kind: 'string',
    describe: 'directory for the node state',
  },
  {
    key: 'name',
    yaml: 'node.name',
    env: 'SWARMMQ_NAME',
    flag: 'name',
    kind: 'name',
    describe: 'node name (default <hostname>:<port>)',
  },
  {
    key: 'logLevel',
    yaml: 'node.log_level',
    env: 'SWARMMQ_LOG_LEVEL',
    flag: 'log-level',
    kind: 'logLevel',
    describe: `log level (${LOG_LEVELS.join(', ')})`,
  },
  {
    key: 'clusterName',
    yaml: 'cluster.name',
    env: 'SWARMMQ_CLUSTER',
    flag: 'cluster',
    kind: 'name',
    describe: 'cluster name',
  },
  {
    key: 'maxPayloadBytes',
    yaml: 'performance.max_message_size',
    env: 'SWARMMQ_MAX_PAYLOAD',
    flag: 'max-payload',
    kind: 'bytes',
    min: 1,
    describe: 'largest message payload',
  },
  {
    key: 'maxControlLineBytes',
    yaml: 'limits.max_control_line',
    env: 'SWARMMQ_MAX_CONTROL_LINE',
    flag: 'max-control-line',
    kind: 'bytes',
    min: 256,
    describe: 'longest protocol control line',
  },
  {
    key: 'maxSubscriptions',
    yaml: 'limits.max_subscriptions',
    env: 'SWARMMQ_MAX_SUBSCRIPTIONS',
    flag: 'max-subscriptions',
    kind: 'count',
    min: 1,
    describe: 'subscriptions per connection',
  },
  {
    key: 'maxConnections',
    yaml: 'limits.max_connections',
    env: 'SWARMMQ_MAX_CONNECTIONS',
    flag: 'max-connections',
    kind: 'count',
    min: 1,
    describe: 'client connections per node',
  },
  {
    key: 'maxPendingBytes',
    yaml: 'limits.max_pending',
    env: 'SWARMMQ_MAX_PENDING',
    flag: 'max-pending',
    kind: 'bytes',
    min: 1024,
    describe: 'outbound bytes queued per connection before it is cut off as slow',
  },
  {
    key: 'maxTotalPendingBytes',
    yaml: 'limits.max_total_pending',
    env: 'SWARMMQ_MAX_TOTAL_PENDING',
    flag: 'max-total-pending',
    kind: 'bytes',
    min: 1024,
    describe: 'outbound bytes queued over all connections',
  },
  {
    key: 'pingIntervalMs',
    yaml: 'limits.ping_interval',
    env: 'SWARMMQ_PING_INTERVAL',
    flag: 'ping-interval',
    kind: 'duration',
    min: 10,
    describe: 'server PING interval',
  },
  {
    key: 'maxPingsOut',
    yaml: 'limits.max_pings_out',
    env: 'SWARMMQ_MAX_PINGS_OUT',
    flag: 'max-pings-out',
    kind: 'count',
    min: 1,
    describe: 'unanswered PINGs before a connection is closed as stale',
  },
];

export const DEFAULT_OPTIONS: NodeOptions = Object.freeze({
  host: D.DEFAULT_HOST,
  port: D.DEFAULT_CLIENT_PORT,
  dataDir: D.DEFAULT_DATA_DIR,
  name: undefined,
  logLevel: D.DEFAULT_LOG_LEVEL,
  clusterName: D.DEFAULT_CLUSTER_NAME,
  maxPayloadBytes: D.DEFAULT_MAX_PAYLOAD_BYTES,
  maxControlLineBytes: D.DEFAULT_MAX_CONTROL_LINE_BYTES,
  maxSubscriptions: D.DEFAULT_MAX_SUBSCRIPTIONS,
  maxConnections: D.DEFAULT_MAX_CONNECTIONS,
  maxPendingBytes: D.DEFAULT_MAX_PENDING_BYTES,
  maxTotalPendingBytes: D.DEFAULT_MAX_TOTAL_PENDING_BYTES,
  pingIntervalMs: D.DEFAULT_PING_INTERVAL_MS,
  maxPingsOut: D.DEFAULT_MAX_PINGS_OUT,
});

export interface OptionSources {
  /** Path of a YAML file; its absence is an error. */
  configFile?: string | undefined;
  /** YAML text (instead of a file; used by tests). */
  yamlText?: string | undefined;
  /** Environment, usually process.env; only SWARMMQ_* keys are read. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Flag values keyed by option key (as commander gives them). */
  flags?: Readonly<Partial<Record<keyof NodeOptions, unknown>>>;
  /** Overrides applied last (programmatic use). */
  overrides?: Partial<NodeOptions>;
}

/** Turns YAML + env + flags into frozen, validated options, or throws ConfigError. */
export function resolveOptions(sources: OptionSources = {}): NodeOptions {
  const out: Record<string, unknown> = { ...DEFAULT_OPTIONS };
  const configFile = sources.configFile ?? sources.env?.SWARMMQ_CONFIG;
  if (configFile !== undefined || sources.yamlText !== undefined) {
    const yamlRoot = loadYaml(configFile, sources.yamlText);
    applyYaml(yamlRoot, out);
  }
  for (const spec of OPTION_SPECS) {
    const raw = sources.env?.[spec.env];
    if (raw !== undefined && raw !== '') out[spec.key] = parseValue(spec, raw, `environment ${spec.env}`);
  }
  for (const spec of OPTION_SPECS) {
    const raw = sources.flags?.[spec.key];
    if (raw !== undefined) out[spec.key] = parseValue(spec, raw, `--${spec.flag}`);
  }
  for (const [k, v] of Object.entries(sources.overrides ?? {})) {
    const spec = OPTION_SPECS.find((s) => s.key === k);
    if (spec === undefined) throw new ConfigError(k, 'unknown option');
    if (v !== undefined) out[k] = parseValue(spec, v, k);
  }
  const opts = out as unknown as NodeOptions;
  if (opts.maxTotalPendingBytes < opts.maxPendingBytes) {
    throw new ConfigError('limits.max_total_pending', 'must be at least limits.max_pending');
  }
  return Object.freeze(opts);
}

function loadYaml(file: string | undefined, text: string | undefined): Record<string, unknown> {
  const where = file ?? '<yaml>';
  let src = text;
  if (src === undefined) {
    try {
      src = readFileSync(file!, 'utf8');
    } catch (err) {
      throw new ConfigError(
        where,
        `cannot read config file (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      );
    }
  }
  const doc = parseDocument(src, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line;
    throw new ConfigError(
      where,
      `invalid YAML${line === undefined ? '' : ` at line ${line}`}: ${e.message.split('\n')[0]}`,
    );
  }
  const root: unknown = doc.toJS();
  if (root === null || root === undefined) return {};
  if (typeof root !== 'object' || Array.isArray(root)) {
    throw new ConfigError(where, 'the top level must be a mapping of sections (node, client, cluster, ...)');
  }
  return root as Record<string, unknown>;
}

function applyYaml(root: Record<string, unknown>, out: Record<string, unknown>): void {
  const byPath = new Map(OPTION_SPECS.map((s) => [s.yaml, s]));
  const sections = new Set(OPTION_SPECS.map((s) => s.yaml.split('.')[0]!));
  for (const [section, body] of Object.entries(root)) {
    if (!sections.has(section)) {
      throw new ConfigError(section, `unknown section (known: ${[...sections].join(', ')})`);
    }
    if (body === null || body === undefined) continue;
    if (typeof body !== 'object' || Array.isArray(body)) throw new ConfigError(section, 'must be a mapping');
    for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
      const path = `${section}.${k}`;
      const spec = byPath.get(path);
      if (spec === undefined) {
        const known = OPTION_SPECS.filter((s) => s.yaml.startsWith(`${section}.`)).map((s) => s.yaml);
        throw new ConfigError(path, `unknown key (known in ${section}: ${known.join(', ')})`);
      }
      out[spec.key] = parseValue(spec, v, path);
    }
  }
}

function parseValue(spec: OptionSpec, raw: unknown, where: string): unknown {
  const fail = (reason: string): never => {
    throw new ConfigError(where, reason);
  };
  switch (spec.kind) {
    case 'string':
    case 'host':
    case 'name': {
      if (typeof raw !== 'string' || raw.trim() === '') return fail('expected a non-empty string');
      if (spec.kind === 'name' && /\s/.test(raw)) return fail('must not contain whitespace');
      return raw;
    }
    case 'logLevel':
      if (typeof raw !== 'string' || !(LOG_LEVELS as readonly string[]).includes(raw)) {
        return fail(`expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(raw)}`);
      }
      return raw;
    case 'port': {
      const n = toInteger(raw);
      if (n === undefined || n < 0 || n > 65535)
        return fail(`expected a port number 0-65535, got ${JSON.stringify(raw)}`);
      return n;
    }
    case 'count': {
      const n = toInteger(raw);
      if (n === undefined) return fail(`expected a whole number, got ${JSON.stringify(raw)}`);
      return checkMin(spec, n, fail);
    }
    case 'bytes': {
      const n = parseBytes(raw);
      return typeof n === 'string' ? fail(n) : checkMin(spec, n, fail);
    }
    case 'duration': {
      const n = parseDurationMs(raw);
      return typeof n === 'string' ? fail(n) : checkMin(spec, n, fail);
    }
  }
}

function checkMin(spec: OptionSpec, n: number, fail: (r: string) => never): number {
  if (spec.min !== undefined && n < spec.min) return fail(`must be at least ${spec.min}, got ${n}`);
  return n;
}

function toInteger(raw: unknown): number | undefined {
  if (typeof raw === 'number') return Number.isSafeInteger(raw) ? raw : undefined;
  if (typeof raw === 'string' && /^\s*\d+\s*$/.test(raw)) return Number(raw);
  return undefined;
}
