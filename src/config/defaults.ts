/**
 * Every default of a SwarmMQ node, in one place. Units are the last word of
 * each name. Where a value follows nats-server 2.9, the comment says so: stock
 * NATS clients are tuned against those numbers.
 */

/** Client port bind address. Loopback, so a node started by hand is not exposed. */
export const DEFAULT_HOST = '127.0.0.1';

/** Client port; 4222 is the NATS port, so stock clients find us without flags. */
export const DEFAULT_CLIENT_PORT = 4222;

/** Where a node keeps its state; relative to the working directory. */
export const DEFAULT_DATA_DIR = './data';

/** Cluster name; nodes with different names never merge (mesh issue). */
export const DEFAULT_CLUSTER_NAME = 'swarmmq';

export const DEFAULT_LOG_LEVEL = 'info';

/**
 * Log line format. `auto` is pretty (human-readable) when stdout is a
 * terminal and JSON lines otherwise, so a person at a shell reads lines and
 * a log shipper, `swarmmq cluster` or a test reads JSON without a flag.
 */
export const DEFAULT_LOG_FORMAT = 'auto';

/**
 * Largest payload a client may publish, announced in INFO as `max_payload`.
 * 1 MiB as in nats-server and the original architecture's "max message size".
 */
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;

/** Longest control line (the op line, without payload); nats-server 2.9 uses 4096. */
export const DEFAULT_MAX_CONTROL_LINE_BYTES = 4096;

/**
 * Subscriptions per connection. nats-server has no default cap; we set one
 * because each subscription costs memory in the trie. Stock clients multiplex
 * requests over one inbox subscription, so real applications stay far below.
 */
export const DEFAULT_MAX_SUBSCRIPTIONS = 4096;

/**
 * Client connections per node. Together with the pending-bytes limits this
 * bounds what connections can make the node hold.
 */
export const DEFAULT_MAX_CONNECTIONS = 1024;

/**
 * Outbound bytes queued for one connection (not yet taken by the kernel)
 * before it is cut off as a slow consumer: 64 MiB, as nats-server, so a
 * subscriber that keeps up with nats-server keeps up here too. The node-wide
 * limit below keeps many stalled readers from taking the node's memory.
 */
export const DEFAULT_MAX_PENDING_BYTES = 64 * 1024 * 1024;

/**
 * Outbound bytes queued over all connections. Past it, a connection holding
 * more than its fair share is cut off as a slow consumer, so the total stays
 * bounded whatever the number of stalled readers.
 */
export const DEFAULT_MAX_TOTAL_PENDING_BYTES = 256 * 1024 * 1024;

/**
 * New connections per second from one client address (a token bucket with a
 * burst of the same size). Stops one host from churning through the
 * connection limit or the TLS and scrypt work of a handshake; generous
 * enough for a reconnect storm of a few dozen clients behind one NAT.
 */
export const DEFAULT_MAX_CONNECTION_RATE = 100;

/** Client addresses whose connection rate is tracked at once; the oldest are forgotten first. */
export const MAX_RATE_TRACKED_ADDRESSES = 10_000;

/** Time a client has to authenticate with CONNECT; 2 s as in nats-server. */
export const DEFAULT_AUTH_TIMEOUT_MS = 2000;

/** Time a client has to finish the TLS handshake after INFO; 2 s as nats-server's tls timeout. */
export const DEFAULT_TLS_TIMEOUT_MS = 2000;

/**
 * Tokens in a subscription subject. Each token of an index entry costs a
 * few hundred bytes, so without this one SUB line under the control-line
 * limit could hold a megabyte; 32 tokens is far deeper than subjects go.
 */
export const MAX_SUBJECT_TOKENS = 32;

/**
 * Subject tokens over all client subscriptions of a node. An index entry
 * costs about 400 bytes per token when no prefix is shared, so this bounds
 * the subject index near 400 MiB whatever clients subscribe to.
 */
export const DEFAULT_MAX_SUBSCRIPTION_TOKENS = 1_000_000;

/** Server-initiated PING interval; 2 minutes as in nats-server. */
export const DEFAULT_PING_INTERVAL_MS = 2 * 60 * 1000;

/** Unanswered PINGs after which a connection is closed as stale; 2 as in nats-server. */
export const DEFAULT_MAX_PINGS_OUT = 2;

/** Time a consumer group has to settle a delivery before it is redelivered; 5 s as in the original architecture. */
export const DEFAULT_ACK_TIMEOUT_MS = 5000;

/** Deliveries per group before a message is dead-lettered. */
export const DEFAULT_MAX_DELIVERIES = 5;

/** Messages a PULL returns when it names no batch size; the original architecture's batch size. */
export const DEFAULT_BATCH_SIZE = 100;

/** Disk budget per node of the original architecture; sends beyond it are refused. */
export const DEFAULT_MAX_DISK_BYTES = 10 * 1024 * 1024 * 1024;

