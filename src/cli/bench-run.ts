/**
 * The load generator behind `swarmmq bench`: publishers and subscribers
 * (core pub/sub: latency from publish to receive) or producers and
 * consumers (durable SEND: latency from send to +STORED; consumers pull and
 * ack). Every connection is its own Client; counters are read by the
 * progress bar, never printed from here.
 */
import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Client } from '../sdk/wire/connection.js';

export type BenchMode = 'pubsub' | 'send';

export interface BenchPlan {
  readonly mode: BenchMode;
  readonly messages: number;
  readonly sizeBytes: number;
  /** Publishing (pubsub) or sending (send) connections. */
  readonly publishers: number;
  /** Subscribing (pubsub, each gets every message) or pulling (send, one group shares them) connections. */
  readonly subscribers: number;
  /** The subject (pubsub) or destination (send). */
  readonly destination: string;
  /** The cap: stop here even if not every message is done. */
  readonly durationMs: number;
  /** Bounds each wait for an answer that should come soon (flushes). */
  readonly timeoutMs: number;
}

/** Live counters, read by the progress bar. */
export interface BenchCounters {
  /** Published (pubsub) or confirmed stored (send). */
  completed: number;
  /** Received by subscribers (pubsub, summed over them) or pulled and acked (send). */
  received: number;
}

export interface BenchOutcome {
  readonly elapsedMs: number;
  /** Microseconds: publish to receive (pubsub) or send to +STORED (send). */
  readonly latencyUs: RecordableHistogram;
  /** False when the --duration cap stopped the run. */
  readonly complete: boolean;
}

/** The consumer group send-mode consumers share. */
export const BENCH_GROUP = 'bench';
/**
 * Messages a pubsub publisher may be ahead of its subscribers. Bounded because a
 * slow consumer is cut off (C6.9); small because a deep queue only adds latency
 * (measured here: 1000 gave ~120k msg/s at p50 1-5 ms, 10000 ~70k msg/s at p50 8 ms).
 */
const MAX_WINDOW_MESSAGES = 1000;
/** ... and in bytes, far below the node's 64 MiB per-connection max_pending. */
const WINDOW_BYTES = 8 * 1024 * 1024;
/** SENDs in flight per connection: enough for group commits, under the node's 1024 (D3.6). */
const SEND_WINDOW = 256;
/** Messages per consumer pull (D4.7 allows 10000). */
const PULL_BATCH = 1000;
/** A consumer's pull waits this long, so it sees the end of the run soon. */
const PULL_WAIT_MS = 500;
/** Publishing yields to the event loop this often, so replies and deliveries are read meanwhile. */
const YIELD_EVERY = 128;

/** The run's stop: the cap, the end, or a failure (the first one wins). */
class Run {
  stopped = false;
  failure: Error | undefined;
  readonly over: Promise<void>;
  private end!: () => void;
  private readonly waiters: (() => void)[] = [];

  constructor() {
    this.over = new Promise((resolve) => (this.end = resolve));
  }

  stop(failure?: Error): void {
    if (this.stopped) return;
    this.stopped = true;
    this.failure = failure;
    this.end();
    this.wake();
  }

  /** Waits until wake() (a window opened) or stop. */
  pause(): Promise<void> {
    return this.stopped ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }

  get paused(): boolean {
    return this.waiters.length > 0;
  }

  wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

/**
 * Runs the plan over connections from `open` and closes them all. Throws
 * the first connection failure; a run cut short by the cap has `complete` false.
 */
export async function runBench(
  plan: BenchPlan,
  open: () => Promise<Client>,
  live: BenchCounters,
): Promise<BenchOutcome> {
  const run = new Run();
  const clients: Client[] = [];
  const connect = async (): Promise<Client> => {
    const c = await open();
    clients.push(c);
    // A connection lost mid-run (a slow consumer cut off, a node stopped) ends it.
    void c.closed.then((err) => err !== undefined && run.stop(err));
    return c;
  };
  try {
    const pubs = await Promise.all(Array.from({ length: plan.publishers }, connect));
    const subs = await Promise.all(Array.from({ length: plan.subscribers }, connect));
    const latencyUs = createHistogram();
    const work =
      plan.mode === 'pubsub'
        ? pubsub(plan, pubs, subs, run, live, latencyUs)
        : send(plan, pubs, subs, run, live, latencyUs);
    work.done.catch(() => undefined); // raced below; this only keeps a failed setup from going unhandled
    const started = await work.ready;
    const cap = setTimeout(() => run.stop(), plan.durationMs);
    try {
      await Promise.race([work.done.then(() => run.stop()), run.over]);
    } finally {
      clearTimeout(cap);
    }
    const elapsedMs = performance.now() - started;
    if (run.failure !== undefined) throw run.failure;
    return { elapsedMs, latencyUs, complete: isComplete(plan, live) };
  } finally {
    run.stop();
    await Promise.all(clients.map((c) => c.close()));
  }
}

function isComplete(plan: BenchPlan, live: BenchCounters): boolean {
  const wanted =
    plan.mode === 'pubsub' ? plan.messages * plan.subscribers : plan.subscribers > 0 ? plan.messages : 0;
  return live.completed >= plan.messages && live.received >= wanted;
}

interface Work {
  /** Resolves with the start time once every connection is set up. */
  ready: Promise<number>;
  /** Resolves when every message is done. */
  done: Promise<void>;
}

/** Splits n messages over k connections as evenly as whole numbers allow. */
function quotas(n: number, k: number): number[] {
  return Array.from({ length: k }, (_, i) => Math.floor(n / k) + (i < n % k ? 1 : 0));
}

function record(h: RecordableHistogram, sinceMs: number): void {
  h.record(Math.max(1, Math.round((performance.now() - sinceMs) * 1000)));
}

/** Core pub/sub: the payload's first 8 bytes carry its publish time (this process's clock). */
function pubsub(
  plan: BenchPlan,
  pubs: Client[],
  subs: Client[],
  run: Run,
  live: BenchCounters,
  latencyUs: RecordableHistogram,
): Work {
  const expected = plan.messages * subs.length;
  const window = Math.max(1, Math.min(MAX_WINDOW_MESSAGES, Math.floor(WINDOW_BYTES / plan.sizeBytes)));
  // Published minus the average received per subscriber (each gets every message).
  const ahead = (): number => (subs.length === 0 ? 0 : live.completed - live.received / subs.length);
  let allReceived!: () => void;
  const received = new Promise<void>((resolve) => (allReceived = resolve));
  for (const c of subs) {
    c.subscribe(plan.destination, (m) => {
      if (m.payload.length >= 8) record(latencyUs, m.payload.readDoubleLE(0));
      if (++live.received === expected) allReceived();
      if (run.paused && ahead() <= window / 2) run.wake();
    });
  }
  const ready = Promise.all(subs.map((c) => c.flush(AbortSignal.timeout(plan.timeoutMs)))).then(() =>
    performance.now(),
  );
  const publish = async (c: Client, quota: number): Promise<void> => {
    const payload = Buffer.alloc(plan.sizeBytes, 'x');
    for (let i = 0; i < quota && !run.stopped; i++) {
      while (ahead() >= window && !run.stopped) await run.pause();
      payload.writeDoubleLE(performance.now(), 0);
      live.completed++;
      // publish copies the payload into its frame, so one buffer serves every message.
      if (!c.publish(plan.destination, payload)) await c.drain();
      else if (i % YIELD_EVERY === YIELD_EVERY - 1) await yieldToLoop();
    }
    if (!run.stopped) await c.flush(AbortSignal.timeout(plan.timeoutMs));
  };
  const done = ready.then(async () => {
    await Promise.all(pubs.map((c, i) => publish(c, quotas(plan.messages, pubs.length)[i]!)));
    if (expected > 0) await received;
  });
  return { ready, done };
}

/** Durable SEND: latency to +STORED; consumers in one group pull and ack until every message came. */
function send(
  plan: BenchPlan,
  producers: Client[],
  consumers: Client[],
  run: Run,
  live: BenchCounters,
  latencyUs: RecordableHistogram,
): Work {
  const ready = Promise.resolve(performance.now());
  // Pulls start once the destination exists: it comes into being with its first SEND (D1.2).
  let firstStored: () => void = () => undefined;
  const exists = new Promise<void>((resolve) => (firstStored = resolve));
  const produce = async (c: Client, quota: number): Promise<void> => {
    const payload = Buffer.alloc(plan.sizeBytes, 'x');
    let inFlight = 0;
    let slot: (() => void) | undefined;
    const confirmed = (sentAt: number): void => {
      record(latencyUs, sentAt);
      if (live.completed++ === 0) firstStored();
      inFlight--;
      slot?.();
    };
    const fail = (err: Error): void => {
      run.stop(err);
      slot?.();
    };
    for (let i = 0; i < quota && !run.stopped; i++) {
      while (inFlight >= SEND_WINDOW && !run.stopped) await new Promise<void>((r) => (slot = r));
      const sentAt = performance.now();
      inFlight++;
      c.send(plan.destination, payload).then(() => confirmed(sentAt), fail);
      if (i % YIELD_EVERY === YIELD_EVERY - 1) await yieldToLoop();
    }
    while (inFlight > 0 && !run.stopped) await new Promise<void>((r) => (slot = r));
  };
  let allPulled: () => void = () => undefined;
  const pulled = new Promise<void>((resolve) => (allPulled = resolve));
  const consume = async (c: Client): Promise<void> => {
    await Promise.race([exists, run.over]);
    while (!run.stopped && live.received < plan.messages) {
      const msgs = await c.pull(plan.destination, BENCH_GROUP, { batch: PULL_BATCH, waitMs: PULL_WAIT_MS });
      for (const m of msgs) c.settle('ACK', m.handle);
      live.received += msgs.length;
    }
    if (live.received >= plan.messages) allPulled();
  };
  const done = ready.then(async () => {
    const consuming = consumers.map((c) =>
      // A pull cut off by the end of the run is no failure.
      consume(c).catch((err: Error) => {
        if (!run.stopped) run.stop(err);
      }),
    );
    await Promise.all(producers.map((c, i) => produce(c, quotas(plan.messages, producers.length)[i]!)));
    if (consumers.length > 0) await Promise.race([pulled, Promise.all(consuming)]);
  });
  return { ready, done };
}
