/** The queue behind the client's in-order answers (PONGs, +STOREDs): see client.ts. */

/** A queue with O(1) shift that compacts as it goes. */
export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  push(v: T): void {
    this.items.push(v);
  }

  shift(): T | undefined {
    if (this.head === this.items.length) return undefined;
    const v = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return v;
  }
}
