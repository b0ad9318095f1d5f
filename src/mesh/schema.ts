/**
 * The wire messages of the mesh protocols, checked (protocol/MESH.md M4.6).
 * A peer is authenticated, not trusted: one function per message kind takes
 * the JSON head a frame carried (any shape at all), checks every field that
 * is read (type, range, length, and the characters that could break a
 * client's protocol line), and returns a fresh object holding those fields
 * only, or throws MalformedMessage (channel.ts) naming the field (the field
 * checks are in check.ts). Fields a peer adds (deep values, `__proto__`) are
 * left behind, so none reaches the engine, the store, a client or a log.
 *
 * Values a client chose and the owner's engine refuses with its own error
 * (a priority out of range, an unknown destination) are checked here for
 * type only, so the client gets that error, as on a standalone node.
 */
import { multiaddr } from '@multiformats/multiaddr';
import { MAX_PULL_BATCH, MAX_PULL_WAIT_MS, MAX_SUBJECT_TOKENS } from '../config/defaults.js';
import { MAX_DURATION_MS } from '../config/units.js';
import type { DestinationSettings } from '../durable/model.js';
import type { SettleKind } from '../durable/service.js';
import type {
  Delivery,
  DestinationInfo,
  Inventory,
  InventoryState,
  PullRequest,
  ReplicatedChange,
  ReplicatedMessage,
  SendRequest,
  SendResult,
} from '../durable/types.js';
import { isValidPublishSubject, isValidSubscribeSubject } from '../subjects/subject.js';
import type { Body, Packed } from './bodies.js';
import { MalformedMessage } from './channel.js';
import {
  bodies,
  body,
  bool,
  groupName,
  int,
  list,
  messageId,
  name,
  oneOf,
  optional,
  record,
  text,
  token,
  type Head,
} from './check.js';
import type { MemberInfo, MemberStatus } from './membership.js';

/** Any list in a head: the frame limit (M4.1) bounds them too; this bounds the work of checking one. */
const MAX_LIST = 1 << 20;
/** Nodes a forwarded call or core message names as passed (M4.5, M6.1). */
const MAX_VIA = 64;
/** Mesh addresses in a heartbeat (M2.1), and the length of each. */
const MAX_ADDRS = 64;
const MAX_ADDR_CHARS = 1024;
/** Times are stored in 6 bytes (protocol/STORAGE.md). */
const MAX_TIME_MS = 2 ** 48 - 1;
/** D4.9: a handle is `<seq>/<delivery>/<group>/<destination>`. */
const HANDLE_PREFIX = /^\d{1,16}\/\d{1,16}\/[A-Za-z0-9_-]{1,64}\//;
const MEMBER_STATUS: readonly MemberStatus[] = ['joining', 'ready', 'leaving'];
const SETTLE_KINDS: readonly SettleKind[] = ['ack', 'nak', 'wip', 'term'];

function via(v: unknown): string[] | undefined {
  return optional(v, 'via', (x, w) => list(x, w, MAX_VIA, (id, iw) => token(id, iw, 256)));
}

// ---- shared shapes ----------------------------------------------------------

/** Every setting of a destination, as its owner holds them (M5.3, M7.2). */
function settings(v: unknown, what = 'settings'): DestinationSettings {
  const s = record(v, what);
  return {
    defaultTtlMs: int(s.defaultTtlMs, `${what}.defaultTtlMs`, 0, MAX_DURATION_MS),
    maxMsgs: int(s.maxMsgs, `${what}.maxMsgs`),
    maxBytes: int(s.maxBytes, `${what}.maxBytes`),
    deadLetterExpired: bool(s.deadLetterExpired, `${what}.deadLetterExpired`),
    maxDeliveries: int(s.maxDeliveries, `${what}.maxDeliveries`),
    ackTimeoutMs: int(s.ackTimeoutMs, `${what}.ackTimeoutMs`, 0, MAX_DURATION_MS),
    deadLetter: optional(s.deadLetter, `${what}.deadLetter`, name),
  };
}

