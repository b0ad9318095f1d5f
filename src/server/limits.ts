/**
 * The client limits a reload can change without a restart (SECURITY.md
 * SEC2.6). The server holds one frozen ClientLimits and swaps it whole;
 * connections read it through their host at each check, so a new value
 * reaches them at once, except where noted on the key.
 */
import type { NodeOptions } from '../config/options.js';

export const LIVE_LIMIT_KEYS = [
  /**
   * New connections only: a connection keeps the max_payload its INFO
   * announced, because stock clients check sizes against that INFO and
   * would be cut off for a publish they were told is fine. (nats-server
   * applies a new value to existing clients too, without telling them.)
   */
  'maxPayloadBytes',
  /** Every connection, from its next control line (nats-server does the same). */
  'maxControlLineBytes',
  /** At the next SUB; subscriptions over a lowered limit are kept. */
  'maxSubscriptions',
  'maxSubscriptionTokens',
  /** At the next accept; connections over a lowered limit stay open. */
  'maxConnections',
  /** At the next accept; the per-address buckets start full again. */
  'maxConnectionRate',
  /** At the next write: a connection over a lowered limit is cut off as a slow consumer (C6.9). */
  'maxPendingBytes',
  'maxTotalPendingBytes',
  /** Every connection's PING timer restarts with the new interval. */
  'pingIntervalMs',
  'maxPingsOut',
  /** Connections that arrive later; one already waiting for its CONNECT keeps its deadline. */
  'authTimeoutMs',
] as const satisfies readonly (keyof NodeOptions)[];

export type LiveLimitKey = (typeof LIVE_LIMIT_KEYS)[number];

export type ClientLimits = Readonly<Pick<NodeOptions, LiveLimitKey>>;

/** The live-changeable limits out of a node's options, frozen. */
export function clientLimits(o: NodeOptions): ClientLimits {
  const out: Partial<Record<LiveLimitKey, number>> = {};
  for (const k of LIVE_LIMIT_KEYS) out[k] = o[k];
  return Object.freeze(out as ClientLimits);
}

export function isLiveLimit(key: string): key is LiveLimitKey {
  return (LIVE_LIMIT_KEYS as readonly string[]).includes(key);
}
