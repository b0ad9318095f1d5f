/**
 * What a client reports: its events (all informational; nothing must
 * listen) and its counters (protocol/SDK.md SDK5.4).
 */
import type { DisconnectedError } from './errors.js';
import type { ClusterView } from './view.js';

/** Event `connect`. */
export interface ConnectEvent {
  /** The node's address. */
  address: string;
  /** False for the first connection. */
  reconnected: boolean;
}

/** Event `disconnect`. */
export interface DisconnectEvent {
  /** The node that was lost. */
  address: string;
  /** Why. */
  error: Error;
}

/** Event `reconnecting`. */
export interface ReconnectingEvent {
  /** 1 for the first try after the loss. */
  attempt: number;
  /** The wait before this try (backoff with jitter). */
  delayMs: number;
}

/** Event `retry`. */
export interface RetryEvent {
  /** The call, e.g. `sending to orders (id …)`. */
  what: string;
  /** 1 for the first retry. */
  attempt: number;
  /** The failure that is retried. */
  error: Error;
}

/** Event `slowConsumer`. */
export interface SlowConsumerEvent {
  /** The subscription's subject. */
  subject: string;
  /** Messages it has dropped so far. */
  dropped: number;
}

/** Event `callbackError`. */
export interface CallbackErrorEvent {
  /** The subscription's subject. */
  subject: string;
  /** What the callback threw. */
  error: unknown;
}

/** Counters of what the client did, for dashboards and tests (`client.stats`). */
export interface ClientStats {
  /** Durable calls sent straight to the destination's owner (one per attempt). */
  toOwner: number;
  /** Durable calls sent through the home node, which forwards them (M4.5): no view, the owner is the home node, or its link failed. */
  viaHome: number;
  /** Calls retried after a failure the client rides out. */
  retries: number;
  /** Home connections made after the first (reconnects and moves). */
  reconnects: number;
}

/** The events a client emits; all are informational (nothing must listen). */
export interface ClientEvents {
  /** Connected (first time, or again after a loss). */
  connect: [ConnectEvent];
  /** The home connection was lost; the client is reconnecting. */
  disconnect: [DisconnectEvent];
  /** The client waits `delayMs` before its `attempt`-th try to reconnect. */
  reconnecting: [ReconnectingEvent];
  /** The cluster's view changed (members, their addresses, the replication factor). */
  view: [ClusterView];
  /** A call failed in a way the client retries (a lost node, a moved owner). */
  retry: [RetryEvent];
  /** A subscription dropped a message because its iterator was not read fast enough. */
  slowConsumer: [SlowConsumerEvent];
  /** A subscription callback threw; the subscription goes on. */
  callbackError: [CallbackErrorEvent];
  /** The client is closed: by close() (no error) or because no node answered within the reconnect budget. */
  closed: [DisconnectedError | undefined];
}