/** The settings a CREATE names (D7.1); the others keep their defaults. */
function createSettings(v: unknown): Partial<DestinationSettings> {
  const s = record(v, 'settings');
  const out: { -readonly [K in keyof DestinationSettings]?: DestinationSettings[K] } = {};
  const duration = (x: unknown, w: string): number => int(x, w, 0, MAX_DURATION_MS);
  if (s.defaultTtlMs !== undefined) out.defaultTtlMs = duration(s.defaultTtlMs, 'settings.defaultTtlMs');
  if (s.maxMsgs !== undefined) out.maxMsgs = int(s.maxMsgs, 'settings.maxMsgs');
  if (s.maxBytes !== undefined) out.maxBytes = int(s.maxBytes, 'settings.maxBytes');
  if (s.maxDeliveries !== undefined) out.maxDeliveries = int(s.maxDeliveries, 'settings.maxDeliveries');
  if (s.ackTimeoutMs !== undefined) out.ackTimeoutMs = duration(s.ackTimeoutMs, 'settings.ackTimeoutMs');
  if (s.deadLetterExpired !== undefined)
    out.deadLetterExpired = bool(s.deadLetterExpired, 'settings.deadLetterExpired');
  return out;
}

function groupSpec(v: unknown, what: string): Inventory['groups'][number] {
  const g = record(v, what);
  return {
    name: groupName(g.name, `${what}.name`),
    ackTimeoutMs: int(g.ackTimeoutMs, `${what}.ackTimeoutMs`, 0, MAX_DURATION_MS),
    maxDeliveries: int(g.maxDeliveries, `${what}.maxDeliveries`),
  };
}

/** A stored message's metadata as owners copy it (M5.2) and peers hand it over (M7.2). */
function storedMeta(m: Head, what: string): Omit<ReplicatedMessage, 'headers' | 'payload'> {
  return {
    seq: int(m.seq, `${what}.seq`, 1),
    id: messageId(m.id, `${what}.id`),
    priority: int(m.priority, `${what}.priority`, 1, 10),
    timestampMs: int(m.timestampMs, `${what}.timestampMs`, 0, MAX_TIME_MS),
    expiresAtMs: int(m.expiresAtMs, `${what}.expiresAtMs`, 0, MAX_TIME_MS),
    notBeforeMs: int(m.notBeforeMs, `${what}.notBeforeMs`, 0, MAX_TIME_MS),
    producer: optional(m.producer, `${what}.producer`, text),
    dedup: bool(m.dedup, `${what}.dedup`),
  };
}

// ---- membership (M2.1) ------------------------------------------------------

/** A heartbeat, from the members topic or a route link. Its mesh addresses are dialled later: each must parse. */
export function memberInfo(v: unknown): MemberInfo {
  const i = record(v, 'heartbeat');
  const load = record(i.load, 'heartbeat.load');
  return {
    id: token(i.id, 'heartbeat.id', 256),
    cluster: text(i.cluster, 'heartbeat.cluster', 1024),
    name: text(i.name, 'heartbeat.name', 1024),
    client: token(i.client, 'heartbeat.client', 1024),
    mesh: list(i.mesh, 'heartbeat.mesh', MAX_ADDRS, (a, w) => {
      const s = text(a, w, MAX_ADDR_CHARS);
      try {
        multiaddr(s);
      } catch {
        throw new MalformedMessage(`${w}: not a multiaddr`);
      }
      return s;
    }),
    version: text(i.version, 'heartbeat.version', 64),
    status: oneOf(i.status, 'heartbeat.status', MEMBER_STATUS),
    startedAtMs: int(i.startedAtMs, 'heartbeat.startedAtMs', 0, MAX_TIME_MS),
    load: {
      connections: int(load.connections, 'heartbeat.load.connections'),
      destinations: int(load.destinations, 'heartbeat.load.destinations'),
      rssBytes: int(load.rssBytes, 'heartbeat.load.rssBytes'),
    },
  };
}

// ---- /swarmmq/route/1.0.0 (M3.4, M6) ----------------------------------------

export interface Interest {
  subject: string;
  queue: string | undefined;
}

function interest(v: unknown, what: string): Interest {
  const i = record(v, what);
  const subject = token(i.subject, `${what}.subject`);
  // A node's clients subscribe to no deeper subject (SECURITY.md SEC5.1).
  if (
    !isValidSubscribeSubject(subject) ||
    subject.split('.', MAX_SUBJECT_TOKENS + 1).length > MAX_SUBJECT_TOKENS
  ) {
    throw new MalformedMessage(`${what}.subject: not a subject of at most ${MAX_SUBJECT_TOKENS} tokens`);
  }
  return { subject, queue: optional(i.queue, `${what}.queue`, token) };
}

