/**
 * Core pub/sub routing on one node: the subject index and the rule that
 * turns one published message into deliveries (protocol/CLIENT.md section
 * 5). Every plain subscription that matches gets the message; each matching
 * queue group gets it once, at a member picked at random. Interest of other
 * mesh nodes sits in the same index as subscriptions whose owner is a peer
 * (mesh/routes.ts), so a queue group spanning nodes still gets each message
 * once (protocol/MESH.md M6.2).
 */
import { SUBLIST_CACHE_ENTRIES } from '../config/defaults.js';
import { Sublist, type SubjectEntry } from '../subjects/sublist.js';

/** What a subscription delivers into. */
export interface Deliverer {
  readonly closed: boolean;
  /** Whether messages this connection publishes reach its own subscriptions (CONNECT echo). */
  readonly echo: boolean;
  /** True for a mesh peer standing for its node's subscriptions: messages from peers never go back out (M6.1). */
  readonly remote?: boolean;
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
  /** SEC3.3: the owner's deny list overlaps this subscription, so each delivery is checked. */
  filterDeny = false;
  constructor(
    readonly owner: Deliverer,
    readonly subject: string,
    readonly queue: string | undefined,
    readonly sid: string,
  ) {}
}

/** What monitoring may read of the subject index. */
export type SubjectIndexView = Readonly<
  Pick<
    Sublist<Subscription>,
    'size' | 'cacheSize' | 'cacheMax' | 'matches' | 'cacheHits' | 'entries' | 'match'
  >
>;

/** Told when local interest in a (subject, queue) starts and ends, to share it with the mesh. */
export type InterestListener = (subject: string, queue: string | undefined, added: boolean) => void;

export class Router {
  private readonly sublist: Sublist<Subscription>;
  /** Local subscriptions per subject and queue, counted. */
  private readonly interest = new Map<string, number>();
  onInterest: InterestListener | undefined;

  constructor(cacheEntries: number = SUBLIST_CACHE_ENTRIES) {
    this.sublist = new Sublist(cacheEntries);
  }

  get subscriptionCount(): number {
    return this.sublist.size;
  }

  /** The subject index, local and mesh interest alike, read-only (/subsz). */
  get index(): SubjectIndexView {
    return this.sublist;
  }

  add(sub: Subscription): void {
    this.sublist.insert(sub);
    if (sub.owner.remote === true) return;
    const key = interestKey(sub.subject, sub.queue);
    const n = this.interest.get(key) ?? 0;
    this.interest.set(key, n + 1);
    if (n === 0) this.onInterest?.(sub.subject, sub.queue, true);
  }

  remove(sub: Subscription): void {
    this.sublist.remove(sub);
    if (sub.owner.remote === true) return;
    const key = interestKey(sub.subject, sub.queue);
    const n = this.interest.get(key) ?? 0;
    if (n <= 1) {
      if (n === 1) this.onInterest?.(sub.subject, sub.queue, false);
      this.interest.delete(key);
    } else {
      this.interest.set(key, n - 1);
    }
  }

  /** Every (subject, queue) with local subscriptions: the snapshot a new peer gets. */
  localInterest(): { subject: string; queue: string | undefined }[] {
    return [...this.interest.keys()].map((k) => {
      const i = k.indexOf(' ');
      return i < 0 ? { subject: k, queue: undefined } : { subject: k.slice(0, i), queue: k.slice(i + 1) };
    });
  }

  /**
   * A message forwarded by a peer: to the local plain subscriptions, or, with
   * `queue`, to one local member of that queue group (the sender picked this
   * node for it). Never forwarded again (M6.1).
   */
  deliverFromPeer(
    subject: string,
    reply: string | undefined,
    headers: Buffer | undefined,
    payload: Buffer,
    queue: string | undefined,
  ): number {
    const match = this.sublist.match(subject);
    let n = 0;
    if (queue === undefined) {
      for (const sub of match.plain) {
        if (sub.owner.remote === true || sub.owner.closed) continue;
        sub.owner.deliver(sub, subject, reply, headers, payload);
        n++;
      }
      return n;
    }
    for (const group of match.groups) {
      if (group[0]?.queue !== queue) continue;
      const local = group.filter((s) => s.owner.remote !== true && !s.owner.closed);
      if (local.length === 0) return 0;
      const sub = local[(Math.random() * local.length) | 0]!;
      sub.owner.deliver(sub, subject, reply, headers, payload);
      return 1;
    }
    return 0;
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

/** Subjects have no spaces (C3.1), so one joins subject and queue. */
function interestKey(subject: string, queue: string | undefined): string {
  return queue === undefined ? subject : `${subject} ${queue}`;
}
