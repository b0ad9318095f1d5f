/**
 * Hand-off and merge (protocol/MESH.md section 7) on
 * `/swarmmq/handoff/1.0.0`. When this node becomes the owner of a
 * destination, it holds calls for it until it has merged what every live
 * member holds of it (M7.2); when members join or return, it merges their
 * copies and brings them up to date (M7.3). Merging matches messages by id:
 * a message only the peer has is taken over (unless it was acked here, M7.4);
 * a group's progress merges (done anywhere is done); the peer then gets what
 * it lacks and drops what the owner no longer has. Members no longer in the
 * preference list drop their copy.
 */
import type { DurableEngine } from '../durable/engine.js';
import type { Inventory, ReplicatedMessage } from '../durable/types.js';
import type { Logger } from '../log.js';
import type { Answer, Channel, ChannelHandlers } from './channel.js';
import type { Links } from './links.js';
import { joinBody, packBodies } from './bodies.js';
import {
  fetchedMessages,
  fetchedMore,
  handoffFetch,
  handoffGroups,
  handoffInventory,
  handoffName,
  inventoryPage,
} from './schema.js';
import { REPLICA_PROTOCOL } from './replication.js';
import type { HashRing } from './ring.js';
import { placementKey } from './ring.js';

export const HANDOFF_PROTOCOL = '/swarmmq/handoff/1.0.0';

/** Inventory entries per page and message bodies per fetch: frames stay well under the frame limit. */
const INVENTORY_PAGE = 4000;
const FETCH_BATCH = 128;
/** Body bytes in one fetch answer: half a frame, so a frame never reaches MAX_MESH_FRAME_BYTES. */
const FETCH_MAX_BYTES = 4 * 1024 * 1024;
/** A hand-off of more messages than this logs its progress this often. */
const PROGRESS_EVERY = 10_240;
/** A failed merge is tried again this often, doubling, while the peer stays a member. */
const SYNC_RETRIES = 8;
const SYNC_RETRY_FIRST_MS = 500;
const SYNC_RETRY_MAX_MS = 8000;
/** How long a hand-back waits for this node's view to make it the owner. */
const CLAIM_WAIT_MS = 10_000;
/** Calls wait at most this long for a takeover merge; then the node serves what it has (logged). */
const READY_WAIT_MS = 20_000;
/** Hand-backs waiting for this node's view (each polls for up to CLAIM_WAIT_MS): bounded, whatever peers send. */
const MAX_PENDING_CLAIMS = 4096;

export interface HandoffInit {
  engine: DurableEngine;
  links: Links;
  selfId: string;
  preferenceOf: (destination: string) => string[];
  peers: () => string[];
  /** Copies of each destination (cluster.replication_factor), capped by a view's size; default: the new list's length. */
  replicationFactor?: number;
}

export class Handoff {
  /** Takeover merges in progress: calls for these destinations wait (M7.2). */
  private readonly pending = new Map<string, Promise<void>>();
  /** Destinations this node owned after the last view change. */
  private owned = new Set<string>();
  /** Merges of one destination run one after another (see syncAll). */
  private readonly chains = new Map<string, Promise<void>>();
  /** Peers being synced per destination, so one change does not start the same work twice. */
  private readonly running = new Set<string>();
  /** Hand-backs waiting for this node to own the destination, by peer and destination. */
  private readonly claims = new Set<string>();
  private stopped = false;
  synced = 0;

  constructor(
    private readonly init: HandoffInit,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await this.init.links.handle(HANDOFF_PROTOCOL, (peer) => this.handlers(peer));
  }

  stop(): void {
    this.stopped = true;
  }

  /** Resolves when calls for `destination` may be served here. */
  ready(destination: string): Promise<void> {
    return this.pending.get(placementKey(destination)) ?? Promise.resolve();
  }

  /** After a membership change: take over, bring new members up to date, release dropped ones. */
  viewChanged(before: HashRing, after: HashRing, names: Iterable<string>): void {
    const self = this.init.selfId;
    const newMembers = after.members.filter((id) => id !== self && !before.members.includes(id));
    const owned = new Set<string>();
    for (const name of names) {
      const key = placementKey(name);
      if (key !== name) continue; // a dead-letter destination moves with its origin
      const list = after.preferenceList(key, this.init.preferenceOf(name).length || 1);
      if (after.owner(key) !== self) {
        // Owned here until now: what this node confirmed up to the switch must
        // reach the new owner even if its merge already ran (M7.2).
        if (this.owned.has(name) && list[0] !== undefined) void this.handBack(name, list[0]);
        continue;
      }
      owned.add(name);
      // The old list at the old view's size: a member that leaves can shorten the list (OPS1.3).
      const oldList = before.preferenceList(key, this.init.replicationFactor ?? list.length);
      if (!this.owned.has(name)) {
        this.takeover(name, this.init.peers());
      } else {
        const targets = new Set(newMembers);
        for (const id of list) if (id !== self && !oldList.includes(id)) targets.add(id);
        // A replica out of the list is merged and released; a leaving one too
        // (it is out of the ring but still a peer, OPS1.3).
        const peers = this.init.peers();
        for (const id of oldList)
          if (id !== self && !list.includes(id) && peers.includes(id)) targets.add(id);
        // Members that were away may hold sends this node never saw: calls
        // wait for the merge, as after a takeover (M7.2).
        if (targets.size > 0) this.takeover(name, [...targets], 'merged destination');
      }
    }
    this.owned = owned;
  }

