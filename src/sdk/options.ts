/**
 * What an application passes to `connect()`, and the defaults it gets. Every
 * limit the SDK keeps is here, with its unit in its name.
 */
import { InvalidArgumentError } from './errors.js';

/** Files (PEM contents) for TLS to the nodes' client port (SECURITY.md SEC4). */
export interface TlsOptions {
  /** CA bundle to trust instead of the system's. */
  ca?: Uint8Array | string;
  /** Client certificate and key, for nodes that verify clients (SEC4.2). */
  cert?: Uint8Array | string;
  /** The private key of `cert`. */
  key?: Uint8Array | string;
}

/** The libp2p client transport (SECURITY.md, "Transports offered to clients"). */
export interface Libp2pOptions {
  /** The cluster key (64 hex digits, as `security.cluster_key`), when the cluster has one. */
  clusterKey?: string;
  /**
   * This client's libp2p private key (protobuf bytes, as in a node's `peer.key`), so that its
   * peer id can be listed in `security.allowed_peers`. Default: a new key per process.
   */
  privateKey?: Uint8Array;
}

/** Backoff after a lost connection. */
export interface ReconnectOptions {
  /**
   * First wait after a lost connection; each later wait doubles up to `maxDelayMs`, and each is
   * drawn at random between half and all of that (jitter, so clients do not come back in step).
   * @default 100
   */
  initialDelayMs?: number;
  /** @default 2000 */
  maxDelayMs?: number;
  /**
   * Attempts in a row, over all known nodes, before the client gives up and closes
   * (event `closed` with a DisconnectedError).
   * @default 120
   */
  maxAttempts?: number;
}

/** What `connect()` takes: where the cluster is, credentials, and the client's limits. */
export interface ConnectOptions {
  /**
   * Seed addresses: `host:port` (or `nats://host:port`) for TCP, or libp2p multiaddrs
   * (`/ip4/…/tcp/…/p2p/<peer-id>`) with `transport: 'libp2p'`. One is enough: the SDK
   * learns the rest of the cluster from it.
   */
  servers: readonly string[];
  /** @default 'tcp' */
  transport?: 'tcp' | 'libp2p';
  /** An API key (SECURITY.md SEC2.1). */
  token?: string;
  /** A user name (SEC2.1), with `password`. */
  user?: string;
  /** The user's password. */
  password?: string;
  /** TLS to the client port; given, TLS is required. Not used over libp2p (noise encrypts it). */
  tls?: TlsOptions;
  /** Options of the libp2p transport. */
  libp2p?: Libp2pOptions;
  /** CONNECT name: nodes store it as the producer of sent messages (DURABLE.md D3.2). */
  name?: string;
  /** @default true: durable calls go to each destination's owner (MESH.md M3.2); false: all go through one node. */
  routeToOwner?: boolean;
  /** How the client reconnects after losing its node. */
  reconnect?: ReconnectOptions;
  /**
   * Sends in flight (sent, not yet confirmed) over the whole client; `send()` waits for a slot.
   * @default 1024
   */
  maxSendsInFlight?: number;
  /**
   * How long one `send()` keeps trying (re-routing and retrying with its id) before it fails
   * with a TimeoutError.
   * @default 60000
   */
  sendTimeoutMs?: number;
  /** @default 5000 */
  requestTimeoutMs?: number;
  /** Bounds each connection attempt (TCP, TLS, CONNECT). @default 5000 */
  connectTimeoutMs?: number;
  /** Every connection is pinged this often, to find a node that froze or was cut off. @default 2000 */
  pingIntervalMs?: number;
  /**
   * A PING unanswered this long drops its connection; the calls on it are retried elsewhere.
   * Generous, because a busy node answers PINGs in turn with everything before them.
   * @default 10000
   */
  pingTimeoutMs?: number;
  /** Bounds `connect()` as a whole. */
  signal?: AbortSignal;
}

