/**
 * Durable-engine and store metrics (MT2.2-MT2.4), computed at scrape time:
 * the engine's counters, and one walk over its destinations per scrape for
 * the depth, lag and in-flight gauges. Per-destination series are capped
 * (MT2.3): the largest destinations by depth, and the largest group lags
 * among them.
 */
import type { Registry } from 'prom-client';
import type { DurableEngine } from '../durable/engine.js';
import type { Destination } from '../durable/model.js';
import { counterFrom, gaugeFrom, gaugeRowsFrom, PerScrape, type Scrape } from './collect.js';
import { MAX_DESTINATION_SERIES, MAX_GROUP_SERIES } from './constants.js';

interface Walk {
  owned: number;
  replicas: number;
  /** Messages in owned destinations. */
  messages: number;
  inflight: number;
  /** Record bytes over every destination held (owned and replicas), as the limits count them. */
  bytes: number;
  top: { name: string; depth: number; bytes: number }[];
  lags: { destination: string; group: string; lag: number }[];
}

export function registerDurableMetrics(
  registry: Registry,
  scrape: Scrape,
  engine: DurableEngine,
  maxDiskBytes: number,
): void {
  const s = engine.stats;
  const counters: [string, string, () => number][] = [
    [
      'stored',
      'Messages stored by this engine: sends to destinations it owns and dead-letter copies (not duplicates).',
      () => s.stored,
    ],
    [
      'duplicates',
      'Sends answered as duplicates of an id stored within the dedup window, not stored again (D3.4).',
      () => s.duplicates,
    ],
    [
      'delivered',
      'Deliveries handed out by PULLs of destinations this node owns, redeliveries included.',
      () => s.delivered,
    ],
    [
      'redelivered',
      'Deliveries of a message the group had been given before (after a NAK or an ack timeout).',
      () => s.redelivered,
    ],
    ['acked', 'Deliveries acknowledged.', () => s.acked],
    ['expired', 'Messages whose TTL ran out before every group was done with them (D5.2).', () => s.expired],
    [
      'dead_lettered',
      'Messages moved to a dead-letter destination (TERM, max deliveries, expiry; D6.1).',
      () => s.deadLettered,
    ],
    [
      'quarantined',
      'Stored records set aside because they failed their integrity check (D8.3).',
      () => s.quarantined,
    ],
  ];
  for (const [thing, help, read] of counters)
    counterFrom(registry, `swarmmq_durable_${thing}_total`, help, read);

  const walk = new PerScrape(scrape, () => walkDestinations(engine));
  gaugeRowsFrom(
    registry,
    'swarmmq_durable_destinations',
    'Durable destinations this node holds, as owner or replica (every one, uncapped).',
    ['role'],
    () => [
      [{ role: 'owner' }, walk.get().owned],
      [{ role: 'replica' }, walk.get().replicas],
    ],
  );
  gaugeFrom(
    registry,
    'swarmmq_durable_messages',
    'Messages stored in the destinations this node owns (every destination, uncapped).',
    () => walk.get().messages,
  );
  gaugeRowsFrom(
    registry,
    'swarmmq_durable_destination_messages',
    `Depth of a destination this node owns: only the ${MAX_DESTINATION_SERIES} largest by depth get a series (swarmmq_durable_destinations counts them all).`,
    ['destination'],
    () => walk.get().top.map((d) => [{ destination: d.name }, d.depth] as const),
  );
  gaugeRowsFrom(
    registry,
    'swarmmq_durable_destination_bytes',
    `Stored record bytes of a destination this node owns; the same ${MAX_DESTINATION_SERIES} destinations as swarmmq_durable_destination_messages.`,
    ['destination'],
    () => walk.get().top.map((d) => [{ destination: d.name }, d.bytes] as const),
  );
  gaugeRowsFrom(
    registry,
    'swarmmq_durable_group_lag_messages',
    `Messages a consumer group has not yet been given (neither done nor in flight), over the destinations of swarmmq_durable_destination_messages; only the ${MAX_GROUP_SERIES} largest lags get a series.`,
    ['destination', 'group'],
    () => walk.get().lags.map((l) => [{ destination: l.destination, group: l.group }, l.lag] as const),
  );
  gaugeFrom(
    registry,
    'swarmmq_durable_inflight_messages',
    'Deliveries handed out and not yet settled, over the destinations this node owns.',
    () => walk.get().inflight,
  );
  gaugeFrom(
    registry,
    'swarmmq_durable_stored_bytes',
    'Record bytes of every destination this node holds (owner and replica), as the per-destination limits count them.',
    () => walk.get().bytes,
  );
  gaugeFrom(
    registry,
    'swarmmq_store_disk_bytes',
    "Bytes the node's LevelDB files take: measured once a second by the engine, plus what was written since.",
    () => engine.diskBytes(),
  );
  gaugeFrom(
    registry,
    'swarmmq_store_disk_limit_bytes',
    'The disk limit (storage.max_disk_usage): sends are refused beyond it (D8.4).',
    () => maxDiskBytes,
  );
}

/** One pass over the destinations; the sort is over owned ones only (at most limits.max_destinations). */
function walkDestinations(engine: DurableEngine): Walk {
  const out: Walk = { owned: 0, replicas: 0, messages: 0, inflight: 0, bytes: 0, top: [], lags: [] };
  const owned: Destination[] = [];
  for (const d of engine.dests.values()) {
    out.bytes += d.bytes;
    if (d.role !== 'owner') {
      out.replicas++;
      continue;
    }
    out.owned++;
    out.messages += d.msgs.size;
    for (const g of d.groups.values()) out.inflight += g.inflight.size;
    owned.push(d);
  }
  // MT2.3: replicas are left out: the owner's copy is the one consumers drain, and a
  // destination reported by RF nodes would be summed RF times.
  owned.sort((a, b) => b.msgs.size - a.msgs.size || (a.name < b.name ? -1 : 1));
  const lags: Walk['lags'] = [];
  for (const d of owned.slice(0, MAX_DESTINATION_SERIES)) {
    const name = text(d.name);
    out.top.push({ name, depth: d.msgs.size, bytes: d.bytes });
    for (const g of d.groups.values()) {
      lags.push({
        destination: name,
        group: g.name,
        lag: Math.max(0, d.msgs.size - g.done.size - g.inflight.size),
      });
    }
  }
  lags.sort((a, b) => b.lag - a.lag);
  out.lags = lags.slice(0, MAX_GROUP_SERIES);
  return out;
}

/** Destination names are byte strings (latin1) as they came off the wire; a label is UTF-8 text. */
function text(name: string): string {
  return Buffer.from(name, 'latin1').toString('utf8');
}
