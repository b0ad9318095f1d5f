/**
 * Node options: one table of every option (where it lives in YAML, its
 * environment variable and flag, how it is parsed and checked), and one
 * function, `resolveOptions`, that lays flags over environment over YAML over
 * the defaults and returns frozen, validated options. A refusal is a
 * ConfigError naming the key and the reason.
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { peerIdFromString } from '@libp2p/peer-id';
import { AUTH_LIST_KEYS, parseAuthorization, type AuthConfig } from '../auth/config.js';
import { ConfigError } from '../errors.js';
import { isValidPublishSubject } from '../subjects/subject.js';
import * as D from './defaults.js';
import { parseBytes, parseDurationMs } from './units.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
/** `auto`: pretty when stdout is a terminal, else JSON lines. */
export const LOG_FORMATS = ['json', 'pretty', 'auto'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

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
  /** Changed by a reload (SEC2.6): every logger of the node follows. @default "info" */
  readonly logLevel: LogLevel;
  /** JSON lines, human-readable lines, or `auto` (pretty on a terminal). Takes a restart. @default "auto" */
  readonly logFormat: LogFormat;
  /** Cluster name, shown in INFO. @default "swarmmq" */
  readonly clusterName: string;
  /** Largest client payload (`max_payload` in INFO). @default 1 MiB */
  readonly maxPayloadBytes: number;
  /** Longest control line. @default 4096 */
  readonly maxControlLineBytes: number;
  /** Subscriptions per connection. @default 4096 */
  readonly maxSubscriptions: number;
  /** Subject tokens over all client subscriptions of the node (SEC5.1). @default 1000000 */
  readonly maxSubscriptionTokens: number;
  /** Client connections per node. @default 1024 */
  readonly maxConnections: number;
  /** Outbound bytes queued per connection before it is cut off as slow. @default 64 MiB */
  readonly maxPendingBytes: number;
  /** Outbound bytes queued over all connections. @default 256 MiB */
  readonly maxTotalPendingBytes: number;
  /** Server PING interval. @default 120000 */
  readonly pingIntervalMs: number;
  /** Unanswered PINGs before a connection is closed as stale. @default 2 */
  readonly maxPingsOut: number;
  /** New connections per second per client address; 0 = no limit (SEC5.2). @default 100 */
  readonly maxConnectionRate: number;
  /** API keys and users with their permissions (`authorization:`); undefined = no client auth (SEC2.1). */
  readonly auth: AuthConfig | undefined;
  /** Time to authenticate with CONNECT when auth is on (SEC2.5). @default 2000 */
  readonly authTimeoutMs: number;
  /** PEM certificate chain for TLS on the client port; with `tlsKeyFile` turns TLS on (SEC4.1). */
  readonly tlsCertFile: string | undefined;
  /** PEM private key for TLS on the client port. Its contents are a secret. */
  readonly tlsKeyFile: string | undefined;
  /** PEM CA bundle that client certificates must chain to (SEC4.2). */
  readonly tlsCaFile: string | undefined;
  /** Require a client certificate (mutual TLS). @default false */
  readonly tlsVerify: boolean;
  /** Time to finish the TLS handshake. @default 2000 */
  readonly tlsTimeoutMs: number;
  /** Mesh pre-shared key, 32 bytes (64 hex digits in config): only holders join (SEC1.1). Secret. */
  readonly clusterKey: Buffer | undefined;
  /** Peer ids allowed in the mesh; empty = any peer that holds the cluster key (SEC1.2). @default [] */
  readonly allowedPeers: readonly string[];
  /** Cluster master key, 32 bytes (base64 in config). Secret: never logged. @default generated into the data dir */
  readonly masterKey: Buffer | undefined;
  /** Node disk budget for stored messages. @default 10 GiB */
  readonly maxDiskBytes: number;
  /** Durable destinations per node. @default 10000 */
  readonly maxDestinations: number;
  /** De-duplication window. @default 120000 */
  readonly dedupWindowMs: number;
  /** Default ack timeout of consumer groups. @default 5000 */
  readonly ackTimeoutMs: number;
  /** Default deliveries before dead-lettering. @default 5 */
  readonly maxDeliveries: number;
  /** Default PULL batch. @default 100 */
  readonly batchSize: number;
  /** Default max messages per destination. @default 1000000 */
  readonly maxMsgsPerDestination: number;
  /** Default max stored bytes per destination. @default 1 GiB */
  readonly maxBytesPerDestination: number;
  /** Consumer groups per destination. @default 64 */
  readonly maxGroupsPerDestination: number;
  /** Whether the node serves the monitoring HTTP endpoints (/healthz, /readyz, /varz). @default true */
  readonly monitorEnabled: boolean;
  /** Monitoring HTTP bind address. @default the client host */
  readonly monitorHost: string | undefined;
  /** Monitoring HTTP port; 0 picks a free one. @default client port + 4000 (8222), or 0 when the client port is 0 */
  readonly monitorPort: number | undefined;
  /** Whether the node joins a mesh; off, it is a standalone node. @default true */
  readonly meshEnabled: boolean;
  /** Mesh (libp2p) bind address. @default the client host */
  readonly meshHost: string | undefined;
  /** Mesh (libp2p) port; 0 picks a free one. @default client port + 2000, or 0 when the client port is 0 */
  readonly meshPort: number | undefined;
  /** Members to bootstrap from: `host:port` or multiaddrs (M1.5). @default [] */
  readonly join: readonly string[];
  /**
   * Serve the client protocol on the mesh port too, over libp2p streams of
   * `/swarmmq/client/1.0.0` (SECURITY.md SEC6): for applications inside the
   * cluster's trusted network, admitted as nodes are (cluster key,
   * allow-list). Needs the mesh. @default true
   */
  readonly clientStreams: boolean;
  /** mDNS discovery on the LAN: `auto` is on when the mesh binds a non-loopback address (M1.4). @default "auto" */
  readonly mdns: 'auto' | 'on' | 'off';
  /** Find nodes of the same cluster on this host through a registry directory (M1.3). @default true */
  readonly localDiscovery: boolean;
  /** Registry directory for local discovery. @default "<os tmpdir>/swarmmq-registry" */
  readonly registryDir: string | undefined;
  /** Copies of each destination, owner included (M3.1). @default 3 */
  readonly replicationFactor: number;
  /** Copies that must be synced before a send is confirmed; 0 = every live member of the preference list (M5.2). @default 0 */
  readonly writeQuorum: number;
  /** Membership heartbeat interval (M2.2). @default 1000 */
  readonly heartbeatIntervalMs: number;
  /** Silence after which a member is dropped (M2.3). @default 3500 */
  readonly memberTimeoutMs: number;
  /** Destinations declared in the config file. */
  readonly destinations: readonly DestinationConfig[];
}

