/** The durable engine's public shapes: options, requests, results (protocol/DURABLE.md). */
import type { DestinationSettings } from './model.js';
import type { MessageMeta } from '../store/envelope.js';

export interface EngineOptions {
  readonly dataDir: string;
  readonly maxDestinations: number;
  readonly maxDiskBytes: number;
  readonly dedupWindowMs: number;
  /** Consumer groups per destination (D2.6). */
  readonly maxGroupsPerDestination: number;
  /** Bytes one PULL may take (at least one message): its frames must fit the connection's pending limit (D4.7). */
  readonly maxPullBytes: number;
  /** Settings of destinations created without their own. */
  readonly defaults: Omit<DestinationSettings, 'deadLetter'>;
  /** Destinations from the config file, created at open if missing. */
  readonly destinations: readonly { name: string; settings: Partial<DestinationSettings> }[];
}

export interface SendRequest {
  destination: string;
  id?: string | undefined;
  priority?: number | undefined;
  ttlMs?: number | undefined;
  delayMs?: number | undefined;
  producer?: string | undefined;
  headers?: Buffer | undefined;
  payload: Buffer;
}

export interface SendResult {
  destination: string;
  seq: number;
  id: string;
  duplicate: boolean;
}

export interface PullRequest {
  destination: string;
  group: string;
  max: number;
  waitMs: number;
  /** Sets the group's ack timeout (kept for later pulls). */
  ackTimeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

export interface Delivery {
  destination: string;
  handle: string;
  seq: number;
  id: string;
  priority: number;
  deliveries: number;
  timestampMs: number;
  producer: string | undefined;
  headers: Buffer | undefined;
  payload: Buffer;
}

export interface DestinationInfo {
  name: string;
  depth: number;
  bytes: number;
  lastSeq: number;
  deadLetter: string | undefined;
  groups: { name: string; pending: number; inFlight: number; acked: number }[];
}

export interface EngineStats {
  stored: number;
  duplicates: number;
  delivered: number;
  redelivered: number;
  acked: number;
  expired: number;
  deadLettered: number;
  quarantined: number;
}

/** A stored message as the owner copies it to a replica (protocol/MESH.md M5.2). */
export interface ReplicatedMessage extends MessageMeta {
  seq: number;
  headers: Buffer | undefined;
  payload: Buffer;
  /** Whether a de-dup record is kept for its id (ids the producer chose). */
  dedup: boolean;
}

/** Every other change of an owned destination, applied by replicas in order (M5.3). */
export type ReplicatedChange =
  | { op: 'dest'; settings: DestinationSettings }
  | { op: 'group'; group: string; ackTimeoutMs: number; maxDeliveries: number }
  | { op: 'drop'; group: string }
  | { op: 'state'; group: string; seq: number; deliveries: number; done: boolean; deadlineMs: number }
  /** `relayout`: dropped to match the owner's copy (a merge), not acked: no tombstone (M7.4). */
  | { op: 'remove'; seq: number; relayout?: boolean };

/** Where the engine copies the changes of destinations it owns (the mesh's replicator). */
export interface ReplicationSink {
  /** Resolves once enough replicas have synced the message (M5.2); rejects with a DurableError otherwise. */
  message(destination: string, msg: ReplicatedMessage): Promise<void>;
  change(destination: string, change: ReplicatedChange): void;
}

/** One group's progress on one message: [group, deliveries, done (0/1), deadlineMs]. */
export type InventoryState = [string, number, number, number];

/** A page of what a node holds of a destination (protocol/MESH.md M7.1). */
export interface Inventory {
  settings: DestinationSettings;
  lastSeq: number;
  groups: { name: string; ackTimeoutMs: number; maxDeliveries: number }[];
  items: { seq: number; id: string; p: number; st: InventoryState[] }[];
  /** The seq to ask after for the next page; undefined on the last. */
  next: number | undefined;
  /** On the first page: ids this node removed recently (M7.4). */
  removed: string[];
}