/** A send whose id was stored this recently is a duplicate; 2 min as in JetStream. */
export const DEFAULT_DEDUP_WINDOW_MS = 2 * 60 * 1000;

/** Durable destinations per node; each costs a little memory even when empty. */
export const DEFAULT_MAX_DESTINATIONS = 10_000;

/**
 * Messages per destination. The engine keeps ~100 bytes of schedule per
 * stored message in memory, so this bounds memory as well as backlog.
 */
export const DEFAULT_MAX_MSGS_PER_DESTINATION = 1_000_000;

/** Stored bytes (records on disk) per destination. */
export const DEFAULT_MAX_BYTES_PER_DESTINATION = 1024 * 1024 * 1024;

/**
 * Consumer groups per destination: each group keeps every stored message
 * until it acks it, and costs a ready queue as long as the backlog.
 */
export const DEFAULT_MAX_GROUPS_PER_DESTINATION = 64;

/** Longest wait a PULL may ask for. */
export const MAX_PULL_WAIT_MS = 5 * 60 * 1000;

/** Most messages one PULL may ask for. */
export const MAX_PULL_BATCH = 10_000;

/**
 * Bytes of outbound data gathered before a connection flushes without
 * waiting for the end of the event-loop turn: big enough to amortise the
 * syscall, small enough to keep latency low under floods.
 */
export const OUTBOUND_FLUSH_THRESHOLD_BYTES = 64 * 1024;

/** Payloads at least this big are queued by reference instead of copied. */
export const OUTBOUND_COPY_LIMIT_BYTES = 16 * 1024;

/** Subjects whose match result the subject trie remembers. */
export const SUBLIST_CACHE_ENTRIES = 4096;

/**
 * How long a closing connection may take to flush its last bytes (an -ERR,
 * the rest of its queue) before its socket is destroyed: a peer that never
 * reads would otherwise keep it open, and a shutdown waits for it.
 */
export const CLOSE_FLUSH_GRACE_MS = 2000;

// ---- mesh (protocol/MESH.md) ----------------------------------------------

/** The mesh port is the client port plus this (4222 -> 6222, NATS's cluster port), so nodes with different client ports never clash. */
export const MESH_PORT_OFFSET = 2000;

/**
 * The monitoring HTTP port is the client port plus this, so the default
 * client port 4222 gives nats-server's monitoring port 8222, and nodes
 * started side by side on one host do not collide.
 */
export const MONITOR_PORT_OFFSET = 4000;
/** Copies of each destination (owner + replicas); capped at the cluster size (M3.1). */
export const DEFAULT_REPLICATION_FACTOR = 3;
/** Membership heartbeat: often enough that a lost node is noticed in a few seconds (M2.2). */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 1000;
/** A member whose heartbeats stop for this long is dropped: 3.5 missed beats ride out a GC pause (M2.3). */
export const DEFAULT_MEMBER_TIMEOUT_MS = 3500;
/** How long a forwarded or replicated request may take before the peer counts as failing (M5.6). */
export const DEFAULT_PEER_REQUEST_TIMEOUT_MS = 5000;
/** Where nodes on one host find each other (M1.3): a directory per cluster under the OS temp dir. */
export const LOCAL_REGISTRY_DIRNAME = 'swarmmq-registry';
/** How often the local registry is read and known members are re-dialled (M1.3, M1.6). */
export const DISCOVERY_INTERVAL_MS = 1000;
/** Largest mesh frame: a 1 MiB payload plus headers and metadata fits with room to spare (M4.1). */
export const MAX_MESH_FRAME_BYTES = 8 * 1024 * 1024;

/** The largest max_message_size a node takes: a mesh frame less room for its head. */
export const MAX_PAYLOAD_LIMIT_BYTES = MAX_MESH_FRAME_BYTES - 256 * 1024;
/** Outbound bytes queued on one peer link before senders wait for it to drain (M4.3). */
export const MAX_LINK_PENDING_BYTES = 32 * 1024 * 1024;
/** Consecutive failures before a peer's circuit opens, and how long it stays open at first (doubling to the max) (M5.6). */
export const BREAKER_FAILURES = 3;
export const BREAKER_OPEN_MS = 500;
export const BREAKER_MAX_OPEN_MS = 10_000;

/**
 * A graceful stop (OPS1.3) waits this long for the next members to take over
 * and merge this node's copies. Merges of a few thousand messages take well
 * under a second; a deadline only bounds a stop when peers are slow or gone,
 * and what was not handed over stays on disk (its replicas hold it too).
 */
export const LEAVE_TIMEOUT_MS = 20_000;

/** A graceful stop waits this long for clients' durable sends already taken to be answered (OPS1.2). */
export const DRAIN_SENDS_TIMEOUT_MS = 10_000;

/**
 * Past this, a stop that has not finished is given up: the process exits 1
 * (logged). The sum of the steps above plus the close grace, with room.
 */
export const STOP_HARD_TIMEOUT_MS = 45_000;