  /**
   * This node stopped owning `name`: once its last writes are on disk, it asks
   * the new owner to merge its copy (the new owner may have merged before
   * this node stopped taking sends).
   */
  private async handBack(name: string, owner: string): Promise<void> {
    for (let attempt = 0; attempt <= SYNC_RETRIES && !this.stopped; attempt++) {
      try {
        await this.init.engine.commit();
        await new Promise((r) => setImmediate(r)); // sends of that batch join the schedule first
        const ch = await this.init.links.channel(owner, HANDOFF_PROTOCOL);
        await ch.request('claim', { d: name });
        return;
      } catch (err) {
        if (!this.init.peers().includes(owner)) return; // gone: its successor merges from everyone
        this.log.warn({ destination: name, owner, attempt, err: (err as Error).message }, 'hand-back failed');
        await new Promise((r) =>
          setTimeout(r, Math.min(SYNC_RETRY_MAX_MS, SYNC_RETRY_FIRST_MS * 2 ** attempt)),
        );
      }
    }
  }

  /** Whether this node owns `name`, waiting a little for its view to catch up with the claimant's. */
  private async whenOwned(name: string): Promise<boolean> {
    const deadline = Date.now() + CLAIM_WAIT_MS;
    while (!this.owned.has(name) && Date.now() < deadline && !this.stopped) {
      await new Promise((r) => setTimeout(r, 50));
    }
    return this.owned.has(name);
  }

  /** A destination this node just created as its owner (a send or CREATE): nothing to take over. */
  created(name: string): void {
    if (placementKey(name) === name) this.owned.add(name);
  }

  /** A destination announced by a peer that this node owns but had not heard of (M3.4). */
  discovered(name: string, isOwner: boolean): void {
    if (!isOwner || this.owned.has(placementKey(name)) || placementKey(name) !== name) return;
    this.owned.add(name);
    this.takeover(name, this.init.peers());
  }

  /** Merges with `peers` while calls for the destination wait (at most READY_WAIT_MS). */
  private takeover(name: string, peers: string[], what = 'took over destination'): void {
    const started = Date.now();
    // Chained after any merge already running for it, so this gate covers both.
    const work = this.syncAll(name, peers).then(() => {
      this.log.info({ destination: name, peers: peers.length, ms: Date.now() - started }, what);
    });
    const gate = Promise.race([
      work,
      new Promise<void>((resolve) =>
        setTimeout(() => {
          if (this.pending.has(name))
            this.log.warn({ destination: name }, 'takeover merge slow; serving what is here');
          resolve();
        }, READY_WAIT_MS).unref(),
      ),
    ]);
    this.pending.set(name, gate);
    void gate.finally(() => {
      if (this.pending.get(name) === gate) this.pending.delete(name);
    });
  }

  /**
   * Merges with each peer in turn: one merge per destination at a time, so
   * a message two peers both have is taken over once (M7.3).
   */
  private syncAll(name: string, peers: string[]): Promise<void> {
    return this.enqueue(name, async () => {
      for (const p of peers) await this.sync(name, p, 0);
    });
  }

  private enqueue(name: string, work: () => Promise<void>): Promise<void> {
    const next = (this.chains.get(name) ?? Promise.resolve()).then(work);
    this.chains.set(name, next);
    void next.finally(() => {
      if (this.chains.get(name) === next) this.chains.delete(name);
    });
    return next;
  }

