/**
 * The cluster view a node sends clients in INFO's `swarmmq` field
 * (protocol/CLIENT.md C2.9, MESH.md M2.5): what a client needs to compute
 * owners with the ring (src/mesh/ring.ts) the way nodes do. The mesh builds
 * it (src/mesh/mesh.ts), the server puts it in INFO, the SDK reads it
 * (src/sdk/view.ts).
 */

/** One member of the view. */
export interface ViewMember {
  /** Its libp2p peer id. */
  readonly id: string;
  /** host:port of its client listener, as in `connect_urls`. */
  readonly client: string;
  /** Its mesh multiaddrs, each ending in `/p2p/<id>`: where it offers the libp2p client transport. */
  readonly mesh: readonly string[];
}

/**
 * The ring a node uses for ownership: `new HashRing(members ids, vnodes)
 * .preferenceList(placementKey(dest), rf)` gives what the node computes (M3.2).
 */
export interface ClusterView {
  /** The sending node's peer id. */
  readonly self: string;
  /** The replication factor in force: `cluster.replication_factor` capped at the view's size (M3.1). */
  readonly rf: number;
  /** Points per member on the ring (M3.2). */
  readonly vnodes: number;
  /** The ring's members (the view, leaving members left out), sorted by id. */
  readonly members: readonly ViewMember[];
}
