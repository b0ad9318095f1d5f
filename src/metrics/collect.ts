/**
 * Scrape-time metrics (MT1.2): counters and gauges whose value is read from
 * the node's own counters and state when Prometheus asks, so the hot path
 * keeps incrementing plain numbers and pays nothing for metrics.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

/** Bumped once per scrape: values computed for one scrape are shared by every metric that reads them. */
export interface Scrape {
  generation: number;
}

/**
 * A value computed at most once per scrape (a walk over destinations, a
 * stats() copy) and read by several metrics of that scrape.
 */
export class PerScrape<T> {
  private seen = -1;
  private value: T | undefined;

  constructor(
    private readonly scrape: Scrape,
    private readonly compute: () => T,
  ) {}

  get(): T {
    if (this.seen !== this.scrape.generation || this.value === undefined) {
      this.value = this.compute();
      this.seen = this.scrape.generation;
    }
    return this.value;
  }
}

/** A counter whose value is a monotonic number the node already keeps. */
export function counterFrom(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** A counter by one label, from a record of counts the node keeps (closes by reason, errors by kind). */
export function labelledCounterFrom<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  label: L,
  read: () => Readonly<Record<string, number>>,
): void {
  new Counter<L>({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      this.reset();
      for (const [value, n] of Object.entries(read())) {
        this.inc({ [label]: value } as Record<L, string>, n);
      }
    },
  });
}

/** A gauge read when scraped. */
export function gaugeFrom(registry: Registry, name: string, help: string, read: () => number): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

/** A labelled gauge rebuilt on every scrape from rows (label values, value): series no longer listed vanish. */
export function gaugeRowsFrom<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
  read: () => Iterable<readonly [Record<L, string>, number]>,
): void {
  new Gauge<L>({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, value] of read()) this.set(labels, value);
    },
  });
}
