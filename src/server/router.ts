/**
 * Core pub/sub routing on one node: the subject index and the rule that
 * turns one published message into deliveries (protocol/CLIENT.md section
 * 5). Every plain subscription that matches gets the message; each matching
 * queue group gets it once, at a member picked at random. The mesh issue
 * extends this with remote interest.
 */
import { SUBLIST_CACHE_ENTRIES } from '../config/defaults.js';
import { Sublist, type SubjectEntry } from '../subjects/sublist.js';

/** What a subscription delivers into. */
export interface Deliverer {
  readonly closed: boolean;
  /** Whether messages this connection publishes reach its own subscriptions (CONNECT echo). */
  readonly echo: boolean;
  deliver(
    sub: Subscription,
    subject: string,
    reply: string | undefined,
    headers: Buffer | undefined,
    payload: Buffer,
  ): void;
}

export class Subscription implements SubjectEntry {
  /** Messages delivered so far. */
  delivered = 0;
  /** Auto-unsubscribe after this many deliveries; 0 means never (C4.6). */
  max = 0;
  /** The bytes `MSG <subject> <sid> ` for the last subject delivered, reused while it repeats. */
  msgPrefix: Buffer | undefined;
  msgPrefixSubject: string | undefined;
  constructor(
    readonly owner: Deliverer,
    readonly subject: string,
    readonly queue: string | undefined,
    readonly sid: string,
  ) {}
}

export class Router {
  private readonly sublist: Sublist<Subscription>;

  constructor(cacheEntries: number = SUBLIST_CACHE_ENTRIES) {
    this.sublist = new Sublist(cacheEntries);
  }

  get subscriptionCount(): number {
    return this.sublist.size;
  }

  add(sub: Subscription): void {
    this.sublist.insert(sub);
  }

  remove(sub: Subscription): void {
    this.sublist.remove(sub);
  }

  /**
   * Delivers one message to every interested subscription and returns how
   * many deliveries were made (0 means no responders, C5.4).
   */
  publish(
    from: Deliverer | null,
    subject: string,
    reply: string | undefined,
    headers: Buffer | undefined,
    payload: Buffer,
  ): number {
    const match = this.sublist.match(subject);
    const noEcho = from !== null && !from.echo;
    let n = 0;
    for (const sub of match.plain) {
      if ((noEcho && sub.owner === from) || sub.owner.closed) continue;
      sub.owner.deliver(sub, subject, reply, headers, payload);
      n++;
    }
    for (const group of match.groups) {
      const len = group.length;
      // Start at a random member and take the first eligible one (C5.2).
      const first = (Math.random() * len) | 0;
      for (let i = 0; i < len; i++) {
        const sub = group[(first + i) % len]!;
        if ((noEcho && sub.owner === from) || sub.owner.closed) continue;
        sub.owner.deliver(sub, subject, reply, headers, payload);
        n++;
        break;
      }
    }
    return n;
  }

  /** The first subscription of `owner` that matches `subject` (for the no-responders status, C5.4). */
  findOwn(owner: Deliverer, subject: string): Subscription | undefined {
    const match = this.sublist.match(subject);
    for (const sub of match.plain) if (sub.owner === owner) return sub;
    for (const group of match.groups) for (const sub of group) if (sub.owner === owner) return sub;
    return undefined;
  }
}
