/**
 * The latency histograms (protocol/METRICS.md MT3) and the hooks the parts
 * call with their timings: the client session (send-to-confirm, delivery
 * latency), the durable engine (pull-to-settle) and the mesh (forward and
 * replication round trips per peer). The parts know only their small
 * observer interfaces; prom-client stays here.
 */
import { Histogram, type Registry } from 'prom-client';
import type { EngineObserver } from '../durable/engine.js';
import type { ForwardObserver, ForwardOp } from '../mesh/durable-routing.js';
import type { ReplicaObserver } from '../mesh/replication.js';
import type { SessionObserver } from '../server/durable-session.js';
import {
  CONFIRM_BUCKETS_SECONDS,
  DELIVERY_BUCKETS_SECONDS,
  MESH_BUCKETS_SECONDS,
  SETTLE_BUCKETS_SECONDS,
} from './constants.js';

type Child = { observe(seconds: number): void };
type SettleKind = 'ack' | 'nak' | 'term';

export class Timings implements SessionObserver, EngineObserver, ForwardObserver, ReplicaObserver {
  private readonly confirm: Histogram;
  private readonly delivery: Histogram;
  /** Prebound per kind: the ACK path does no label work of its own. */
  private readonly settle: Record<SettleKind, Child>;
  private readonly forward: Histogram<'peer' | 'op'>;
  private readonly replication: Histogram<'peer'>;
  /** Children per peer, made on a peer's first round trip; dropped when it leaves (prunePeers). */
  private readonly forwardChildren = new Map<string, Partial<Record<ForwardOp, Child>>>();
  private readonly replicaChildren = new Map<string, Child>();

  constructor(registry: Registry) {
    const registers = [registry];
    this.confirm = new Histogram({
      name: 'swarmmq_durable_send_confirm_seconds',
      help: 'From a SEND (or a PUB to a destination) arriving at this node to its +STORED (or publish ack) going out: the sync, and the replicas in a cluster.',
      buckets: [...CONFIRM_BUCKETS_SECONDS],
      registers,
    });
    this.delivery = new Histogram({
      name: 'swarmmq_durable_delivery_latency_seconds',
      help: "From a message's stored timestamp to its first delivery to a consumer in a PULL on this node (end to end; includes any delay= and the time it waited in the queue).",
      buckets: [...DELIVERY_BUCKETS_SECONDS],
      registers,
    });
    const settle = new Histogram<'kind'>({
      name: 'swarmmq_durable_settle_seconds',
      help: 'From a delivery (PULL) to its ACK, NAK or TERM at the engine of the owner, by kind.',
      labelNames: ['kind'],
      buckets: [...SETTLE_BUCKETS_SECONDS],
      registers,
    });
    // Each kind from zero, so rate() sees the first settle of a kind as an increase.
    for (const kind of ['ack', 'nak', 'term'] as const) settle.zero({ kind });
    this.settle = { ack: settle.labels('ack'), nak: settle.labels('nak'), term: settle.labels('term') };
    this.forward = new Histogram({
      name: 'swarmmq_mesh_forward_seconds',
      help: "Round trip of a durable call forwarded to the destination's owner, by owner peer id and call (a pull includes its wait).",
      labelNames: ['peer', 'op'],
      buckets: [...MESH_BUCKETS_SECONDS],
      registers,
    });
    this.replication = new Histogram({
      name: 'swarmmq_mesh_replication_seconds',
      help: 'Round trip of a stored message copied to a replica until the replica has synced it, by replica peer id.',
      labelNames: ['peer'],
      buckets: [...MESH_BUCKETS_SECONDS],
      registers,
    });
  }

  // ---- SessionObserver ----

  confirmed(ms: number): void {
    observe(this.confirm, ms);
  }

  delivered(ageMs: number): void {
    // Another node's clock stamped it in a cluster: a small skew must not go negative (observe clamps).
    observe(this.delivery, ageMs);
  }

  // ---- EngineObserver ----

  settled(kind: SettleKind, ms: number): void {
    observe(this.settle[kind], ms);
  }

  // ---- ForwardObserver, ReplicaObserver ----

  forwarded(peer: string, op: ForwardOp, ms: number): void {
    let byOp = this.forwardChildren.get(peer);
    if (byOp === undefined) this.forwardChildren.set(peer, (byOp = {}));
    observe((byOp[op] ??= this.forward.labels(peer, op)), ms);
  }

  replicated(peer: string, ms: number): void {
    let child = this.replicaChildren.get(peer);
    if (child === undefined) this.replicaChildren.set(peer, (child = this.replication.labels(peer)));
    observe(child, ms);
  }

  /**
   * MT3.4: a peer's series go when it is no longer a member, so the `peer`
   * label stays bounded by the membership, not by every peer ever seen.
   */
  prunePeers(members: ReadonlySet<string>): void {
    for (const [peer, byOp] of this.forwardChildren) {
      if (members.has(peer)) continue;
      for (const op of Object.keys(byOp)) this.forward.remove(peer, op);
      this.forwardChildren.delete(peer);
    }
    for (const peer of this.replicaChildren.keys()) {
      if (members.has(peer)) continue;
      this.replication.remove(peer);
      this.replicaChildren.delete(peer);
    }
  }
}

/**
 * Milliseconds into a histogram in seconds. The hooks sit on reply paths, and
 * prom-client throws on a value that is not finite (a stored timestamp from a
 * bad clock): such a value is dropped, never thrown into a reply.
 */
function observe(h: Child, ms: number): void {
  if (Number.isFinite(ms)) h.observe(Math.max(0, ms) / 1000);
}
