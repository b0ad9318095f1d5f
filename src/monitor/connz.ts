/**
 * `/connz` (protocol/MONITORING.md section 4): this node's client
 * connections in the shape of nats-server's, paged and sorted, each with its
 * counters, subscriptions, CONNECT details, the name of the key or user it
 * authenticated as (never a secret), its TLS version or, for a libp2p
 * client, its peer id and multiaddr. Read at request
 * time from the live connections.
 */
import type { TLSSocket } from 'node:tls';
import type { ClientConnection } from '../server/connection.js';
import { MAX_LISTED_SUBJECTS } from './constants.js';
import type { NodeView } from './endpoints.js';
import type { Query } from './query.js';
import type { EndpointReply } from './server.js';

export const CONNZ_PARAMS = ['offset', 'limit', 'sort', 'subs', 'cid'] as const;

/**
 * Sort orders (MON4.2): counters largest first, as nats-server sorts them;
 * `idle` longest idle first, `uptime` longest connected first. Ties keep cid order.
 */
const SORTS = {
  cid: { key: (c: ClientConnection) => c.cid, descending: false },
  start: { key: (c: ClientConnection) => c.startedAtMs, descending: false },
  bytes_to: { key: (c: ClientConnection) => c.bytesOut, descending: true },
  bytes_from: { key: (c: ClientConnection) => c.bytesIn, descending: true },
  msgs_to: { key: (c: ClientConnection) => c.msgsOut, descending: true },
  msgs_from: { key: (c: ClientConnection) => c.msgsIn, descending: true },
  pending: { key: (c: ClientConnection) => c.pendingBytes, descending: true },
  subs: { key: (c: ClientConnection) => c.subs.size, descending: true },
  idle: { key: (c: ClientConnection) => c.lastActivityMs, descending: false },
  uptime: { key: (c: ClientConnection) => c.startedAtMs, descending: false },
  last: { key: (c: ClientConnection) => c.lastActivityMs, descending: true },
} as const;
type SortName = keyof typeof SORTS;
const SORT_NAMES = Object.keys(SORTS) as SortName[];

/** `subs=1` lists subjects, `subs=detail` one object per subscription (MON4.4). */
const SUBS_MODES = ['0', '1', 'detail'] as const;

export function connz(view: NodeView, q: Query): EndpointReply {
  const page = q.page();
  const sort = q.choice('sort', SORT_NAMES, 'cid');
  const subs = q.choice('subs', [...SUBS_MODES, 'true', 'false'], '0');
  const cid = q.int('cid', 1, Number.MAX_SAFE_INTEGER, 0);
  const now = Date.now();
  const all = [...view.server.connections.values()].filter((c) => !c.closed);
  const chosen = cid === 0 ? all : all.filter((c) => c.cid === cid);
  const { key, descending } = SORTS[sort];
  chosen.sort((a, b) => (descending ? key(b) - key(a) : key(a) - key(b)) || a.cid - b.cid);
  const budget = { subjects: MAX_LISTED_SUBJECTS };
  const mode = subs === 'true' ? '1' : subs === 'false' ? '0' : subs;
  const list = chosen
    .slice(page.offset, page.offset + page.limit)
    .map((c) => connection(c, now, mode, budget));
  return {
    json: {
      server_id: view.server.serverId,
      now: new Date(now).toISOString(),
      num_connections: list.length,
      total: chosen.length,
      offset: page.offset,
      limit: page.limit,
      sort,
      totals: totals(all),
      connections: list,
    },
  };
}

function connection(
  c: ClientConnection,
  now: number,
  subs: '0' | '1' | 'detail',
  budget: { subjects: number },
): Record<string, unknown> {
  const s = c.socket;
  const o = c.opts;
  const tls = 'getProtocol' in s ? (s as TLSSocket) : undefined;
  const cred = c.credential;
  const out: Record<string, unknown> = {
    cid: c.cid,
    kind: 'Client',
    ip: s.remoteAddress,
    port: s.remotePort,
    start: new Date(c.startedAtMs).toISOString(),
    last_activity: new Date(c.lastActivityMs).toISOString(),
    uptime: durationText(now - c.startedAtMs),
    uptime_ms: now - c.startedAtMs,
    idle: durationText(now - c.lastActivityMs),
    idle_ms: now - c.lastActivityMs,
    pending_bytes: c.pendingBytes,
    in_msgs: c.msgsIn,
    out_msgs: c.msgsOut,
    in_bytes: c.bytesIn,
    out_bytes: c.bytesOut,
    subscriptions: c.subs.size,
    // Absent ones are left out (undefined), as nats-server omits empty fields.
    name: o.name,
    lang: o.lang,
    version: o.version,
    // MON1.2: the name a key or user is configured under, never the key, password or hash.
    authorized_user: cred?.name,
    auth_kind: cred?.kind,
    tls_version: tls?.getProtocol()?.replace(/^TLSv/, ''),
    tls_cipher_suite: tls?.getCipher()?.name,
    // SECURITY.md SEC6.4: a libp2p client: its noise-proved peer id and the connection's multiaddr.
    peer_id: s.remotePeer?.id,
    multiaddr: s.remotePeer?.addr,
  };
  if (subs === '0') return out;
  const listed = [...c.subs.values()].slice(0, Math.max(0, budget.subjects));
  budget.subjects -= listed.length;
  if (subs === '1') out.subscriptions_list = listed.map((sub) => sub.subject);
  else
    out.subscriptions_list_detail = listed.map((sub) => ({
      subject: sub.subject,
      qgroup: sub.queue,
      sid: sub.sid,
      msgs: sub.delivered,
      max: sub.max,
      cid: c.cid,
    }));
  if (listed.length < c.subs.size) out.subscriptions_list_truncated = true;
  return out;
}

/** Sums over every connection, not only the page. */
function totals(all: readonly ClientConnection[]): Record<string, number> {
  const t = { in_msgs: 0, out_msgs: 0, in_bytes: 0, out_bytes: 0, pending_bytes: 0, subscriptions: 0 };
  for (const c of all) {
    t.in_msgs += c.msgsIn;
    t.out_msgs += c.msgsOut;
    t.in_bytes += c.bytesIn;
    t.out_bytes += c.bytesOut;
    t.pending_bytes += c.pendingBytes;
    t.subscriptions += c.subs.size;
  }
  return t;
}

/** A duration as nats-server writes one for people ("1h2m3s", "0s"); programs read the `_ms` twin. */
export function durationText(ms: number): string {
  let s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86_400);
  s -= d * 86_400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const parts = [d > 0 ? `${d}d` : '', h > 0 ? `${h}h` : '', m > 0 ? `${m}m` : ''];
  return `${parts.join('')}${s}s`;
}
