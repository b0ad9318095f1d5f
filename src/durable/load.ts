/**
 * Loading at start (protocol/STORAGE.md S1.3): each record kind is read in
 * turn, streaming, into the engine's maps; only the schedule is kept, never
 * a copy of the store.
 */
import { decodeState, type Store } from '../store/store.js';
import { Prefix, parseMessageKey, parseStateKey, readU64 } from '../store/keys.js';
import { readMeta, readSchedule } from '../store/envelope.js';
import { Destination, Group, type DestinationSettings, type TimerEvent } from './model.js';

/** What loading fills in. */
export interface LoadTarget {
  readonly dests: Map<string, Destination>;
  readonly byId: Map<number, Destination>;
  settingsFor(name: string): DestinationSettings;
  schedule(e: TimerEvent): void;
}

export interface Loaded {
  nextDestId: number;
  nextGroupId: number;
  quarantined: number;
}

export async function loadState(store: Store, t: LoadTarget): Promise<Loaded> {
  const out: Loaded = { nextDestId: 1, nextGroupId: 1, quarantined: 0 };
  const now = Date.now();
  const persistedLastSeq = new Map<Destination, number>();
  await store.scan(Prefix.Node, (k, v) => {
    const name = k.toString('utf8', 1);
    if (name === 'dest') out.nextDestId = Number(v.toString());
    if (name === 'group') out.nextGroupId = Number(v.toString());
  });
  await store.scan(Prefix.Destination, (k, v) => {
    const name = k.toString('utf8', 1); // as destinationKey wrote it
    const j = JSON.parse(v.toString()) as { id: number; settings: DestinationSettings; lastSeq?: number };
    const dest = new Destination(j.id, name, { ...t.settingsFor(name), ...j.settings }, 0);
    t.dests.set(name, dest);
    t.byId.set(dest.id, dest);
    persistedLastSeq.set(dest, j.lastSeq ?? 0);
  });
  const groupsById = new Map<number, Group>();
  await store.scan(Prefix.Group, (k, v) => {
    const dest = t.byId.get(k.readUInt32BE(1));
    if (dest === undefined) return;
    const j = JSON.parse(v.toString()) as { id: number; ackTimeoutMs: number; maxDeliveries: number };
    const group = new Group(j.id, k.toString('utf8', 5), j.ackTimeoutMs, j.maxDeliveries);
    dest.groups.set(group.name, group);
    groupsById.set(group.id, group);
  });
  await store.scan(Prefix.Message, (k, v) => {
    const { destId, priority, seq } = parseMessageKey(k);
    const dest = t.byId.get(destId);
    if (dest === undefined) return;
    // A record too damaged to read is still loaded; delivering it sets it aside (D8.3).
    let head: { expiresAtMs: number; notBeforeMs: number; id: string };
    try {
      head = readMeta(v);
    } catch {
      head = { ...readSchedule(v), id: '' };
    }
    const { expiresAtMs, notBeforeMs, id } = head;
    const size = k.length + v.length;
    dest.msgs.set(seq, {
      seq,
      id,
      priority,
      size,
      expiresAtMs,
      notBeforeMs: notBeforeMs > now ? notBeforeMs : 0,
    });
    dest.bytes += size;
    if (seq > dest.lastSeq) dest.lastSeq = seq;
  });
  await store.scan(Prefix.State, (k, v) => {
    const { destId, groupId, seq } = parseStateKey(k);
    const group = groupsById.get(groupId);
    const dest = t.byId.get(destId);
    if (group === undefined || dest === undefined || !dest.msgs.has(seq)) return;
    const st = decodeState(v);
    if (st.deliveries > 0) group.deliveries.set(seq, st.deliveries);
    if (st.done) group.done.add(seq);
    else if (st.deadlineMs > 0) {
      // In flight when the node stopped: it comes back at its ack deadline (D4.6).
      group.inflight.set(seq, {
        delivery: st.deliveries,
        deadlineMs: st.deadlineMs,
        eventDueMs: st.deadlineMs,
      });
      t.schedule({ dueMs: st.deadlineMs, kind: 'deadline', dest, group, seq, delivery: st.deliveries });
    }
  });
  for (const dest of t.dests.values()) {
    // Sequence numbers never go back, even when the newest messages were removed (D3.3).
    const lastSeq = persistedLastSeq.get(dest) ?? 0;
    if (lastSeq > dest.lastSeq) dest.lastSeq = lastSeq;
    for (const msg of dest.msgs.values()) {
      if (msg.expiresAtMs > 0) t.schedule({ dueMs: msg.expiresAtMs, kind: 'expire', dest, seq: msg.seq });
      if (msg.notBeforeMs > 0) {
        t.schedule({ dueMs: msg.notBeforeMs, kind: 'release', dest, seq: msg.seq });
        continue;
      }
      for (const g of dest.groups.values()) {
        if (!g.done.has(msg.seq) && !g.inflight.has(msg.seq)) g.ready.push(msg.priority, msg.seq);
      }
    }
  }
  await store.scan(Prefix.Dedup, (k, v) => {
    const dest = t.byId.get(k.readUInt32BE(1));
    if (dest === undefined) return;
    const id = k.toString('utf8', 5);
    const storedAtMs = v.readUIntBE(8, 6);
    dest.dedup.set(id, { seq: readU64(v, 0), storedAtMs });
    dest.dedupOrder.push({ id, storedAtMs });
  });
  for (const dest of t.dests.values()) dest.dedupOrder.sort((a, b) => a.storedAtMs - b.storedAtMs);
  out.quarantined = await store.count(Prefix.Quarantine);
  return out;
}
