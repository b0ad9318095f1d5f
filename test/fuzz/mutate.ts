/**
 * Seeded mutations for the fuzzers (fuzzers.ts): of JSON values (a frame
 * head as a protocol builds it: types changed, fields dropped, numbers out
 * of range, long or line-breaking strings, `__proto__` keys, splices) and of
 * bytes (flips, truncation, inserted separators, repeated and swapped
 * ranges). Every choice comes from one PRNG, so a seed replays a run.
 */
import { prng } from '../helpers/prng.js';

/** The PRNG with the draws the fuzzers need. */
export class Rand {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = prng(seed);
  }
  float(): number {
    return this.next();
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
}

/** The seed of one run: runs replay alone (`--run`) and differ from each other. */
export function runSeed(seed: number, run: number): number {
  let h = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(run + 1, 0xc2b2ae35);
  h ^= h >>> 16;
  return Math.imul(h, 0x27d4eb2f) >>> 0;
}

/** Values that are legal JSON and wrong for every field of every head. */
const POISON: readonly unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  -0.5,
  2 ** 31,
  2 ** 32,
  2 ** 48,
  2 ** 53,
  2 ** 64,
  -(2 ** 53),
  1e308,
  '',
  ' ',
  '0',
  '-1',
  '5',
  'NaN',
  'a b',
  'a\r\nMSG x 1 2\r\nhi',
  'a\n',
  '\u010d\u010a', // written as latin1: CR LF
  '\u00ff\u00a0',
  'foo.*',
  'foo.>',
  'foo..bar',
  '.',
  '__proto__',
  'x'.repeat(300),
  [],
  [1, 2, 3],
  ['a', 'b'],
  [[[[[]]]]],
  {},
  { toString: 1 },
  { valueOf: 'x', toString: null },
  { length: 1e9 },
  // As JSON.parse makes them: own keys, not prototypes.
  JSON.parse('{"__proto__":{"polluted":1}}') as unknown,
  JSON.parse('{"constructor":{"prototype":{"polluted":1}}}') as unknown,
];

function longString(rand: Rand): string {
  const unit = rand.pick(['a', 'a.', ' ', '\r\n', '\u0100', '\u00e9']);
  return unit.repeat(1 + rand.int(rand.chance(0.1) ? 100_000 : 2000));
}

/** Nested arrays, shallow enough for JSON.stringify (a few thousand levels overflow its stack). */
function deepValue(rand: Rand): unknown {
  return nested(1 + rand.int(rand.chance(0.2) ? 1000 : 50));
}

/** `depth` nested arrays, made by JSON.parse (which takes any depth: the frame decoder hands such heads on). */
export function nested(depth: number): unknown {
  return JSON.parse(`${'['.repeat(depth)}1${']'.repeat(depth)}`);
}

/** A replacement for a value of any type. */
function wrongValue(rand: Rand, old: unknown): unknown {
  switch (rand.int(8)) {
    case 0:
      return longString(rand);
    case 1:
      return deepValue(rand);
    case 2:
      return typeof old === 'number' ? old + rand.pick([-1, 1, -old - 1, 0.5, 2 ** 53]) : rand.int(100);
    case 3:
      return typeof old === 'string'
        ? `${old}${rand.pick([' ', '\n', '\r\n', '\t', '\u010a', '.', '>', '*'])}`
        : '';
    case 4:
      return Array.isArray(old) ? { ...old } : [old];
    case 5: {
      // Long lists of small values only: a head stays a size a frame can carry.
      const small =
        (typeof old !== 'object' || old === null) && (typeof old !== 'string' || old.length < 100);
      return Array.from({ length: 1 + rand.int(small && rand.chance(0.1) ? 50_000 : 20) }, () =>
        small ? old : 0,
      );
    }
    default:
      return structuredClone(rand.pick(POISON));
  }
}

interface Slot {
  holder: Record<string, unknown> | unknown[];
  key: string | number;
}

/** Every place a value sits in `root` (depth-first, bounded). */
function slots(root: unknown, out: Slot[] = [], depth = 0): Slot[] {
  if (depth > 8 || root === null || typeof root !== 'object') return out;
  if (Array.isArray(root)) {
    const n = Math.min(root.length, 16);
    for (let i = 0; i < n; i++) {
      out.push({ holder: root, key: i });
      slots(root[i], out, depth + 1);
    }
  } else {
    for (const k of Object.keys(root)) {
      out.push({ holder: root as Record<string, unknown>, key: k });
      slots((root as Record<string, unknown>)[k], out, depth + 1);
    }
  }
  return out;
}