/** `interest`: the snapshot of a peer's subscriptions. */
export function routeInterest(head: Head): Interest[] {
  return list(head.subs, 'subs', MAX_LIST, interest);
}

/** `sub` and `unsub`. */
export function routeSub(head: Head): Interest {
  return interest({ subject: head.s, queue: head.q }, 'sub');
}

export interface CoreMessage extends Body {
  subject: string;
  reply: string | undefined;
  queue: string | undefined;
  via: string[] | undefined;
}

/** `msg`: a core message to deliver here (M6.1). */
export function routeMsg(head: Head, data: Buffer): CoreMessage {
  const subject = token(head.s, 's');
  if (!isValidPublishSubject(subject)) throw new MalformedMessage('s: not a publish subject');
  return {
    subject,
    reply: optional(head.r, 'r', token),
    queue: optional(head.q, 'q', token),
    via: via(head.via),
    ...body(head.hl, data, 'msg'),
  };
}

/** `dests`: destination names a peer holds (M3.4). */
export function routeDests(head: Head): { names: string[]; snapshot: boolean } {
  return {
    names: list(head.names, 'names', MAX_LIST, name),
    snapshot: optional(head.snapshot, 'snapshot', bool) === true,
  };
}

// ---- /swarmmq/durable/1.0.0 (M4.5) -----------------------------------------

/**
 * A value a client chose that the owner's engine checks itself (a name, an
 * id, a group, a handle): its type only, and no byte a client's line could
 * not hold; the frame limit bounds its length.
 */
function chosen(v: unknown, what: string): string {
  return token(v, what, Number.MAX_SAFE_INTEGER);
}

function chosenText(v: unknown, what: string): string {
  return text(v, what, Number.MAX_SAFE_INTEGER);
}

export function durableSend(head: Head, data: Buffer): { req: SendRequest; via: string[] | undefined } {
  const r = record(head.req, 'req');
  const count = (v: unknown, w: string): number => int(v, w);
  return {
    req: {
      destination: chosen(r.destination, 'req.destination'),
      // Ids are UTF-8 text (a Nats-Msg-Id header), not latin1 tokens.
      id: optional(r.id, 'req.id', chosenText),
      priority: optional(r.priority, 'req.priority', count),
      ttlMs: optional(r.ttlMs, 'req.ttlMs', count),
      delayMs: optional(r.delayMs, 'req.delayMs', count),
      producer: optional(r.producer, 'req.producer', chosenText),
      ...body(r.hl, data, 'req'),
    },
    via: via(head.via),
  };
}

export function durablePull(head: Head): PullRequest {
  const r = record(head.req, 'req');
  return {
    destination: chosen(r.destination, 'req.destination'),
    group: chosen(r.group, 'req.group'),
    max: int(r.max, 'req.max', 1, MAX_PULL_BATCH),
    waitMs: int(r.waitMs, 'req.waitMs', 0, MAX_PULL_WAIT_MS),
    ackTimeoutMs: optional(r.ackTimeoutMs, 'req.ackTimeoutMs', (v, w) => int(v, w, 0, MAX_DURATION_MS)),
  };
}

export function durableSettle(head: Head): { kind: SettleKind; handle: string; delayMs: number | undefined } {
  return {
    kind: oneOf(head.kind, 'kind', SETTLE_KINDS),
    handle: chosen(head.handle, 'handle'),
    delayMs: optional(head.delayMs, 'delayMs', (v, w) => int(v, w, 0, MAX_DURATION_MS)),
  };
}

export function durableCreate(head: Head): { name: string; settings: Partial<DestinationSettings> } {
  return { name: chosen(head.name, 'name'), settings: createSettings(head.settings ?? {}) };
}

export function durableDrop(head: Head): { destination: string; group: string } {
  return { destination: chosen(head.destination, 'destination'), group: chosen(head.group, 'group') };
}

/** The owner's answer to a forwarded send: for the send that was asked (its destination and id). */
export function sendResult(head: unknown, req: SendRequest): SendResult {
  const r = record(head, 'send answer');
  if (r.destination !== req.destination || (req.id !== undefined && r.id !== req.id)) {
    throw new MalformedMessage('send answer: not for the send asked');
  }
  return {
    destination: req.destination,
    seq: int(r.seq, 'send answer.seq'),
    id: messageId(r.id, 'send answer.id'),
    duplicate: bool(r.duplicate, 'send answer.duplicate'),
  };
}