/** A destination declared under `destinations:` (protocol/DURABLE.md D1.2). */
export interface DestinationConfig {
  readonly name: string;
  readonly settings: {
    readonly defaultTtlMs?: number;
    readonly maxMsgs?: number;
    readonly maxBytes?: number;
    readonly deadLetterExpired?: boolean;
    readonly maxDeliveries?: number;
    readonly ackTimeoutMs?: number;
  };
}

type Kind =
  | 'string'
  | 'name'
  | 'host'
  | 'port'
  | 'bytes'
  | 'duration'
  | 'count'
  | 'logLevel'
  | 'logFormat'
  | 'masterKey'
  | 'clusterKey'
  | 'file'
  | 'peers'
  | 'bool'
  | 'list'
  | 'mdns';

export interface OptionSpec {
  readonly key: keyof NodeOptions;
  /** Dotted path in the YAML file. */
  readonly yaml: string;
  /** Environment variable. */
  readonly env: string;
  /** Long flag without dashes; none for secrets (they would show in `ps`). */
  readonly flag?: string;
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
    key: 'logFormat',
    yaml: 'node.log_format',
    env: 'SWARMMQ_LOG_FORMAT',
    flag: 'log-format',
    kind: 'logFormat',
    describe: 'log lines: json, pretty (human-readable), auto (pretty on a terminal, else json)',
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
    key: 'maxSubscriptionTokens',
    yaml: 'limits.max_subscription_tokens',
    env: 'SWARMMQ_MAX_SUBSCRIPTION_TOKENS',
    flag: 'max-subscription-tokens',
    kind: 'count',
    min: 1,
    describe: 'subject tokens over all client subscriptions of the node',
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
  {
    key: 'maxConnectionRate',
    yaml: 'limits.max_connection_rate',
    env: 'SWARMMQ_MAX_CONNECTION_RATE',
    flag: 'max-connection-rate',
    kind: 'count',
    min: 0,
    describe: 'new connections per second from one client address (0: no limit)',
  },
  {
    key: 'authTimeoutMs',
    yaml: 'authorization.timeout',
    env: 'SWARMMQ_AUTH_TIMEOUT',
    flag: 'auth-timeout',
    kind: 'duration',
    min: 10,
    describe: 'time a client has to authenticate when authorization is on',
  },
  {
    key: 'tlsCertFile',
    yaml: 'tls.cert_file',
    env: 'SWARMMQ_TLS_CERT',
    flag: 'tls-cert',
    kind: 'file',
    describe: 'PEM certificate for TLS on the client port (with --tls-key)',
  },
  {
    key: 'tlsKeyFile',
    yaml: 'tls.key_file',
    env: 'SWARMMQ_TLS_KEY',
    flag: 'tls-key',
    kind: 'file',
    describe: 'PEM private key for TLS on the client port',
  },
  {
    key: 'tlsCaFile',
    yaml: 'tls.ca_file',
    env: 'SWARMMQ_TLS_CA',
    flag: 'tls-ca',
    kind: 'file',
    describe: 'PEM CA bundle that client certificates must chain to',
  },
  {
    key: 'tlsVerify',
    yaml: 'tls.verify',
    env: 'SWARMMQ_TLS_VERIFY',
    flag: 'tls-verify',
    kind: 'bool',
    describe: 'require a client certificate signed by --tls-ca (mutual TLS)',
  },
  {
    key: 'tlsTimeoutMs',
    yaml: 'tls.timeout',
    env: 'SWARMMQ_TLS_TIMEOUT',
    flag: 'tls-timeout',
    kind: 'duration',
    min: 10,
    describe: 'time a client has to finish the TLS handshake',
  },
  {
    key: 'clusterKey',
    yaml: 'security.cluster_key',
    env: 'SWARMMQ_CLUSTER_KEY',
    kind: 'clusterKey',
    describe: 'mesh pre-shared key: 64 hex digits (`swarmmq gen cluster-key`); only holders join',
  },
  {
    key: 'allowedPeers',
    yaml: 'security.allowed_peers',
    env: 'SWARMMQ_ALLOWED_PEERS',
    flag: 'allowed-peer',
    kind: 'peers',
    describe: 'peer ids allowed in the mesh (repeatable; default: any holder of the cluster key)',
  },
  {
    key: 'masterKey',
    yaml: 'security.master_key',
    env: 'SWARMMQ_MASTER_KEY',
    kind: 'masterKey',
    describe: 'cluster master key for encryption at rest (base64 of 32 bytes)',
  },
  {
    key: 'maxDiskBytes',
    yaml: 'storage.max_disk_usage',
    env: 'SWARMMQ_MAX_DISK_USAGE',
    flag: 'max-disk-usage',
    kind: 'bytes',
    min: 1024 * 1024,
    describe: 'disk budget for stored messages',
  },
  {
    key: 'dedupWindowMs',
    yaml: 'storage.dedup_window',
    env: 'SWARMMQ_DEDUP_WINDOW',
    flag: 'dedup-window',
    kind: 'duration',
    min: 0,
    describe: 'a send whose id was stored this recently is a duplicate',
  },
  {
    key: 'ackTimeoutMs',
    yaml: 'performance.ack_timeout',
    env: 'SWARMMQ_ACK_TIMEOUT',
    flag: 'ack-timeout',
    kind: 'duration',
    min: 10,
    describe: 'default ack timeout of consumer groups',
  },
  {
    key: 'maxDeliveries',
    yaml: 'performance.max_deliveries',
    env: 'SWARMMQ_MAX_DELIVERIES',
    flag: 'max-deliveries',
    kind: 'count',
    min: 0,
    describe: 'deliveries per group before dead-lettering (0: unlimited)',
  },
  {
    key: 'batchSize',
    yaml: 'performance.batch_size',
    env: 'SWARMMQ_BATCH_SIZE',
    flag: 'batch-size',
    kind: 'count',
    min: 1,
    describe: 'messages a PULL returns when it names no batch',
  },
  {
    key: 'maxDestinations',
    yaml: 'limits.max_destinations',
    env: 'SWARMMQ_MAX_DESTINATIONS',
    flag: 'max-destinations',
    kind: 'count',
    min: 1,
    describe: 'durable destinations per node',
  },
  {
    key: 'maxMsgsPerDestination',
    yaml: 'limits.max_msgs_per_destination',
    env: 'SWARMMQ_MAX_MSGS_PER_DESTINATION',
    flag: 'max-msgs-per-destination',
    kind: 'count',
    min: 1,
    describe: 'default message limit of a destination',
  },
  {
    key: 'maxBytesPerDestination',
    yaml: 'limits.max_bytes_per_destination',
    env: 'SWARMMQ_MAX_BYTES_PER_DESTINATION',
    flag: 'max-bytes-per-destination',
    kind: 'bytes',
    min: 1024,
    describe: 'default stored-bytes limit of a destination',
  },
  {
    key: 'maxGroupsPerDestination',
    yaml: 'limits.max_groups_per_destination',
    env: 'SWARMMQ_MAX_GROUPS_PER_DESTINATION',
    flag: 'max-groups-per-destination',
    kind: 'count',
    min: 1,
    describe: 'consumer groups per destination',
  },
  {
    key: 'monitorEnabled',
    yaml: 'monitor.enabled',
    env: 'SWARMMQ_MONITOR',
    flag: 'monitor',
    kind: 'bool',
    describe: 'serve the monitoring HTTP endpoints /healthz, /readyz and /varz',
  },
  {
    key: 'monitorHost',
    yaml: 'monitor.host',
    env: 'SWARMMQ_MONITOR_HOST',
    flag: 'monitor-host',
    kind: 'host',
    describe: 'monitoring HTTP bind address (default: the client host)',
  },
  {
    key: 'monitorPort',
    yaml: 'monitor.port',
    env: 'SWARMMQ_MONITOR_PORT',
    flag: 'monitor-port',
    kind: 'port',
    describe: 'monitoring HTTP port (default: client port + 4000, so 8222; 0 picks a free one)',
  },
  {
    key: 'meshEnabled',
    yaml: 'cluster.enabled',
    env: 'SWARMMQ_MESH',
    flag: 'mesh',
    kind: 'bool',
    describe: 'join a mesh (false: a standalone node)',
  },
  {
    key: 'meshHost',
    yaml: 'cluster.host',
    env: 'SWARMMQ_MESH_HOST',
    flag: 'mesh-host',
    kind: 'host',
    describe: 'mesh (libp2p) bind address (default: the client host)',
  },
  {
    key: 'meshPort',
    yaml: 'cluster.port',
    env: 'SWARMMQ_MESH_PORT',
    flag: 'mesh-port',
    kind: 'port',
    describe: 'mesh (libp2p) port (default: client port + 2000; 0 picks a free one)',
  },
  {
    key: 'join',
    yaml: 'cluster.join',
    env: 'SWARMMQ_JOIN',
    flag: 'join',
    kind: 'list',
    describe: 'member to bootstrap from, host:port or multiaddr (repeatable; env: comma-separated)',
  },
  {
    key: 'clientStreams',
    yaml: 'cluster.client_streams',
    env: 'SWARMMQ_CLIENT_STREAMS',
    flag: 'client-streams',
    kind: 'bool',
    describe:
      'also serve clients over libp2p on the mesh port (/swarmmq/client/1.0.0; admitted and trusted as nodes are)',
  },
  {
    key: 'mdns',
    yaml: 'cluster.mdns',
    env: 'SWARMMQ_MDNS',
    flag: 'mdns',
    kind: 'mdns',
    describe: 'mDNS discovery: auto (on for a non-loopback mesh host), on, off',
  },
  {
    key: 'localDiscovery',
    yaml: 'cluster.local_discovery',
    env: 'SWARMMQ_LOCAL_DISCOVERY',
    flag: 'local-discovery',
    kind: 'bool',
    describe: 'find nodes of the same cluster on this host',
  },
  {
    key: 'registryDir',
    yaml: 'cluster.registry_dir',
    env: 'SWARMMQ_REGISTRY_DIR',
    flag: 'registry-dir',
    kind: 'string',
    describe: 'directory where nodes on this host announce themselves',
  },
  {
    key: 'replicationFactor',
    yaml: 'cluster.replication_factor',
    env: 'SWARMMQ_REPLICATION_FACTOR',
    flag: 'replication-factor',
    kind: 'count',
    min: 1,
    describe: 'copies of each destination, owner included (capped at the cluster size)',
  },
  {
    key: 'writeQuorum',
    yaml: 'cluster.write_quorum',
    env: 'SWARMMQ_WRITE_QUORUM',
    flag: 'write-quorum',
    kind: 'count',
    describe: 'copies synced before a send is confirmed (0: every live replica)',
  },
  {
    key: 'heartbeatIntervalMs',
    yaml: 'cluster.heartbeat_interval',
    env: 'SWARMMQ_HEARTBEAT_INTERVAL',
    flag: 'heartbeat-interval',
    kind: 'duration',
    min: 50,
    describe: 'membership heartbeat interval',
  },
  {
    key: 'memberTimeoutMs',
    yaml: 'cluster.member_timeout',
    env: 'SWARMMQ_MEMBER_TIMEOUT',
    flag: 'member-timeout',
    kind: 'duration',
    min: 200,
    describe: 'silence after which a member is dropped',
  },
];

