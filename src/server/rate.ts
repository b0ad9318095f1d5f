/**
 * New connections per second per client address (protocol/SECURITY.md
 * SEC5.2): a token bucket per address with a burst of one second's worth,
 * in a map bounded by MAX_RATE_TRACKED_ADDRESSES (the least recently seen
 * address is forgotten first), so a spoofing flood cannot grow it.
 */
import { MAX_RATE_TRACKED_ADDRESSES } from '../config/defaults.js';

interface Bucket {
  tokens: number;
  atMs: number;
}

export class ConnectionRate {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    /** Connections per second per address; 0 turns the limit off. */
    private readonly perSecond: number,
    private readonly now: () => number = Date.now,
    private readonly maxAddresses = MAX_RATE_TRACKED_ADDRESSES,
  ) {}

  /** Takes one token for `address`; false when its bucket is empty. */
  admit(address: string): boolean {
    if (this.perSecond === 0) return true;
    const t = this.now();
    let b = this.buckets.get(address);
    if (b === undefined) {
      b = { tokens: this.perSecond, atMs: t };
      if (this.buckets.size >= this.maxAddresses) {
        this.buckets.delete(this.buckets.keys().next().value!);
      }
    } else {
      b.tokens = Math.min(this.perSecond, b.tokens + ((t - b.atMs) * this.perSecond) / 1000);
      b.atMs = t;
      this.buckets.delete(address); // re-inserted below: the map stays in least-recently-seen order
    }
    this.buckets.set(address, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  get trackedAddresses(): number {
    return this.buckets.size;
  }
}
