/**
 * The consistent-hash ring that places destinations on mesh nodes.
 *
 * Pure and deterministic: a ring is a function of its member set and vnode
 * count only, never of input order, time or randomness, so every node that
 * sees the same membership computes the same owner without talking to the
 * others. Each member gets `vnodes` points on a 48-bit circle; a key belongs
 * to the first point at or after its own position (clockwise, wrapping).
 * Adding a member therefore moves only keys onto it, and removing one moves
 * only its keys, each to the next member of its old preference list.
 *
 * A ring is immutable: membership changes build a new one, which is why the
 * build is kept cheap (10 members x 128 vnodes = 1280 hashes).
 */

import { createHash } from 'node:crypto';

/** Virtual nodes per member: enough for a balanced split of 3-10 nodes, cheap to rebuild on every membership change. */
export const DEFAULT_VNODES = 128;

/** Most vnodes per member: bounds the build cost and the ring's memory (16 bytes a point). */
const MAX_VNODES = 4096;

/** The ring's circumference: positions are 48-bit, so they and their differences are exact in a double. */
const RING_SIZE = 2 ** 48;

/** Suffix of a dead-letter destination (see DURABLE.md: `X.DLQ` is created for `X`). */
const DLQ_SUFFIX = '.DLQ';

/**
 * Where a destination is placed: a dead-letter destination `X.DLQ` is placed
 * with `X` (strip ONE trailing ".DLQ"), so the copy into it and the origin's
 * "done" stay on the same nodes. Only one suffix is stripped because
 * `X.DLQ.DLQ` is the dead-letter of `X.DLQ`, which lives with `X.DLQ`.
 */
export function placementKey(destination: string): string {
  return destination.endsWith(DLQ_SUFFIX) ? destination.slice(0, -DLQ_SUFFIX.length) : destination;
}

/**
 * A stable 48-bit position on the ring (a safe integer), from SHA-256 of the
 * UTF-8 text (first 6 bytes, big-endian). A cryptographic hash, not a fast
 * one, so peer ids an attacker picks cannot cluster, and every Node version
 * and platform agrees on the value.
 */
export function ringPosition(text: string): number {
  return createHash('sha256').update(text, 'utf8').digest().readUIntBE(0, 6);
}

/** An immutable consistent-hash ring over peer ids. */
export class HashRing {
  /** Distinct member ids, sorted: a member's index here is its tie-breaker and its id in `owners`. */
  readonly members: readonly string[];
  /** Number of distinct members. */
  readonly size: number;
  /** Virtual nodes per member. */
  readonly vnodes: number;
  /** Vnode positions, ascending. */
  private readonly positions: Float64Array;
  /** `owners[j]` is the index in `members` of the vnode at `positions[j]`. */
  private readonly owners: Uint32Array;
  /** Each member's fraction of the circle as first choice, by member index; computed once for metrics. */
  private readonly shares: Float64Array;

  /**
   * @param members peer ids; duplicates are ignored and order does not matter.
   * @param vnodes points per member, a positive integer up to 4096.
   * @default vnodes DEFAULT_VNODES
   */
  constructor(members: Iterable<string>, vnodes: number = DEFAULT_VNODES) {
    if (!Number.isInteger(vnodes) || vnodes < 1 || vnodes > MAX_VNODES) {
      throw new RangeError(`HashRing: vnodes must be an integer in 1..${MAX_VNODES}, got ${vnodes}`);
    }
    // Sorting (by UTF-16 code units, locale-free) is what makes the result independent of input order.
    const ids = [...new Set(members)].sort();
    if (ids.some((id) => typeof id !== 'string' || id === '')) {
      throw new TypeError('HashRing: member ids must be non-empty strings');
    }
    this.members = Object.freeze(ids);
    this.size = ids.length;
    this.vnodes = vnodes;

    const count = ids.length * vnodes;
    const rawPositions = new Float64Array(count);
    for (let m = 0; m < ids.length; m++) {
      for (let i = 0; i < vnodes; i++) {
        // `${id}#${i}` is injective: i has no '#', so the last '#' splits the text back into (id, i).
        rawPositions[m * vnodes + i] = ringPosition(`${ids[m]}#${i}`);
      }
    }
    // Points are built member-major (point j is member j / vnodes), so sorting indices by
    // (position, index) breaks position ties by member index, the same on every node.
    const order = Array.from({ length: count }, (_, j) => j);
    order.sort((a, b) => rawPositions[a]! - rawPositions[b]! || a - b);
    this.positions = Float64Array.from(order, (j) => rawPositions[j]!);
    this.owners = Uint32Array.from(order, (j) => Math.floor(j / vnodes));

    // Point j takes the keys in (positions[j-1], positions[j]]; point 0 also takes the wrap-around.
    this.shares = new Float64Array(ids.length);
    for (let j = 0; j < count; j++) {
      const previous = j === 0 ? this.positions[count - 1]! - RING_SIZE : this.positions[j - 1]!;
      this.shares[this.owners[j]!]! += (this.positions[j]! - previous) / RING_SIZE;
    }
  }

  /**
   * The first `n` distinct members clockwise from the key's position (n
   * capped at size; [] for an empty ring). Entry 0 is the owner; the rest are
   * replicas in failover order: when the owner leaves, entry 1 takes over.
   */
  preferenceList(key: string, n: number): string[] {
    if (!Number.isInteger(n) || n < 0) {
      throw new RangeError(`HashRing.preferenceList: n must be a non-negative integer, got ${n}`);
    }
    const want = Math.min(n, this.size);
    const out: string[] = [];
    if (want === 0) return out;
    const count = this.positions.length;
    const seen = new Uint8Array(this.size);
    let j = this.firstAtOrAfter(ringPosition(key));
    // Every member has a point, so one lap always finds `want` members.
    for (let steps = 0; out.length < want && steps < count; steps++, j = j + 1 === count ? 0 : j + 1) {
      const m = this.owners[j]!;
      if (seen[m] === 0) {
        seen[m] = 1;
        out.push(this.members[m]!);
      }
    }
    return out;
  }

  /** The key's owner, `preferenceList(key, 1)[0]`; undefined for an empty ring. */
  owner(key: string): string | undefined {
    if (this.size === 0) return undefined;
    return this.members[this.owners[this.firstAtOrAfter(ringPosition(key))]!];
  }

  /** Fraction (0..1) of the ring's positions each member owns as first choice: for metrics. 0 for a non-member. */
  share(member: string): number {
    const m = binarySearchString(this.members, member);
    return m < 0 ? 0 : this.shares[m]!;
  }

  /** True if both rings have the same members and vnodes, hence place every key alike. */
  equals(other: HashRing): boolean {
    return (
      this.vnodes === other.vnodes &&
      this.size === other.size &&
      this.members.every((id, m) => id === other.members[m])
    );
  }

  /** Index of the first point at or after `position`, wrapping to 0 past the last point. */
  private firstAtOrAfter(position: number): number {
    let lo = 0;
    let hi = this.positions.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.positions[mid]! < position) lo = mid + 1;
      else hi = mid;
    }
    return lo === this.positions.length ? 0 : lo;
  }
}

/** Index of `id` in the sorted `ids`, or -1. */
function binarySearchString(ids: readonly string[], id: string): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ids[mid]! < id) lo = mid + 1;
    else hi = mid;
  }
  return ids[lo] === id ? lo : -1;
}
