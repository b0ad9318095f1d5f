/** A binary min-heap ordered by a compare function; entries are removed lazily by their owners. */
export class Heap<T> {
  private readonly items: T[] = [];
  constructor(private readonly less: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(v: T): void {
    const a = this.items;
    a.push(v);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }

  pop(): T | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l]!, a[m]!)) m = l;
        if (r < a.length && this.less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

/**
 * A consumer group's ready queue: highest priority first, then lowest
 * sequence (the order stored), as protocol/DURABLE.md D4.1 requires. Entries
 * may go stale (acked, expired); the caller checks each popped one.
 */
export class ReadyQueue {
  private readonly heaps: Heap<number>[] = [];
  private count = 0;

  constructor() {
    for (let p = 0; p <= 10; p++) this.heaps.push(new Heap<number>((a, b) => a < b));
  }

  /** Empties the queue (before it is rebuilt without its stale entries). */
  clear(): void {
    for (let p = 0; p <= 10; p++) this.heaps[p] = new Heap<number>((a, b) => a < b);
    this.count = 0;
  }

  /** Entries queued, stale ones included. */
  get size(): number {
    return this.count;
  }

  push(priority: number, seq: number): void {
    this.heaps[priority]!.push(seq);
    this.count++;
  }

  /** Takes the first entry in delivery order. */
  pop(): { priority: number; seq: number } | undefined {
    for (let p = 10; p >= 1; p--) {
      const h = this.heaps[p]!;
      if (h.size > 0) {
        this.count--;
        return { priority: p, seq: h.pop()! };
      }
    }
    return undefined;
  }
}