export const DEFAULT_OPTIONS: NodeOptions = Object.freeze({
  host: D.DEFAULT_HOST,
  port: D.DEFAULT_CLIENT_PORT,
  dataDir: D.DEFAULT_DATA_DIR,
  name: undefined,
  logLevel: D.DEFAULT_LOG_LEVEL,
  logFormat: D.DEFAULT_LOG_FORMAT,
  clusterName: D.DEFAULT_CLUSTER_NAME,
  maxPayloadBytes: D.DEFAULT_MAX_PAYLOAD_BYTES,
  maxControlLineBytes: D.DEFAULT_MAX_CONTROL_LINE_BYTES,
  maxSubscriptions: D.DEFAULT_MAX_SUBSCRIPTIONS,
  maxSubscriptionTokens: D.DEFAULT_MAX_SUBSCRIPTION_TOKENS,
  maxConnections: D.DEFAULT_MAX_CONNECTIONS,
  maxPendingBytes: D.DEFAULT_MAX_PENDING_BYTES,
  maxTotalPendingBytes: D.DEFAULT_MAX_TOTAL_PENDING_BYTES,
  pingIntervalMs: D.DEFAULT_PING_INTERVAL_MS,
  maxPingsOut: D.DEFAULT_MAX_PINGS_OUT,
  maxConnectionRate: D.DEFAULT_MAX_CONNECTION_RATE,
  auth: undefined,
  authTimeoutMs: D.DEFAULT_AUTH_TIMEOUT_MS,
  tlsCertFile: undefined,
  tlsKeyFile: undefined,
  tlsCaFile: undefined,
  tlsVerify: false,
  tlsTimeoutMs: D.DEFAULT_TLS_TIMEOUT_MS,
  clusterKey: undefined,
  allowedPeers: Object.freeze([]),
  masterKey: undefined,
  maxDiskBytes: D.DEFAULT_MAX_DISK_BYTES,
  maxDestinations: D.DEFAULT_MAX_DESTINATIONS,
  dedupWindowMs: D.DEFAULT_DEDUP_WINDOW_MS,
  ackTimeoutMs: D.DEFAULT_ACK_TIMEOUT_MS,
  maxDeliveries: D.DEFAULT_MAX_DELIVERIES,
  batchSize: D.DEFAULT_BATCH_SIZE,
  maxMsgsPerDestination: D.DEFAULT_MAX_MSGS_PER_DESTINATION,
  maxBytesPerDestination: D.DEFAULT_MAX_BYTES_PER_DESTINATION,
  maxGroupsPerDestination: D.DEFAULT_MAX_GROUPS_PER_DESTINATION,
  monitorEnabled: true,
  monitorHost: undefined,
  monitorPort: undefined,
  meshEnabled: true,
  meshHost: undefined,
  meshPort: undefined,
  join: Object.freeze([]),
  // SEC6.3: a libp2p client is trusted as a node is, so the transport is offered only when asked for.
  clientStreams: false,
  mdns: 'auto',
  localDiscovery: true,
  registryDir: undefined,
  replicationFactor: D.DEFAULT_REPLICATION_FACTOR,
  writeQuorum: 0,
  heartbeatIntervalMs: D.DEFAULT_HEARTBEAT_INTERVAL_MS,
  memberTimeoutMs: D.DEFAULT_MEMBER_TIMEOUT_MS,
  destinations: Object.freeze([]),
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
    if (raw !== undefined) out[spec.key] = parseValue(spec, raw, `--${spec.flag ?? spec.key}`);
  }
  for (const [k, v] of Object.entries(sources.overrides ?? {})) {
    if (k === 'destinations') {
      if (v !== undefined) out.destinations = Object.freeze([...(v as DestinationConfig[])]);
      continue;
    }
    if (k === 'auth') {
      out.auth = v;
      continue;
    }
    const spec = OPTION_SPECS.find((s) => s.key === k);
    if (spec === undefined) throw new ConfigError(k, 'unknown option');
    if (v !== undefined) out[k] = parseValue(spec, v, k);
  }
  const opts = out as unknown as NodeOptions;
  if (opts.memberTimeoutMs <= opts.heartbeatIntervalMs) {
    throw new ConfigError('cluster.member_timeout', 'must be longer than cluster.heartbeat_interval');
  }
  if (opts.maxPayloadBytes > D.MAX_PAYLOAD_LIMIT_BYTES) {
    // A message crosses the mesh (forwarded, replicated, handed off) in one frame (MESH.md M4.1).
    throw new ConfigError(
      'performance.max_message_size',
      `must be at most ${D.MAX_PAYLOAD_LIMIT_BYTES / 1024} KiB: a message crosses the mesh in one frame`,
    );
  }
  if (opts.maxTotalPendingBytes < opts.maxPendingBytes) {
    throw new ConfigError('limits.max_total_pending', 'must be at least limits.max_pending');
  }
  checkTls(opts);
  return Object.freeze(opts);
}

