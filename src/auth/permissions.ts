/**
 * What an authenticated client may do (protocol/SECURITY.md section 3):
 * publish and subscribe allow/deny subject patterns, as in nats-server, and
 * rights on durable destinations (send, pull, admin). Pure: no sockets, no
 * logger; the connection asks, this module answers.
 */

/** A right on a durable destination (SEC3.4). */
export type DestinationRight = 'send' | 'pull' | 'admin';

/** Allow and deny patterns for one direction. An absent allow list allows everything (SEC3.2). */
export interface PatternRule {
  readonly allow: readonly string[] | undefined;
  readonly deny: readonly string[];
}

/** The permissions of one key or user, as configured. */
export interface Permissions {
  readonly publish: PatternRule;
  readonly subscribe: PatternRule;
  /** Destination patterns per right; an absent list grants the right on every destination (SEC3.4). */
  readonly destinations: Readonly<Record<DestinationRight, readonly string[] | undefined>>;
}

export const ALLOW_ALL: Permissions = Object.freeze({
  publish: Object.freeze({ allow: undefined, deny: Object.freeze([]) }),
  subscribe: Object.freeze({ allow: undefined, deny: Object.freeze([]) }),
  destinations: Object.freeze({ send: undefined, pull: undefined, admin: undefined }),
});

/**
 * True when the literal subject `subject` matches `pattern` (`*` one token,
 * `>` one or more at the end), as a message subject matches a subscription.
 */
export function matches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    const t = p[i]!;
    if (t === '>') return i === p.length - 1 && s.length > i;
    if (i >= s.length) return false;
    if (t !== '*' && t !== s[i]) return false;
  }
  return p.length === s.length;
}

/**
 * True when every subject the subscription `sub` can match is matched by
 * `pattern`: `orders.*` is covered by `orders.>`, `>` is covered only by `>`.
 */
export function covers(pattern: string, sub: string): boolean {
  const p = pattern.split('.');
  const s = sub.split('.');
  for (let i = 0; i < p.length; i++) {
    const t = p[i]!;
    if (t === '>') return s.length > i;
    if (i >= s.length) return false;
    const u = s[i]!;
    if (u === '>') return false; // the subscription reaches deeper than this pattern
    if (t === '*') continue;
    if (u === '*' || t !== u) return false;
  }
  return p.length === s.length;
}

/** True when some subject matches both the subscription `a` and the pattern `b`. */
export function overlaps(a: string, b: string): boolean {
  const x = a.split('.');
  const y = b.split('.');
  for (let i = 0; ; i++) {
    const u = x[i];
    const v = y[i];
    if (u === undefined || v === undefined) return u === v;
    if (u === '>' || v === '>') return true;
    if (u !== '*' && v !== '*' && u !== v) return false;
  }
}

/** Bounded per-connection cache of publish decisions: the hot path asks once per subject. */
const DECISION_CACHE_MAX = 1024;

/**
 * One connection's view of its permissions: cached publish decisions and the
 * subscription checks. Replaced as a whole on reload (SEC2.6).
 */
export class PermissionCheck {
  private readonly publishCache = new Map<string, boolean>();

  constructor(readonly permissions: Permissions) {}

  /** SEC3.2: a PUB to `subject`. */
  mayPublish(subject: string): boolean {
    let ok = this.publishCache.get(subject);
    if (ok === undefined) {
      const r = this.permissions.publish;
      ok =
        (r.allow === undefined || r.allow.some((p) => matches(p, subject))) &&
        !r.deny.some((p) => matches(p, subject));
      if (this.publishCache.size >= DECISION_CACHE_MAX) this.publishCache.clear();
      this.publishCache.set(subject, ok);
    }
    return ok;
  }

  /** SEC3.3: a SUB is allowed when an allow pattern covers it and no deny pattern does. */
  maySubscribe(subject: string): boolean {
    const r = this.permissions.subscribe;
    if (r.allow !== undefined && !r.allow.some((p) => covers(p, subject))) return false;
    return !r.deny.some((p) => covers(p, subject));
  }

  /**
   * SEC3.3: an allowed wildcard subscription that overlaps a deny pattern is
   * filtered at delivery; true when `subject`'s deliveries need that check.
   */
  needsDeliveryFilter(subject: string): boolean {
    return this.permissions.subscribe.deny.some((p) => overlaps(subject, p));
  }

  /** SEC3.3: whether a message on the literal `subject` may reach this client. */
  mayReceive(subject: string): boolean {
    return !this.permissions.subscribe.deny.some((p) => matches(p, subject));
  }

  /** SEC3.4: a right on a destination. */
  mayUse(right: DestinationRight, destination: string): boolean {
    const list = this.permissions.destinations[right];
    return list === undefined || list.some((p) => matches(p, destination));
  }
}
