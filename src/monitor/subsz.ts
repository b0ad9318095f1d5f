/**
 * `/subsz` (protocol/MONITORING.md section 5): the subject index of this
 * node, as nats-server shows its sublist: how many entries (client
 * subscriptions and other nodes' interest, M6.1), the match cache, and with
 * `subs=1` a page of the entries themselves; `test=<subject>` keeps only
 * those a message on that subject would reach.
 */
import { ClientConnection } from '../server/connection.js';
import type { Subscription } from '../server/router.js';
import { hasWildcard, isValidPublishSubject } from '../subjects/subject.js';
import { MonitorQueryError } from '../errors.js';
import type { NodeView } from './endpoints.js';
import type { Query } from './query.js';
import type { EndpointReply } from './server.js';

export const SUBSZ_PARAMS = ['offset', 'limit', 'subs', 'test'] as const;

export function subsz(view: NodeView, q: Query): EndpointReply {
  const page = q.page();
  const test = q.text('test');
  if (test !== undefined && (!isValidPublishSubject(test) || hasWildcard(test))) {
    throw new MonitorQueryError('test', 'must be a subject a message can be published on (no wildcards)');
  }
  const list = q.flag('subs') || test !== undefined;
  const index = view.server.router.index;
  let local = 0;
  for (const c of view.server.connections.values()) local += c.subs.size;
  const out: Record<string, unknown> = {
    server_id: view.server.serverId,
    now: new Date().toISOString(),
    num_subscriptions: index.size,
    num_local: local,
    num_remote: Math.max(0, index.size - local),
    num_cache: index.cacheSize,
    max_cache: index.cacheMax,
    num_matches: index.matches,
    cache_hits: index.cacheHits,
    cache_hit_rate: index.matches === 0 ? 0 : round(index.cacheHits / index.matches),
  };
  if (!list) return { json: out };
  let total: number;
  let entries: Iterable<Subscription>;
  if (test === undefined) {
    total = index.size;
    entries = index.entries();
  } else {
    // A lookup like a publish's (it counts in num_matches): what the message would reach.
    const m = index.match(test);
    const matched = [...m.plain, ...m.groups.flat()];
    total = matched.length;
    entries = matched;
  }
  out.total = total;
  out.offset = page.offset;
  out.limit = page.limit;
  if (test !== undefined) out.test = test;
  out.subscriptions_list = slice(entries, page.offset, page.limit).map(entry);
  return { json: out };
}

/** A client subscription names its connection; another node's interest names that node. */
function entry(sub: Subscription): Record<string, unknown> {
  const base = { subject: sub.subject, qgroup: sub.queue };
  if (sub.owner instanceof ClientConnection) {
    return { ...base, sid: sub.sid, msgs: sub.delivered, max: sub.max, cid: sub.owner.cid };
  }
  const peer = (sub.owner as { peer?: unknown }).peer;
  return { ...base, peer: typeof peer === 'string' ? peer : undefined };
}

/** Entries offset..offset+limit of a (lazy) iterable, reading no further. */
function slice<T>(items: Iterable<T>, offset: number, limit: number): T[] {
  const out: T[] = [];
  let i = 0;
  for (const item of items) {
    if (i++ < offset) continue;
    out.push(item);
    if (out.length >= limit) break;
  }
  return out;
}

function round(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}