  /** Merges one peer's copy of a destination (and of its dead letters) into this owner's, then updates or releases the peer. */
  private async sync(name: string, peer: string, attempt: number): Promise<void> {
    const key = `${name} ${peer}`;
    if (this.running.has(key) || this.stopped) return;
    this.running.add(key);
    const started = Date.now();
    try {
      const ch = await this.init.links.channel(peer, HANDOFF_PROTOCOL);
      const stats = { imported: 0, pushed: 0, removed: 0 };
      for (const d of [name, `${name}.DLQ`]) {
        const r = await this.syncOne(d, peer, ch);
        stats.imported += r.imported;
        stats.pushed += r.pushed;
        stats.removed += r.removed;
      }
      const keep = this.init.preferenceOf(name).includes(peer);
      if (!keep) await ch.request('forget', { d: name });
      this.synced++;
      if (stats.imported + stats.pushed + stats.removed > 0 || !keep) {
        this.log.info(
          { destination: name, peer, ...stats, released: !keep, ms: Date.now() - started },
          'destination synced with peer',
        );
      }
    } catch (err) {
      // A link from before a split may fail the first try: retried with
      // backoff while the peer is a member and this node the owner (M7.2).
      const retry = attempt < SYNC_RETRIES && this.init.peers().includes(peer);
      const delayMs = Math.min(SYNC_RETRY_MAX_MS, SYNC_RETRY_FIRST_MS * 2 ** attempt);
      this.log.warn(
        {
          destination: name,
          peer,
          attempt,
          retryInMs: retry ? delayMs : undefined,
          err: (err as Error).message,
        },
        'sync with peer failed',
      );
      if (retry) {
        setTimeout(() => {
          if (this.owned.has(name) && this.init.peers().includes(peer)) {
            void this.enqueue(name, () => this.sync(name, peer, attempt + 1));
          }
        }, delayMs).unref();
      }
    } finally {
      this.running.delete(key);
    }
  }

  private async syncOne(
    name: string,
    peer: string,
    ch: Channel,
  ): Promise<{ imported: number; pushed: number; removed: number }> {
    const engine = this.init.engine;
    const out = { imported: 0, pushed: 0, removed: 0 };
    // 1. What the peer has.
    const theirs: Inventory['items'] = [];
    let theirMeta: Inventory | undefined;
    for (let after = 0; ;) {
      const a = await ch.request('inventory', { d: name, after, limit: INVENTORY_PAGE });
      // Checked (M4.6): at most a page, and a next page after this one, so the paging ends.
      const inv = inventoryPage(a.head, after, INVENTORY_PAGE);
      if (inv === undefined) break;
      theirMeta ??= inv;
      theirs.push(...inv.items);
      if (inv.next === undefined) break;
      after = inv.next;
    }
    if (theirMeta === undefined && !engine.isDestination(name)) return out;
    // 2. Merge it here: same id -> progress merges; unknown id -> taken over unless acked here.
    const mineById = new Map<string, number>();
    const dest = engine.dests.get(name);
    if (dest !== undefined) for (const m of dest.msgs.values()) mineById.set(m.id, m.seq);
    // Removed there (acked by every group, expired, dead-lettered): removed here too (acks merge).
    const theirRemoved = new Set(theirMeta?.removed ?? []);
    for (const id of theirRemoved) {
      if (mineById.has(id) && engine.removeById(name, id)) mineById.delete(id);
    }
    const toFetch: Inventory['items'] = [];
    for (const it of theirs) {
      const seq = mineById.get(it.id);
      if (seq !== undefined) engine.mergeStates(name, seq, it.st);
      else if (!engine.isTombstoned(name, it.id)) toFetch.push(it);
    }
    if (theirMeta !== undefined && !engine.isDestination(name))
      engine.createDestination(name, theirMeta.settings, true);
    const states = new Map(toFetch.map((b) => [b.seq, b.st]));
    const queue = toFetch.map((b) => b.seq);
    let asked = 0;
    while (queue.length > 0) {
      const seqs = queue.splice(0, FETCH_BATCH);
      const a = await ch.request('fetch', { d: name, seqs });
      const msgs = fetchedMessages(a.head, a.data ?? Buffer.alloc(0), seqs);
      // Held back for the answer's byte budget: asked for first in the next round.
      const more = fetchedMore(a.head, seqs);
      if (more.length === seqs.length) throw new Error(`fetch of ${name} from ${peer} made no progress`);
      queue.unshift(...more);
      // A batch at once: each import waits for its sync here and at the replicas.
      await Promise.all(msgs.map((m) => engine.importMessage(name, m, states.get(m.seq) ?? [])));
      out.imported += msgs.length;
      asked += seqs.length - more.length;
      this.progress(name, peer, 'taking over', asked, toFetch.length);
    }
    // 3. Bring the peer up to date, if it is to keep a copy.
    if (!this.init.preferenceOf(name).includes(peer)) return out;
    const rep = await this.init.links.channel(peer, REPLICA_PROTOCOL);
    const mine = engine.inventory(name, 0, Number.MAX_SAFE_INTEGER);
    if (mine === undefined) return out;
    await ch.request('groups', {
      d: name,
      settings: mine.settings,
      groups: mine.groups,
      lastSeq: mine.lastSeq,
    });
    // What the peer has that this owner does not (or under another id): dropped first, so the
    // owner's message with that seq can take its place.
    const mineBySeq = new Map(mine.items.map((m) => [m.seq, m.id]));
    for (const t of theirs) {
      if (mineBySeq.get(t.seq) === t.id) continue;
      rep.event('change', { d: name, c: { op: 'remove', seq: t.seq, relayout: true } });
      out.removed++;
    }
    const theirBySeq = new Map(theirs.map((t) => [t.seq, t.id]));
    const missing = mine.items.filter((m) => theirBySeq.get(m.seq) !== m.id);
    for (let i = 0; i < missing.length; i += FETCH_BATCH) {
      const msgs = await engine.exportMessages(
        name,
        missing.slice(i, i + FETCH_BATCH).map((m) => m.seq),
      );
      await Promise.all(msgs.map((m) => replicate(rep, name, m)));
      out.pushed += msgs.length;
      this.progress(name, peer, 'handing to', i + FETCH_BATCH, missing.length);
    }
    for (const m of mine.items) {
      for (const [group, deliveries, done, deadlineMs] of m.st) {
        rep.event('change', {
          d: name,
          c: { op: 'state', group, seq: m.seq, deliveries, done: done === 1, deadlineMs },
        });
      }
    }
    await ch.request('flush', {});
    return out;
  }