/** The options with every default filled in. */
export interface ResolvedOptions extends Required<
  Pick<
    ConnectOptions,
    | 'transport'
    | 'routeToOwner'
    | 'maxSendsInFlight'
    | 'sendTimeoutMs'
    | 'requestTimeoutMs'
    | 'connectTimeoutMs'
    | 'pingIntervalMs'
    | 'pingTimeoutMs'
  >
> {
  servers: readonly string[];
  reconnect: Required<ReconnectOptions>;
  auth: { token?: string; user?: string; password?: string; name?: string };
  tls: TlsOptions | undefined;
  libp2p: Libp2pOptions;
}

/** Backoff after a lost connection: 100 ms doubling to 2 s, with jitter (about 4 min of attempts). */
const DEFAULT_RECONNECT: Required<ReconnectOptions> = {
  initialDelayMs: 100,
  maxDelayMs: 2000,
  maxAttempts: 120,
};
/** A window that keeps a node's group commit full (DURABLE.md D3.6 stops reading at 1024 sends). */
const DEFAULT_MAX_SENDS_IN_FLIGHT = 1024;
/** Long enough to ride out an owner's failover (M4.5 waits up to 15 s for a new owner, M7.2 up to 20 s for a merge). */
const DEFAULT_SEND_TIMEOUT_MS = 60_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 5000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
const DEFAULT_PING_INTERVAL_MS = 2000;
/** M2.3 drops a silent member after 3.5 s; a client's own check may be slower, but must not misjudge a busy node. */
const DEFAULT_PING_TIMEOUT_MS = 10_000;

function positiveInt(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < 1)
    throw new InvalidArgumentError(`${name} must be a positive integer, got ${v}`);
  return v;
}

export function resolveOptions(opts: ConnectOptions): ResolvedOptions {
  if (!Array.isArray(opts.servers) || opts.servers.length === 0) {
    throw new InvalidArgumentError('servers must list at least one address');
  }
  const transport = opts.transport ?? 'tcp';
  if (transport !== 'tcp' && transport !== 'libp2p') {
    throw new InvalidArgumentError(`transport must be 'tcp' or 'libp2p', got ${String(transport)}`);
  }
  const r = opts.reconnect ?? {};
  return {
    servers: [...opts.servers],
    transport,
    routeToOwner: opts.routeToOwner ?? true,
    maxSendsInFlight: positiveInt('maxSendsInFlight', opts.maxSendsInFlight, DEFAULT_MAX_SENDS_IN_FLIGHT),
    sendTimeoutMs: positiveInt('sendTimeoutMs', opts.sendTimeoutMs, DEFAULT_SEND_TIMEOUT_MS),
    requestTimeoutMs: positiveInt('requestTimeoutMs', opts.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS),
    connectTimeoutMs: positiveInt('connectTimeoutMs', opts.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS),
    pingIntervalMs: positiveInt('pingIntervalMs', opts.pingIntervalMs, DEFAULT_PING_INTERVAL_MS),
    pingTimeoutMs: positiveInt('pingTimeoutMs', opts.pingTimeoutMs, DEFAULT_PING_TIMEOUT_MS),
    reconnect: {
      initialDelayMs: positiveInt(
        'reconnect.initialDelayMs',
        r.initialDelayMs,
        DEFAULT_RECONNECT.initialDelayMs,
      ),
      maxDelayMs: positiveInt('reconnect.maxDelayMs', r.maxDelayMs, DEFAULT_RECONNECT.maxDelayMs),
      maxAttempts: positiveInt('reconnect.maxAttempts', r.maxAttempts, DEFAULT_RECONNECT.maxAttempts),
    },
    auth: { token: opts.token, user: opts.user, password: opts.password, name: opts.name },
    tls: opts.tls,
    libp2p: opts.libp2p ?? {},
  };
}

/** The wait before attempt `attempt` (0-based): exponential, capped, with jitter in [half, all]. */
export function backoffMs(r: Required<ReconnectOptions>, attempt: number): number {
  const full = Math.min(r.maxDelayMs, r.initialDelayMs * 2 ** Math.min(attempt, 30));
  return Math.round(full / 2 + (Math.random() * full) / 2);
}
