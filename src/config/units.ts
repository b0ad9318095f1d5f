/** Parsers for sizes ("1MB", "512KiB", 1048576) and durations ("5s", "250ms", 5000). */

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

const DURATION_UNITS: Record<string, number> = {
  '': 1,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** A size in bytes (binary multiples, as nats-server reads them), or an error text. */
export function parseBytes(v: unknown): number | string {
  return parseWithUnit(v, SIZE_UNITS, 'a size such as 1048576, 512KB or 1MB');
}

/**
 * Longest duration anywhere (TTL, delay, timeouts): ten years. Deadlines are
 * stored as 48-bit milliseconds, and an unbounded value from a client must
 * not overflow them.
 */
export const MAX_DURATION_MS = 10 * 365 * 24 * 3600 * 1000;

/** A duration in milliseconds (at most MAX_DURATION_MS), or an error text. */
export function parseDurationMs(v: unknown): number | string {
  const n = parseWithUnit(v, DURATION_UNITS, 'a duration such as 5000 (ms), 250ms, 5s or 2m');
  if (typeof n === 'number' && n > MAX_DURATION_MS)
    return `a duration must be at most ${MAX_DURATION_MS} ms (10 years)`;
  return n;
}

function parseWithUnit(v: unknown, units: Record<string, number>, expected: string): number | string {
  if (typeof v === 'number') {
    return Number.isSafeInteger(v) && v >= 0 ? v : `expected ${expected}, got ${v}`;
  }
  if (typeof v !== 'string') return `expected ${expected}, got ${typeof v}`;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(v);
  const unit = m === null ? undefined : units[m[2]!.toLowerCase()];
  if (m === null || unit === undefined) return `expected ${expected}, got ${JSON.stringify(v)}`;
  const n = Math.round(Number(m[1]) * unit);
  return Number.isSafeInteger(n) ? n : `${JSON.stringify(v)} is too large`;
}