/** The owner's answer to a forwarded pull: deliveries of the destination asked, each with a handle of it (D4.9). */
export function pulled(head: unknown, data: Buffer, destination: string): Delivery[] {
  const msgs = list(record(head, 'pull answer').msgs ?? [], 'msgs', MAX_PULL_BATCH, (v, w) => {
    const m = record(v, w);
    const handle = token(m.handle, `${w}.handle`);
    const prefix = HANDLE_PREFIX.exec(handle)?.[0];
    if (
      m.destination !== destination ||
      prefix === undefined ||
      handle.slice(prefix.length) !== destination
    ) {
      throw new MalformedMessage(`${w}: not a delivery of ${destination}`);
    }
    return {
      destination,
      handle,
      seq: int(m.seq, `${w}.seq`, 1),
      id: messageId(m.id, `${w}.id`),
      priority: int(m.priority, `${w}.priority`, 1, 10),
      deliveries: int(m.deliveries, `${w}.deliveries`, 1),
      timestampMs: int(m.timestampMs, `${w}.timestampMs`, 0, MAX_TIME_MS),
      producer: optional(m.producer, `${w}.producer`, text),
      hl: m.hl,
      pl: m.pl,
    } as Packed<Delivery>;
  });
  return bodies(msgs, data, 'msgs');
}

/** A member's answer to DESTS (D7.2). */
export function destinationList(head: unknown): DestinationInfo[] {
  return list(record(head, 'list answer').list, 'list', MAX_LIST, (v, w) => {
    const d = record(v, w);
    return {
      name: name(d.name, `${w}.name`),
      depth: int(d.depth, `${w}.depth`),
      bytes: int(d.bytes, `${w}.bytes`),
      lastSeq: int(d.lastSeq, `${w}.lastSeq`),
      deadLetter: optional(d.deadLetter, `${w}.deadLetter`, name),
      groups: list(d.groups, `${w}.groups`, MAX_LIST, (gv, gw) => {
        const g = record(gv, gw);
        const n = (x: unknown, f: string): number => int(x, `${gw}.${f}`, -Number.MAX_SAFE_INTEGER);
        return {
          name: groupName(g.name, `${gw}.name`),
          pending: n(g.pending, 'pending'),
          inFlight: n(g.inFlight, 'inFlight'),
          acked: n(g.acked, 'acked'),
        };
      }),
    };
  });
}

// ---- /swarmmq/replica/1.0.0 (M5) --------------------------------------------

/** `msg`: a message the owner stored (M5.2). */
export function replicaMessage(head: Head, data: Buffer): { destination: string; msg: ReplicatedMessage } {
  const m = record(head.msg, 'msg');
  return { destination: name(head.d, 'd'), msg: { ...storedMeta(m, 'msg'), ...body(m.hl, data, 'msg') } };
}

/** `change`: any other change of the owner's copy (M5.3). */
export function replicaChange(head: Head): { destination: string; change: ReplicatedChange } {
  const destination = name(head.d, 'd');
  const c = record(head.c, 'c');
  const seq = (): number => int(c.seq, 'c.seq', 1);
  switch (c.op) {
    case 'dest':
      return { destination, change: { op: 'dest', settings: settings(c.settings, 'c.settings') } };
    case 'group':
      return {
        destination,
        change: {
          op: 'group',
          group: groupName(c.group, 'c.group'),
          ackTimeoutMs: int(c.ackTimeoutMs, 'c.ackTimeoutMs', 0, MAX_DURATION_MS),
          maxDeliveries: int(c.maxDeliveries, 'c.maxDeliveries'),
        },
      };
    case 'drop':
      return { destination, change: { op: 'drop', group: groupName(c.group, 'c.group') } };
    case 'state':
      return {
        destination,
        change: {
          op: 'state',
          group: groupName(c.group, 'c.group'),
          seq: seq(),
          deliveries: int(c.deliveries, 'c.deliveries'),
          done: bool(c.done, 'c.done'),
          deadlineMs: int(c.deadlineMs, 'c.deadlineMs', 0, MAX_TIME_MS),
        },
      };
    case 'remove':
      return {
        destination,
        change: { op: 'remove', seq: seq(), relayout: optional(c.relayout, 'c.relayout', bool) },
      };
    default:
      throw new MalformedMessage('c.op: not a change');
  }
}