/** A head mutated 1-4 times; `donor` heads (of other kinds) lend fields for splices. */
export function mutateJson(value: unknown, rand: Rand, donors: readonly unknown[] = []): unknown {
  let root = structuredClone(value) as unknown;
  const times = 1 + rand.int(4);
  for (let i = 0; i < times; i++) {
    const all = slots(root);
    if (all.length === 0 || rand.chance(0.03)) {
      root = wrongValue(rand, root);
      continue;
    }
    const { holder, key } = rand.pick(all);
    const get = (): unknown => (holder as Record<string | number, unknown>)[key];
    const set = (v: unknown): void => {
      (holder as Record<string | number, unknown>)[key] = v;
    };
    switch (rand.int(6)) {
      case 0:
        if (Array.isArray(holder)) holder.splice(key as number, 1);
        else delete holder[key as string];
        break;
      case 1: {
        // A key a decoder must not treat as special.
        const k = rand.pick([
          '__proto__',
          'constructor',
          'prototype',
          'toString',
          'hasOwnProperty',
          'length',
        ]);
        const target = get();
        if (target !== null && typeof target === 'object' && !Array.isArray(target)) {
          Object.defineProperty(target, k, {
            value: wrongValue(rand, 0),
            enumerable: true,
            writable: true,
            configurable: true,
          });
        } else set(wrongValue(rand, target));
        break;
      }
      case 2: {
        const donor = donors.length > 0 ? rand.pick(donors) : undefined;
        const from = slots(donor);
        if (from.length > 0) {
          const s = rand.pick(from);
          set(structuredClone((s.holder as Record<string | number, unknown>)[s.key]));
        } else set(wrongValue(rand, get()));
        break;
      }
      default:
        set(wrongValue(rand, get()));
    }
  }
  return root;
}

/** Bytes a text protocol treats specially. */
const SPECIAL = [0x0d, 0x0a, 0x20, 0x09, 0x30, 0x39, 0x7b, 0x7d, 0x22, 0x00, 0xff];

/** `buf` mutated 1-4 times. */
export function mutateBytes(buf: Buffer, rand: Rand): Buffer {
  let b = Buffer.from(buf);
  const times = 1 + rand.int(4);
  for (let i = 0; i < times; i++) {
    const at = rand.int(b.length + 1);
    switch (rand.int(8)) {
      case 0:
        if (b.length > 0) b[rand.int(b.length)] = rand.int(256);
        break;
      case 1:
        if (b.length > 0) b[rand.int(b.length)] = rand.pick(SPECIAL);
        break;
      case 2:
        b = b.subarray(0, at);
        break;
      case 3: {
        const n = 1 + rand.int(16);
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + n))]);
        break;
      }
      case 4: {
        const ins = Buffer.from(Array.from({ length: 1 + rand.int(8) }, () => rand.pick(SPECIAL)));
        b = Buffer.concat([b.subarray(0, at), ins, b.subarray(at)]);
        break;
      }
      case 5: {
        // A range repeated: long lines, repeated frames.
        const end = Math.min(b.length, at + 1 + rand.int(64));
        const piece = b.subarray(at, end);
        const times2 = 1 + rand.int(rand.chance(0.1) ? 200 : 4);
        b = Buffer.concat([b.subarray(0, end), ...Array<Buffer>(times2).fill(piece), b.subarray(end)]);
        break;
      }
      case 6: {
        // A digit run made longer or bigger (sizes, lengths).
        const d = b.indexOf(rand.pick([0x30, 0x31, 0x32, 0x33, 0x35, 0x39]), at);
        if (d >= 0) b = Buffer.concat([b.subarray(0, d), Buffer.from(String(rand.int(1e6))), b.subarray(d)]);
        break;
      }
      default: {
        // Two neighbouring ranges swapped: [x, m) and [m, y).
        const [x, m, y] = [rand.int(b.length + 1), rand.int(b.length + 1), rand.int(b.length + 1)].sort(
          (p, q) => p - q,
        ) as [number, number, number];
        b = Buffer.concat([b.subarray(0, x), b.subarray(m, y), b.subarray(x, m), b.subarray(y)]);
      }
    }
  }
  return b;
}

/** `buf` cut at 0-20 random points (sometimes into bytes). */
export function randomSplits(buf: Buffer, rand: Rand): Buffer[] {
  if (buf.length <= 4096 && rand.chance(0.05)) return [...buf].map((x) => Buffer.from([x]));
  const cuts = new Set<number>();
  const n = rand.int(rand.chance(0.2) ? 40 : 6);
  for (let i = 0; i < n; i++) cuts.add(rand.int(buf.length + 1));
  return cut(
    buf,
    [...cuts].sort((x, y) => x - y),
  );
}

/** Cuts `buf` at the given sorted offsets. */
export function cut(buf: Buffer, at: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let prev = 0;
  for (const i of at) {
    out.push(buf.subarray(prev, i));
    prev = i;
  }
  out.push(buf.subarray(prev));
  return out;
}

/** A short, printable form of an input for a failure message. */
export function show(v: unknown, max = 2000): string {
  let s: string;
  if (Buffer.isBuffer(v)) s = `hex:${v.toString('hex')}`;
  else {
    try {
      s =
        JSON.stringify(v, (_k, x: unknown) => (Buffer.isBuffer(x) ? `hex:${x.toString('hex')}` : x)) ??
        String(v);
    } catch (err) {
      s = `<unprintable: ${(err as Error).message}>`;
    }
  }
  return s.length > max ? `${s.slice(0, max)}... (${s.length} chars)` : s;
}
