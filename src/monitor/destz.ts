/**
 * `/destz` (protocol/MONITORING.md section 7): the durable destinations this
 * node holds, as owner or replica (protocol/MESH.md M5.1): depth, bytes,
 * each consumer group's lag and in-flight count, the age of the oldest
 * message (looked up in the store at request time, bounded per
 * destination), and the settings. Paged; `dest=<name>` shows one.
 */
import type { DurableEngine } from '../durable/engine.js';
import type { Destination } from '../durable/model.js';
import { OLDEST_LOOKUPS_AT_ONCE } from './constants.js';
import type { NodeView } from './endpoints.js';
import type { Query } from './query.js';
import type { EndpointReply } from './server.js';

export const DESTZ_PARAMS = ['offset', 'limit', 'dest', 'role'] as const;

export async function destz(view: NodeView, q: Query): Promise<EndpointReply> {
  const page = q.page();
  const name = q.text('dest');
  const role = q.choice('role', ['any', 'owner', 'replica'], 'any');
  const engine = view.durable;
  const head = { server_id: view.server.serverId, now: new Date().toISOString() };
  if (name !== undefined && !engine.dests.has(name)) {
    return { status: 404, json: { ...head, error: `no destination ${JSON.stringify(name)} on this node` } };
  }
  const all =
    name !== undefined
      ? [engine.dests.get(name)!]
      : [...engine.dests.values()]
          .filter((d) => role === 'any' || d.role === role)
          .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const chosen = all.slice(page.offset, page.offset + page.limit);
  const destinations = await inBatches(chosen, OLDEST_LOOKUPS_AT_ONCE, (d) => destination(engine, d));
  return {
    json: { ...head, total: all.length, offset: page.offset, limit: page.limit, destinations },
  };
}

async function destination(engine: DurableEngine, d: Destination): Promise<Record<string, unknown>> {
  const oldest = await engine.oldestMessage(d.name);
  // Read after the await: the counts belong with the time of the answer.
  const now = Date.now();
  const s = d.settings;
  return {
    name: d.name,
    role: d.role,
    depth: d.msgs.size,
    bytes: d.bytes,
    last_seq: d.lastSeq,
    oldest_seq: oldest?.seq ?? null,
    oldest_age_ms: oldest === undefined ? null : Math.max(0, now - oldest.storedAtMs),
    stored: d.stored,
    expired: d.expired,
    dead_lettered: d.deadLettered,
    groups: [...d.groups.values()].map((g) => ({
      name: g.name,
      // Messages the group has still to take: neither settled nor in flight (DESTS pending, D7.2).
      lag: d.msgs.size - g.done.size - g.inflight.size,
      in_flight: g.inflight.size,
      acked: g.done.size,
      waiting_pulls: g.waiters.length,
      ack_timeout_ms: g.ackTimeoutMs,
      max_deliveries: g.maxDeliveries,
    })),
    settings: {
      default_ttl_ms: s.defaultTtlMs,
      max_msgs: s.maxMsgs,
      max_bytes: s.maxBytes,
      dead_letter_expired: s.deadLetterExpired,
      max_deliveries: s.maxDeliveries,
      ack_timeout_ms: s.ackTimeoutMs,
      dead_letter: s.deadLetter ?? null,
    },
  };
}

/** `fn` over `items`, at most `n` at once, results in order. */
async function inBatches<T, R>(items: readonly T[], n: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += n) out.push(...(await Promise.all(items.slice(i, i + n).map(fn))));
  return out;
}