  /** Long hand-offs show progress (every PROGRESS_EVERY messages). */
  private progress(name: string, peer: string, what: string, done: number, total: number): void {
    if (total < PROGRESS_EVERY || (done % PROGRESS_EVERY >= FETCH_BATCH && done < total)) return;
    this.log.info({ destination: name, peer, done: Math.min(done, total), total }, `hand-off: ${what} peer`);
  }

  /** What a peer does when an owner syncs with it. */
  private handlers(peer: string): ChannelHandlers {
    const engine = this.init.engine;
    // Each head is checked before it is acted on; a malformed one is answered with MalformedMessage (M4.6).
    return {
      request: async (method, head): Promise<Answer> => {
        switch (method) {
          case 'inventory': {
            const { d, after, limit } = handoffInventory(head, INVENTORY_PAGE);
            return { head: { inv: engine.inventory(d, after, limit) } };
          }
          case 'fetch': {
            const { d, seqs } = handoffFetch(head, FETCH_BATCH);
            return encodeMessages(await engine.exportMessages(d, seqs), seqs);
          }
          case 'groups': {
            const { d, ...inv } = handoffGroups(head);
            engine.applyGroups(d, inv);
            await engine.commit();
            return {};
          }
          case 'flush':
            await engine.commit();
            return {};
          case 'claim': {
            const d = placementKey(handoffName(head));
            // One wait per peer and destination: a peer repeating a claim adds no timers (M7.2).
            const key = `${peer} ${d}`;
            if (this.claims.has(key)) return {};
            if (this.claims.size >= MAX_PENDING_CLAIMS) throw new Error('too many hand-backs pending');
            this.claims.add(key);
            // The previous owner hands back what it took; merged after whatever is queued (M7.2).
            void this.whenOwned(d)
              .then((mine) => {
                if (mine) void this.syncAll(d, [peer]);
              })
              .finally(() => this.claims.delete(key));
            return {};
          }
          case 'forget': {
            const d = handoffName(head);
            for (const n of [d, `${d}.DLQ`]) engine.forgetDestination(n);
            await engine.commit();
            return {};
          }
          default:
            throw new Error(`unknown hand-off request ${method}`);
        }
      },
    };
  }
}

function replicate(ch: Channel, name: string, m: ReplicatedMessage): Promise<Answer> {
  const { headers, payload, ...meta } = m;
  return ch.request(
    'msg',
    { d: name, msg: { ...meta, hl: headers?.length ?? -1 } },
    joinBody(headers, payload),
  );
}

/**
 * A fetch answer: bodies up to FETCH_MAX_BYTES (always at least one
 * message), and the asked seqs held back for that budget under `more`, so
 * large messages never make a frame past the mesh's limit (M4.1).
 */
function encodeMessages(msgs: ReplicatedMessage[], asked: readonly number[]): Answer {
  let bytes = 0;
  let n = 0;
  while (n < msgs.length) {
    const m = msgs[n]!;
    const size = m.payload.length + (m.headers?.length ?? 0);
    if (n > 0 && bytes + size > FETCH_MAX_BYTES) break;
    bytes += size;
    n++;
  }
  const sent = new Set(msgs.slice(0, n).map((m) => m.seq));
  const held = new Set(msgs.slice(n).map((m) => m.seq));
  const { meta, data } = packBodies(msgs.slice(0, n));
  const more = asked.filter((s) => held.has(s) && !sent.has(s));
  return { head: more.length === 0 ? { msgs: meta } : { msgs: meta, more }, data };
}