/** SEC4.1: a certificate needs its key, mutual TLS needs a CA, and each file must be PEM. */
function checkTls(o: NodeOptions): void {
  if ((o.tlsCertFile === undefined) !== (o.tlsKeyFile === undefined)) {
    throw new ConfigError(
      o.tlsCertFile === undefined ? 'tls.cert_file' : 'tls.key_file',
      'tls.cert_file and tls.key_file go together',
    );
  }
  if (o.tlsCaFile !== undefined && o.tlsCertFile === undefined) {
    throw new ConfigError('tls.ca_file', 'needs tls.cert_file and tls.key_file');
  }
  if (o.tlsVerify && o.tlsCaFile === undefined) {
    throw new ConfigError('tls.verify', 'needs tls.ca_file to check client certificates against');
  }
  const pem: [string | undefined, string, RegExp][] = [
    [o.tlsCertFile, 'tls.cert_file', /-----BEGIN CERTIFICATE-----/],
    [o.tlsKeyFile, 'tls.key_file', /-----BEGIN [A-Z ]*PRIVATE KEY-----/],
    [o.tlsCaFile, 'tls.ca_file', /-----BEGIN CERTIFICATE-----/],
  ];
  for (const [file, key, marker] of pem) {
    if (file === undefined) continue;
    let text: string;
    try {
      text = readFileSync(file, 'latin1');
    } catch (err) {
      throw new ConfigError(
        key,
        `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      );
    }
    if (!marker.test(text))
      throw new ConfigError(
        key,
        `${file} holds no PEM ${key === 'tls.key_file' ? 'private key' : 'certificate'}`,
      );
  }
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
  for (const [section, raw] of Object.entries(root)) {
    let body = raw;
    if (section === 'destinations') {
      out.destinations = Object.freeze(parseDestinations(body));
      continue;
    }
    if (section === 'authorization' && body !== null && typeof body === 'object' && !Array.isArray(body)) {
      // SEC2.1: keys and users are lists of mappings; the rest of the section are ordinary options.
      const rest = { ...(body as Record<string, unknown>) };
      const lists: Record<string, unknown> = {};
      for (const k of AUTH_LIST_KEYS) {
        lists[k] = rest[k];
        delete rest[k];
      }
      out.auth = parseAuthorization(lists);
      body = rest;
    }
    if (!sections.has(section)) {
      throw new ConfigError(section, `unknown section (known: ${[...sections].join(', ')}, destinations)`);
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
    case 'logFormat':
      if (typeof raw !== 'string' || !(LOG_FORMATS as readonly string[]).includes(raw)) {
        return fail(`expected one of ${LOG_FORMATS.join(', ')}, got ${JSON.stringify(raw)}`);
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
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      if (typeof raw === 'string' && /^(true|yes|on|1)$/i.test(raw.trim())) return true;
      if (typeof raw === 'string' && /^(false|no|off|0)$/i.test(raw.trim())) return false;
      return fail(`expected true or false, got ${JSON.stringify(raw)}`);
    }
    case 'mdns': {
      const v = typeof raw === 'boolean' ? (raw ? 'on' : 'off') : raw;
      if (v === 'auto' || v === 'on' || v === 'off') return v;
      return fail(`expected auto, on or off, got ${JSON.stringify(raw)}`);
    }
    case 'list': {
      // YAML gives a list, env a comma-separated text, flags an array (repeatable) or a text.
      const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : undefined;
      if (items === undefined) return fail('expected a list of addresses');
      const out: string[] = [];
      for (const item of items) {
        if (typeof item !== 'string') return fail('expected a list of addresses');
        const s = item.trim();
        if (s === '') continue;
        if (/\s/.test(s) || s.length > 512) return fail(`invalid address ${JSON.stringify(s.slice(0, 80))}`);
        out.push(s);
      }
      return Object.freeze(out);
    }
    case 'file': {
      if (typeof raw !== 'string' || raw.trim() === '') return fail('expected a file path');
      return raw;
    }
    case 'clusterKey': {
      if (Buffer.isBuffer(raw)) return raw.length === 32 ? raw : fail('must be 32 bytes');
      // The value itself is never echoed: it is a secret. The swarm.key file form is taken too.
      const hex = typeof raw === 'string' ? raw.trim().split(/\s+/).pop()! : '';
      if (!/^[0-9a-fA-F]{64}$/.test(hex)) return fail('expected 64 hex digits (swarmmq gen cluster-key)');
      return Buffer.from(hex, 'hex');
    }
    case 'peers': {
      const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : undefined;
      if (items === undefined) return fail('expected a list of peer ids');
      const out: string[] = [];
      for (const item of items) {
        const s = typeof item === 'string' ? item.trim() : '';
        if (s === '') continue;
        try {
          peerIdFromString(s);
        } catch {
          return fail(`${JSON.stringify(s.slice(0, 80))} is not a peer id (the node logs its own as peerId)`);
        }
        out.push(s);
      }
      return Object.freeze(out);
    }
    case 'masterKey': {
      if (Buffer.isBuffer(raw)) return raw.length === 32 ? raw : fail('must be 32 bytes');
      // The value itself is never echoed: it is a secret.
      if (typeof raw !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(raw.trim()))
        return fail('expected base64 of 32 bytes');
      const key = Buffer.from(raw.trim(), 'base64');
      return key.length === 32 ? key : fail(`expected base64 of 32 bytes, got ${key.length} bytes`);
    }
  }
}

const DESTINATION_KEYS: Record<
  string,
  { key: keyof DestinationConfig['settings']; kind: 'duration' | 'count' | 'bytes' | 'bool' }
> = {
  ttl: { key: 'defaultTtlMs', kind: 'duration' },
  max_msgs: { key: 'maxMsgs', kind: 'count' },
  max_bytes: { key: 'maxBytes', kind: 'bytes' },
  dead_letter_expired: { key: 'deadLetterExpired', kind: 'bool' },
  max_deliveries: { key: 'maxDeliveries', kind: 'count' },
  ack_timeout: { key: 'ackTimeoutMs', kind: 'duration' },
};

/** `destinations:` is a list of names, or of mappings with a name and per-destination settings. */
function parseDestinations(body: unknown): DestinationConfig[] {
  if (body === null || body === undefined) return [];
  if (!Array.isArray(body))
    throw new ConfigError('destinations', 'must be a list of names or of {name, ...} mappings');
  const seen = new Set<string>();
  return body.map((entry: unknown, i) => {
    const where = `destinations[${i}]`;
    let name: unknown = entry;
    const settings: Record<string, unknown> = {};
    if (entry !== null && typeof entry === 'object' && !Array.isArray(entry)) {
      const e = entry as Record<string, unknown>;
      name = e.name;
      for (const [k, v] of Object.entries(e)) {
        if (k === 'name') continue;
        const d = DESTINATION_KEYS[k];
        if (d === undefined) {
          throw new ConfigError(
            `${where}.${k}`,
            `unknown key (known: name, ${Object.keys(DESTINATION_KEYS).join(', ')})`,
          );
        }
        settings[d.key] = parseDestinationValue(d.kind, v, `${where}.${k}`);
      }
    }
    // DURABLE.md D1.1, checked here so that a bad name is a config error (exit 2).
    if (
      typeof name !== 'string' ||
      /\s/.test(name) ||
      !isValidPublishSubject(name) ||
      Buffer.byteLength(name) > 255
    ) {
      throw new ConfigError(
        `${where}.name`,
        'expected a subject without wildcards of at most 255 bytes, e.g. orders.eu',
      );
    }
    if (seen.has(name)) throw new ConfigError(`${where}.name`, `destination ${name} is listed twice`);
    seen.add(name);
    return { name, settings };
  });
}

function parseDestinationValue(
  kind: 'duration' | 'count' | 'bytes' | 'bool',
  v: unknown,
  where: string,
): number | boolean {
  if (kind === 'bool') {
    if (typeof v !== 'boolean') throw new ConfigError(where, 'expected true or false');
    return v;
  }
  if (kind === 'count') {
    const n = toInteger(v);
    if (n === undefined) throw new ConfigError(where, `expected a whole number, got ${JSON.stringify(v)}`);
    return n;
  }
  const n = kind === 'bytes' ? parseBytes(v) : parseDurationMs(v);
  if (typeof n === 'string') throw new ConfigError(where, n);
  if (where.endsWith('.ack_timeout') && n < 10) throw new ConfigError(where, 'must be at least 10 ms');
  return n;
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
