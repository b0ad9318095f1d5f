/**
 * In-memory state of durable destinations and their consumer groups
 * (protocol/DURABLE.md section 2). Rebuilt from the store at start; every
 * change to it is also queued to the store as a small record.
 */
import { ReadyQueue } from './heap.js';

/** Per-destination settings (YAML `destinations:`, the CREATE verb). */
export interface DestinationSettings {
  /** TTL applied to messages sent without one; 0 = none. */
  readonly defaultTtlMs: number;
  /** Most messages stored; sends beyond are refused. */
  readonly maxMsgs: number;
  /** Most stored bytes (records: key and value, as DESTS bytes= counts them); sends beyond are refused. */
  readonly maxBytes: number;
  /** Whether expired messages go to the dead-letter destination instead of being dropped. */
  readonly deadLetterExpired: boolean;
  /** Deliveries per group before a message is dead-lettered (0 = unlimited). */
  readonly maxDeliveries: number;
  /** Default ack timeout of its groups. */
  readonly ackTimeoutMs: number;
  /** Dead-letter destination name; undefined for a dead-letter destination itself. */
  readonly deadLetter: string | undefined;
}

export interface StoredMsg {
  readonly seq: number;
  /** Its id (given or assigned): how copies on other nodes are matched (protocol/MESH.md M7.3). */
  readonly id: string;
  readonly priority: number;
  /** Bytes on the record (key + value). */
  readonly size: number;
  readonly expiresAtMs: number;
  /** Deliverable from this time; 0 once released. */
  notBeforeMs: number;
  /** Being expired or dead-lettered: no longer delivered. */
  leaving?: boolean;
}

export interface InFlight {
  delivery: number;
  deadlineMs: number;
  /** When the pull took it (this node's clock), for the pull-to-settle metric; unknown after a restart or takeover. */
  takenAtMs?: number;
  /**
   * Due time of the earliest timer event this delivery has. One live event
   * per delivery: a later deadline (WIP, a longer NAK delay) is handled by
   * rescheduling when that event fires, so a client looping on WIP cannot
   * grow the timer heap.
   */
  eventDueMs: number;
}

export class Group {
  readonly ready = new ReadyQueue();
  readonly inflight = new Map<number, InFlight>();
  /** Deliveries so far, per message that was delivered at least once. */
  readonly deliveries = new Map<number, number>();
  /** Messages this group acked, termed or dead-lettered (while others still need them). */
  readonly done = new Set<number>();
  readonly waiters: Waiter[] = [];
  constructor(
    readonly id: number,
    readonly name: string,
    public ackTimeoutMs: number,
    public maxDeliveries: number,
  ) {}
}

/** A message a pull took: its seq and the delivery number it was taken as. */
export interface Taken {
  readonly seq: number;
  readonly delivery: number;
}

export interface Waiter {
  readonly max: number;
  readonly resolve: (taken: Taken[]) => void;
  settled: boolean;
}

export class Destination {
  readonly msgs = new Map<number, StoredMsg>();
  readonly groups = new Map<string, Group>();
  bytes = 0;
  /** De-duplication: id -> seq, and the ids in the order stored for pruning. */
  readonly dedup = new Map<string, { seq: number; storedAtMs: number }>();
  readonly dedupOrder: { id: string; storedAtMs: number }[] = [];
  dedupHead = 0;
  /** Ids of sends that are being written, so a second one in the same batch is a duplicate. */
  readonly pendingIds = new Map<string, Promise<{ seq: number }>>();
  /** Sends checked against the limits and being written: counted by the next send's checks (D8.4). */
  pendingMsgs = 0;
  pendingBytes = 0;
  stored = 0;
  /** lastSeq changed since the destination record was last written. */
  seqDirty = false;
  expired = 0;
  deadLettered = 0;
  /**
   * In a mesh, whether this node owns the destination (serves pulls, runs its
   * timers, replicates its changes) or holds a replica (applies the owner's
   * changes). A standalone node owns everything (protocol/MESH.md M5.1).
   */
  role: 'owner' | 'replica' = 'owner';
  constructor(
    readonly id: number,
    readonly name: string,
    public settings: DestinationSettings,
    public lastSeq: number,
  ) {}

  /** True when every group has finished with the message (and there is at least one group). */
  doneByAll(seq: number): boolean {
    if (this.groups.size === 0) return false;
    for (const g of this.groups.values()) if (!g.done.has(seq)) return false;
    return true;
  }
}

/** A due time the engine's scheduler keeps (the handler checks whether it is still current). */
export type TimerEvent =
  | { dueMs: number; kind: 'deadline'; dest: Destination; group: Group; seq: number; delivery: number }
  | { dueMs: number; kind: 'nak'; dest: Destination; group: Group; seq: number; delivery: number }
  | { dueMs: number; kind: 'release'; dest: Destination; seq: number }
  | { dueMs: number; kind: 'expire'; dest: Destination; seq: number };
