/**
 * What the fuzzers require of a value a mesh decoder let through, written
 * from the consumers' side (the engine's stores and timers, the subject
 * index, a client's protocol line), not from src/mesh/schema.ts: a decoder
 * that accepts something the consumer cannot take fails here.
 */
import { multiaddr } from '@multiformats/multiaddr';

export class ContractViolation extends Error {
  override name = 'ContractViolation';
}

export function check(cond: boolean, what: string): asserts cond {
  if (!cond) throw new ContractViolation(what);
}

const MAX_TIME_MS = 2 ** 48 - 1;

export function isInt(v: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max;
}

/** Only these keys, as own data properties of a plain object. */
export function onlyKeys(
  v: unknown,
  keys: readonly string[],
  what: string,
): asserts v is Record<string, unknown> {
  check(typeof v === 'object' && v !== null && !Array.isArray(v), `${what}: an object`);
  check(Object.getPrototypeOf(v) === Object.prototype, `${what}: a plain object`);
  for (const k of Object.keys(v)) check(keys.includes(k), `${what}: unexpected key ${JSON.stringify(k)}`);
}

/** Safe on a client's protocol line, written as latin1: no separator, no line end, one byte a unit. */
export function lineToken(v: unknown, what: string): asserts v is string {
  check(typeof v === 'string' && v.length > 0 && !/[ \t\n\u0100-\uffff]/.test(v), `${what}: a line token`);
}

/** A destination name (D1.1) or its dead-letter name. */
export function destinationName(v: unknown, what: string): asserts v is string {
  lineToken(v, what);
  check(
    v.length <= 259 && !/[\v\f\r]/.test(v) && !v.split('.').some((t) => t === '' || t === '*' || t === '>'),
    `${what}: a name`,
  );
}

export function groupName(v: unknown, what: string): asserts v is string {
  check(typeof v === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(v), `${what}: a group name`);
}

export function messageId(v: unknown, what: string): asserts v is string {
  check(
    typeof v === 'string' && v.length > 0 && Buffer.byteLength(v) <= 128 && !/\s/.test(v),
    `${what}: an id`,
  );
}

function optionalText(v: unknown, what: string): void {
  check(v === undefined || (typeof v === 'string' && v.length <= 65_536), `${what}: text or nothing`);
}

function body(m: Record<string, unknown>, what: string): void {
  check(m.headers === undefined || Buffer.isBuffer(m.headers), `${what}.headers: bytes or nothing`);
  check(Buffer.isBuffer(m.payload), `${what}.payload: bytes`);
}

/** DestinationSettings, whole (a replica's copy) or as CREATE gives them (`partial`). */
export function settings(v: unknown, what: string, partial = false): void {
  onlyKeys(
    v,
    [
      'defaultTtlMs',
      'maxMsgs',
      'maxBytes',
      'deadLetterExpired',
      'maxDeliveries',
      'ackTimeoutMs',
      'deadLetter',
    ],
    what,
  );
  const need = (k: string, ok: (x: unknown) => boolean): void => {
    if (partial && v[k] === undefined) return;
    check(ok(v[k]), `${what}.${k}`);
  };
  need('defaultTtlMs', (x) => isInt(x, 0, 10 * 365 * 24 * 3600 * 1000));
  need('maxMsgs', (x) => isInt(x));
  need('maxBytes', (x) => isInt(x));
  need('deadLetterExpired', (x) => typeof x === 'boolean');
  need('maxDeliveries', (x) => isInt(x));
  need('ackTimeoutMs', (x) => isInt(x, 0, 10 * 365 * 24 * 3600 * 1000));
  if (partial) check(v.deadLetter === undefined, `${what}.deadLetter: not settable`);
  else if (v.deadLetter !== undefined) destinationName(v.deadLetter, `${what}.deadLetter`);
}

/** What DurableEngine.applyMessage and importMessage store: every field is written to a 6-byte or 1-byte slot. */
export function replicatedMessage(m: unknown, what: string): void {
  onlyKeys(
    m,
    [
      'seq',
      'id',
      'priority',
      'timestampMs',
      'expiresAtMs',
      'notBeforeMs',
      'producer',
      'dedup',
      'headers',
      'payload',
    ],
    what,
  );
  check(isInt(m.seq, 1), `${what}.seq`);
  messageId(m.id, `${what}.id`);
  check(isInt(m.priority, 1, 10), `${what}.priority`);
  for (const k of ['timestampMs', 'expiresAtMs', 'notBeforeMs'])
    check(isInt(m[k], 0, MAX_TIME_MS), `${what}.${k}`);
  optionalText(m.producer, `${what}.producer`);
  check(typeof m.dedup === 'boolean', `${what}.dedup`);
  body(m, what);
}

/** What DurableEngine.applyChange needs of each op. */
export function replicatedChange(c: unknown, what: string): void {
  check(typeof c === 'object' && c !== null, `${what}: an object`);
  const op = (c as { op?: unknown }).op;
  switch (op) {
    case 'dest':
      onlyKeys(c, ['op', 'settings'], what);
      settings(c.settings, `${what}.settings`);
      return;
    case 'group':
      onlyKeys(c, ['op', 'group', 'ackTimeoutMs', 'maxDeliveries'], what);
      groupName(c.group, `${what}.group`);
      check(
        isInt(c.ackTimeoutMs, 0, 10 * 365 * 24 * 3600 * 1000) && isInt(c.maxDeliveries),
        `${what}: group numbers`,
      );
      return;
    case 'drop':
      onlyKeys(c, ['op', 'group'], what);
      groupName(c.group, `${what}.group`);
      return;
    case 'state':
      onlyKeys(c, ['op', 'group', 'seq', 'deliveries', 'done', 'deadlineMs'], what);
      groupName(c.group, `${what}.group`);
      check(
        isInt(c.seq, 1) && isInt(c.deliveries) && isInt(c.deadlineMs, 0, MAX_TIME_MS),
        `${what}: state numbers`,
      );
      check(typeof c.done === 'boolean', `${what}.done`);
      return;
    case 'remove':
      onlyKeys(c, ['op', 'seq', 'relayout'], what);
      check(
        isInt(c.seq, 1) && (c.relayout === undefined || typeof c.relayout === 'boolean'),
        `${what}: remove`,
      );
      return;
    default:
      throw new ContractViolation(`${what}: unknown op`);
  }
}

