/**
 * One timer for every due time of the durable engine (ack deadlines, NAK
 * delays, delayed releases, expiries): a min-heap of events and a single
 * setTimeout armed for the earliest. Events are not cancelled; the handler
 * checks whether one is still current (lazy deletion).
 */
import { Heap } from './heap.js';

/** The longest delay setTimeout accepts; beyond it Node fires after 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class Scheduler<E extends { dueMs: number }> {
  private readonly events = new Heap<E>((a, b) => a.dueMs < b.dueMs);
  private timer: NodeJS.Timeout | undefined;
  private timerDueMs = Infinity;
  private closed = false;

  constructor(private readonly handle: (e: E, nowMs: number) => void) {}

  get size(): number {
    return this.events.size;
  }

  schedule(e: E): void {
    this.events.push(e);
    if (e.dueMs < this.timerDueMs) this.arm();
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    if (this.closed) return;
    const next = this.events.peek();
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (next === undefined) {
      this.timer = undefined;
      this.timerDueMs = Infinity;
      return;
    }
    this.timerDueMs = next.dueMs;
    // Clamped: fire() copes with waking before the earliest event is due.
    this.timer = setTimeout(() => this.fire(), Math.min(MAX_TIMER_MS, Math.max(0, next.dueMs - Date.now())));
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    this.timerDueMs = Infinity;
    const now = Date.now();
    for (let e = this.events.peek(); e !== undefined && e.dueMs <= now; e = this.events.peek()) {
      this.events.pop();
      this.handle(e, now);
    }
    this.arm();
  }
}
