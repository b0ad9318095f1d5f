/**
 * What the SDK knows of the cluster: the members of the ring, their client
 * addresses and the replication factor, read from the `swarmmq` field of a
 * node's INFO (CLIENT.md C2.9, MESH.md M2.5), which every node sends again
 * whenever its view changes. Owners are computed with the nodes' own ring
 * module (src/mesh/ring.ts), so the SDK and the nodes agree whenever their
 * views do; when they do not, the node the SDK picked forwards the call to
 * the owner (M4.5), so a stale view costs a hop, never a message.
 */
import { DEFAULT_VNODES, HashRing, placementKey } from '../mesh/ring.js';
import type { ClusterView, ViewMember } from '../protocol/cluster-view.js';

export type { ClusterView, ViewMember };

/** Most members a view may list: bounds the ring the SDK builds from one INFO. */
const MAX_MEMBERS = 1024;
/** The ring's own bound on points per member (src/mesh/ring.ts). */
const MAX_VNODES = 4096;

/** The view in an INFO, or undefined (a standalone node, or a field this SDK cannot read). */
export function viewFromInfo(info: Record<string, unknown>): ClusterView | undefined {
  const raw = info.swarmmq as Record<string, unknown> | undefined;
  if (raw === null || typeof raw !== 'object') return undefined;
  const { self, rf, members } = raw;
  const vnodes =
    Number.isInteger(raw.vnodes) && (raw.vnodes as number) >= 1 && (raw.vnodes as number) <= MAX_VNODES
      ? (raw.vnodes as number)
      : DEFAULT_VNODES;
  if (typeof self !== 'string' || typeof rf !== 'number' || !Array.isArray(members)) return undefined;
  if (members.length === 0 || members.length > MAX_MEMBERS) return undefined;
  const out: ViewMember[] = [];
  for (const m of members as Record<string, unknown>[]) {
    if (m === null || typeof m !== 'object' || typeof m.id !== 'string' || typeof m.client !== 'string') {
      return undefined;
    }
    const mesh = Array.isArray(m.mesh) ? m.mesh.filter((a): a is string => typeof a === 'string') : [];
    out.push({ id: m.id, client: m.client, mesh });
  }
  return { self, rf: Math.max(1, Math.min(rf, out.length)), vnodes, members: out };
}

/** The ring of a view, and owners from it. Immutable; a new view makes a new Placement. */
export class Placement {
  private readonly ring: HashRing;
  private readonly byId: ReadonlyMap<string, ViewMember>;

  constructor(readonly view: ClusterView) {
    this.ring = new HashRing(
      view.members.map((m) => m.id),
      view.vnodes,
    );
    this.byId = new Map(view.members.map((m) => [m.id, m]));
  }

  /** The destination's owner (M3.2; `X.DLQ` lives with `X`). */
  owner(destination: string): ViewMember | undefined {
    const id = this.ring.owner(placementKey(destination));
    return id === undefined ? undefined : this.byId.get(id);
  }

  /** Owner first, then replicas in failover order. */
  preferenceList(destination: string): ViewMember[] {
    return this.ring
      .preferenceList(placementKey(destination), this.view.rf)
      .map((id) => this.byId.get(id)!)
      .filter((m) => m !== undefined);
  }

  member(id: string): ViewMember | undefined {
    return this.byId.get(id);
  }

  /** True if both views have the same members at the same addresses, and place every destination alike. */
  sameView(other: Placement | undefined): boolean {
    if (other === undefined || !this.ring.equals(other.ring) || this.view.rf !== other.view.rf) return false;
    return this.view.members.every((m) => {
      const o = other.byId.get(m.id);
      return o !== undefined && o.client === m.client && o.mesh.join(' ') === m.mesh.join(' ');
    });
  }
}