/** A forwarded SendRequest (the engine range-checks priority, ttl and delay itself). */
export function sendRequest(r: unknown, what: string): void {
  onlyKeys(r, ['destination', 'id', 'priority', 'ttlMs', 'delayMs', 'producer', 'headers', 'payload'], what);
  lineToken(r.destination, `${what}.destination`);
  // The engine checks ids (D3.4) itself, with its own error for the client.
  check(r.id === undefined || typeof r.id === 'string', `${what}.id`);
  for (const k of ['priority', 'ttlMs', 'delayMs']) check(r[k] === undefined || isInt(r[k]), `${what}.${k}`);
  check(r.producer === undefined || typeof r.producer === 'string', `${what}.producer`);
  body(r, what);
}

export function pullRequest(r: unknown, what: string): void {
  onlyKeys(r, ['destination', 'group', 'max', 'waitMs', 'ackTimeoutMs'], what);
  lineToken(r.destination, `${what}.destination`);
  lineToken(r.group, `${what}.group`);
  check(isInt(r.max, 1, 10_000) && isInt(r.waitMs, 0, 5 * 60 * 1000), `${what}: batch and wait`);
  check(
    r.ackTimeoutMs === undefined || isInt(r.ackTimeoutMs, 0, 10 * 365 * 24 * 3600 * 1000),
    `${what}.ackTimeoutMs`,
  );
}

/** What a client is written from a delivery (DMSG, D4.1). */
export function delivery(d: unknown, destination: string, what: string): void {
  onlyKeys(
    d,
    [
      'destination',
      'handle',
      'seq',
      'id',
      'priority',
      'deliveries',
      'timestampMs',
      'producer',
      'headers',
      'payload',
    ],
    what,
  );
  check(d.destination === destination, `${what}.destination: the one asked`);
  lineToken(d.handle, `${what}.handle`);
  check((d.handle as string).endsWith(`/${destination}`), `${what}.handle: of the destination`);
  messageId(d.id, `${what}.id`);
  check(
    isInt(d.seq, 1) && isInt(d.priority, 1, 10) && isInt(d.deliveries, 1) && isInt(d.timestampMs),
    `${what}: numbers`,
  );
  optionalText(d.producer, `${what}.producer`);
  body(d, what);
}

/** What a client is written from a DESTS answer (D7.2). */
export function destinationInfo(d: unknown, what: string): void {
  onlyKeys(d, ['name', 'depth', 'bytes', 'lastSeq', 'deadLetter', 'groups'], what);
  destinationName(d.name, `${what}.name`);
  if (d.deadLetter !== undefined) destinationName(d.deadLetter, `${what}.deadLetter`);
  check(isInt(d.depth) && isInt(d.bytes) && isInt(d.lastSeq), `${what}: numbers`);
  check(Array.isArray(d.groups), `${what}.groups`);
  for (const g of d.groups as unknown[]) {
    onlyKeys(g, ['name', 'pending', 'inFlight', 'acked'], `${what}.groups[]`);
    groupName(g.name, `${what}.groups[].name`);
    check(
      ['pending', 'inFlight', 'acked'].every((k) => isInt(g[k], -Number.MAX_SAFE_INTEGER)),
      `${what}.groups[]`,
    );
  }
}

/** A member as Membership keeps it: its addresses are dialled, its client address reaches clients. */
export function memberInfo(m: unknown, what: string): void {
  onlyKeys(
    m,
    ['id', 'cluster', 'name', 'client', 'mesh', 'version', 'status', 'startedAtMs', 'load', 'seenAtMs'],
    what,
  );
  lineToken(m.id, `${what}.id`);
  lineToken(m.client, `${what}.client`);
  for (const k of ['cluster', 'name', 'version']) check(typeof m[k] === 'string', `${what}.${k}`);
  check(['joining', 'ready', 'leaving'].includes(m.status as string), `${what}.status`);
  check(isInt(m.startedAtMs, 0, MAX_TIME_MS), `${what}.startedAtMs`);
  onlyKeys(m.load, ['connections', 'destinations', 'rssBytes'], `${what}.load`);
  check(
    Object.values(m.load).every((x) => isInt(x)),
    `${what}.load`,
  );
  check(Array.isArray(m.mesh) && m.mesh.length <= 64, `${what}.mesh`);
  for (const a of m.mesh as unknown[]) {
    check(typeof a === 'string', `${what}.mesh[]: a string`);
    try {
      multiaddr(a as string);
    } catch {
      throw new ContractViolation(`${what}.mesh[]: ${JSON.stringify(a).slice(0, 80)} does not parse`);
    }
  }
}

/** Object.prototype untouched by anything a peer sent. */
export function prototypeClean(what: string): void {
  const probe = {} as Record<string, unknown>;
  check(
    probe.polluted === undefined && Object.keys(Object.prototype).length === 0,
    `${what}: Object.prototype polluted`,
  );
}