// ---- /swarmmq/handoff/1.0.0 (M7) --------------------------------------------

/** `claim` and `forget`: a destination name. */
export function handoffName(head: Head): string {
  return name(head.d, 'd');
}

/** `inventory`: a page of at most `maxLimit` messages after `after`. */
export function handoffInventory(head: Head, maxLimit: number): { d: string; after: number; limit: number } {
  return {
    d: name(head.d, 'd'),
    after: int(head.after, 'after'),
    limit: int(head.limit, 'limit', 1, maxLimit),
  };
}

/** `fetch`: at most `max` messages by seq. */
export function handoffFetch(head: Head, max: number): { d: string; seqs: number[] } {
  return { d: name(head.d, 'd'), seqs: list(head.seqs, 'seqs', max, (v, w) => int(v, w, 1)) };
}

/** `groups`: the owner's settings, groups and last seq (M7.2). */
export function handoffGroups(
  head: Head,
): { d: string } & Pick<Inventory, 'settings' | 'groups' | 'lastSeq'> {
  return {
    d: name(head.d, 'd'),
    settings: settings(head.settings),
    groups: list(head.groups, 'groups', MAX_LIST, groupSpec),
    lastSeq: int(head.lastSeq, 'lastSeq'),
  };
}

function inventoryState(v: unknown, what: string): InventoryState {
  if (!Array.isArray(v) || v.length !== 4) throw new MalformedMessage(`${what}: not a group's progress`);
  return [
    groupName(v[0], `${what}[0]`),
    int(v[1], `${what}[1]`),
    int(v[2], `${what}[2]`, 0, 1),
    int(v[3], `${what}[3]`, 0, MAX_TIME_MS),
  ];
}

/**
 * A peer's answer to `inventory` (M7.1): undefined when it has no copy. At
 * most `limit` items, and a next page strictly after `after`, so paging ends.
 */
export function inventoryPage(head: unknown, after: number, limit: number): Inventory | undefined {
  const inv = record(head, 'inventory answer').inv;
  if (inv === undefined) return undefined;
  const i = record(inv, 'inv');
  return {
    settings: settings(i.settings, 'inv.settings'),
    lastSeq: int(i.lastSeq, 'inv.lastSeq'),
    groups: list(i.groups, 'inv.groups', MAX_LIST, groupSpec),
    items: list(i.items, 'inv.items', limit, (v, w) => {
      const it = record(v, w);
      return {
        seq: int(it.seq, `${w}.seq`, 1),
        id: messageId(it.id, `${w}.id`),
        p: int(it.p, `${w}.p`, 1, 10),
        st: list(it.st, `${w}.st`, MAX_LIST, inventoryState),
      };
    }),
    next: optional(i.next, 'inv.next', (v, w) => int(v, w, after + 1)),
    removed: list(i.removed ?? [], 'inv.removed', MAX_LIST, messageId),
  };
}

/** A peer's answer to `fetch`: messages among the seqs asked, bodies in the data. */
/** The seqs a fetch answer held back to stay under its byte budget (M7.2): asked for, to ask again. */
export function fetchedMore(head: unknown, seqs: readonly number[]): number[] {
  const asked = new Set(seqs);
  return list(record(head, 'fetch answer').more ?? [], 'more', seqs.length, (v, w) => {
    const seq = int(v, w, 1);
    if (!asked.has(seq)) throw new MalformedMessage(`${w}: not asked for`);
    return seq;
  });
}

export function fetchedMessages(head: unknown, data: Buffer, seqs: readonly number[]): ReplicatedMessage[] {
  const asked = new Set(seqs);
  const msgs = list(record(head, 'fetch answer').msgs ?? [], 'msgs', seqs.length, (v, w) => {
    const m = record(v, w);
    const meta = storedMeta(m, w);
    if (!asked.has(meta.seq)) throw new MalformedMessage(`${w}.seq: not asked for`);
    return { ...meta, hl: m.hl, pl: m.pl } as Packed<ReplicatedMessage>;
  });
  return bodies(msgs, data, 'msgs');
}
