/** The durable engine's public shapes: options, requests, results (protocol/DURABLE.md). */
import type { DestinationSettings } from './model.js';

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
