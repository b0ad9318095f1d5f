/**
 * Unit tests of subject syntax and the subject index (protocol/CLIENT.md
 * section 4, C3.3, C5.2). Test titles cite the rule checked.
 */
import test from 'ava';
import { hasWildcard, isValidPublishSubject, isValidSubscribeSubject } from '../../src/subjects/subject.js';
import { Sublist, type MatchResult, type SubjectEntry } from '../../src/subjects/sublist.js';
import { prng } from '../helpers/prng.js';

interface Entry extends SubjectEntry {
  readonly id: string;
}

const entry = (id: string, subject: string, queue?: string): Entry => ({ id, subject, queue });

/** A match result as sorted ids: plain, and queue name -> member ids (checking each group holds one queue name). */
interface Shape {
  plain: string[];
  groups: Record<string, string[]>;
}

function shape(r: MatchResult<Entry>): Shape {
  const groups: Record<string, string[]> = {};
  for (const g of r.groups) {
    const names = new Set(g.map((e) => e.queue));
    if (names.size !== 1 || g.length === 0) throw new Error(`a group mixes queues: ${[...names].join(',')}`);
    const name = g[0]!.queue!;
    if (name in groups) throw new Error(`queue ${name} appears as two groups`);
    groups[name] = g.map((e) => e.id).sort();
  }
  for (const e of r.plain) if (e.queue !== undefined) throw new Error(`queue entry ${e.id} among plain`);
  return { plain: r.plain.map((e) => e.id).sort(), groups };
}

const expect = (plain: string[], groups: Record<string, string[]> = {}): Shape => ({
  plain: [...plain].sort(),
  groups: Object.fromEntries(Object.entries(groups).map(([k, v]) => [k, [...v].sort()])),
});

/** Reference matcher (C4.1): '*' is one token, a last '>' is one or more tokens, anything else literal. */
function matches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>' && i === p.length - 1) return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== '*' && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

function reference(entries: Iterable<Entry>, subject: string): Shape {
  const plain: string[] = [];
  const groups: Record<string, string[]> = {};
  for (const e of entries) {
    if (!matches(e.subject, subject)) continue;
    if (e.queue === undefined) plain.push(e.id);
    else (groups[e.queue] ??= []).push(e.id);
  }
  return expect(plain, groups);
}

const ENTRIES: Entry[] = [
  entry('a', 'foo'),
  entry('b', 'foo.bar'),
  entry('c', 'foo.*'),
  entry('d', 'foo.>'),
  entry('e', '>'),
  entry('f', '*'),
  entry('g', '*.bar'),
  entry('h', 'foo.*.baz'),
  entry('i', 'foo.bar.>'),
  entry('j', 'foo*'),
  entry('k', 'a>b'),
  entry('l', 'foo.bar'), // a second plain subscription on the same subject
  entry('q1', 'foo.bar', 'w'),
  entry('q2', 'foo.*', 'w'),
  entry('q3', 'foo.>', 'v'),
  entry('q4', 'foo.bar', 'v'),
  entry('q5', '*.*', 'x'),
  entry('q6', 'foo.bar', 'w'),
];

const MATCH_CASES: [string, Shape][] = [
  // C4.1: 'foo.>' does not match its parent 'foo'; '>' alone and '*' do.
  ['foo', expect(['a', 'e', 'f'])],
  ['foo.bar', expect(['b', 'l', 'c', 'd', 'e', 'g'], { w: ['q1', 'q2', 'q6'], v: ['q3', 'q4'], x: ['q5'] })],
  ['foo.baz', expect(['c', 'd', 'e'], { w: ['q2'], v: ['q3'], x: ['q5'] })],
  // 'foo.bar.>' does not match 'foo.bar' (above) but does one level down.
  ['foo.bar.baz', expect(['d', 'e', 'h', 'i'], { v: ['q3'] })],
  ['foo.x.baz', expect(['d', 'e', 'h'], { v: ['q3'] })],
  ['foo.bar.baz.qux', expect(['d', 'e', 'i'], { v: ['q3'] })],
  ['bar', expect(['e', 'f'])],
  ['x.bar', expect(['e', 'g'], { x: ['q5'] })],
  ['bar.foo', expect(['e'], { x: ['q5'] })],
  ['a.b.c.d.e.f', expect(['e'])],
  // '*' or '>' inside a token is a literal character, not a wildcard.
  ['foo*', expect(['j', 'e', 'f'])],
  ['fooX', expect(['e', 'f'])],
  ['a>b', expect(['k', 'e', 'f'])],
  ['a', expect(['e', 'f'])],
  ['ab', expect(['e', 'f'])],
];

function filled(cacheEntries: number, entries: readonly Entry[] = ENTRIES): Sublist<Entry> {
  const s = new Sublist<Entry>(cacheEntries);
  for (const e of entries) s.insert(e);
  return s;
}

test('C4.1 the match table agrees with the reference matcher', (t) => {
  for (const [subject, want] of MATCH_CASES) t.deepEqual(reference(ENTRIES, subject), want, subject);
});

for (const cache of [4096, 0]) {
  test(`C4.1/C5.2 literal, '*' and '>' matches, queue groups by name (cache ${cache})`, (t) => {
    const s = filled(cache);
    t.is(s.size, ENTRIES.length);
    for (const [subject, want] of MATCH_CASES) {
      t.deepEqual(shape(s.match(subject)), want, subject);
      // Again: served from the cache when it is on, recomputed when off; same answer.
      t.deepEqual(shape(s.match(subject)), want, `${subject} (again)`);
    }
    t.is(s.cacheSize, cache === 0 ? 0 : MATCH_CASES.length);
  });

  test(`C4.5 remove: every removal order keeps matches right, then everything is pruned (cache ${cache})`, (t) => {
    const rand = prng(7 + cache);
    for (let round = 0; round < 20; round++) {
      const s = filled(cache);
      const live = new Set(ENTRIES);
      const order = shuffle([...ENTRIES], rand);
      for (const e of order) {
        t.true(s.remove(e), `remove ${e.id}`);
        live.delete(e);
        t.is(s.size, live.size);
        for (const [subject] of MATCH_CASES) {
          t.deepEqual(shape(s.match(subject)), reference(live, subject), `${subject} after removing ${e.id}`);
        }
      }
      for (const [subject] of MATCH_CASES) {
        const r = s.match(subject);
        t.is(r.plain.length, 0);
        t.is(r.groups.length, 0);
      }
      t.true(isPruned(s), 'the trie is empty after removing everything');
      // Re-inserting works.
      for (const e of ENTRIES) s.insert(e);
      for (const [subject, want] of MATCH_CASES)
        t.deepEqual(shape(s.match(subject)), want, `${subject} again`);
    }
  });
}

test('C4.5 remove of an entry that is not there returns false and changes nothing', (t) => {
  const s = filled(4096);
  const before = MATCH_CASES.map(([subject]) => shape(s.match(subject)));
  // A path that does not exist at all, or only partly.
  t.false(s.remove(entry('z', 'nope')));
  t.false(s.remove(entry('z', 'foo.bar.baz.qux')));
  t.false(s.remove(entry('z', 'nope.*')));
  t.false(s.remove(entry('z', 'nope.>')));
  // The node exists but holds other entries (equal fields, a different object).
  t.false(s.remove(entry('b', 'foo.bar')));
  t.false(s.remove(entry('q1', 'foo.bar', 'w')));
  // A queue name the node does not have.
  t.false(s.remove(entry('q1', 'foo.bar', 'nope')));
  // A plain entry that is really a queue member, and the reverse.
  const q1 = ENTRIES.find((e) => e.id === 'q1')!;
  t.false(s.remove({ ...q1, queue: undefined }));
  t.false(s.remove(entry('z', 'foo.bar', 'w')));
  // Removed twice.
  const a = ENTRIES.find((e) => e.id === 'a')!;
  t.true(s.remove(a));
  t.false(s.remove(a));
  s.insert(a);
  t.is(s.size, ENTRIES.length);
  t.deepEqual(
    MATCH_CASES.map(([subject]) => shape(s.match(subject))),
    before,
  );
});

test('C4.5 removing a subscription keeps a longer one that passes through its node', (t) => {
  const s = new Sublist<Entry>(0);
  const short = entry('s', 'a.b');
  const long = entry('l', 'a.b.c');
  const tail = entry('t', 'a.b.>');
  s.insert(short);
  s.insert(long);
  s.insert(tail);
  t.true(s.remove(short));
  t.deepEqual(shape(s.match('a.b.c')), expect(['l', 't']));
  t.deepEqual(shape(s.match('a.b')), expect([]));
  t.true(s.remove(long));
  t.deepEqual(shape(s.match('a.b.c')), expect(['t']));
  t.true(s.remove(tail));
  t.deepEqual(shape(s.match('a.b.c')), expect([]));
  t.true(isPruned(s));
});

test('C5.2 queue members on different matching subjects form one group per queue name', (t) => {
  const s = new Sublist<Entry>(16);
  s.insert(entry('1', 'orders.new', 'workers'));
  s.insert(entry('2', 'orders.*', 'workers'));
  s.insert(entry('3', 'orders.>', 'workers'));
  s.insert(entry('4', '>', 'workers'));
  s.insert(entry('5', 'orders.>', 'audit'));
  s.insert(entry('6', 'orders.new'));
  const r = s.match('orders.new');
  t.is(r.groups.length, 2);
  t.deepEqual(shape(r), expect(['6'], { workers: ['1', '2', '3', '4'], audit: ['5'] }));
  t.deepEqual(shape(s.match('orders.old')), expect([], { workers: ['2', '3', '4'], audit: ['5'] }));
  t.deepEqual(shape(s.match('orders')), expect([], { workers: ['4'] }));
});

test('C4.1 cache: results are cached, and a stale result is never returned after insert or remove', (t) => {
  const s = new Sublist<Entry>(4096);
  const r0 = s.match('foo.bar');
  t.deepEqual(shape(r0), expect([]));
  t.is(s.cacheSize, 1);

  const star = entry('star', 'foo.*');
  s.insert(star);
  t.deepEqual(shape(s.match('foo.bar')), expect(['star']), 'after insert');
  const r1 = s.match('foo.bar');
  t.is(s.match('foo.bar'), r1, 'cached result reused while nothing changes');

  const q = entry('q', 'foo.>', 'g');
  s.insert(q);
  t.deepEqual(shape(s.match('foo.bar')), expect(['star'], { g: ['q'] }), 'after queue insert');
  // A result handed out earlier is not changed by later inserts.
  t.deepEqual(shape(r1), expect(['star']));

  // An insert on an unrelated subject also invalidates (cheaply), and the answer stays right.
  s.insert(entry('other', 'other'));
  t.deepEqual(shape(s.match('foo.bar')), expect(['star'], { g: ['q'] }), 'after unrelated insert');

  t.true(s.remove(star));
  t.deepEqual(shape(s.match('foo.bar')), expect([], { g: ['q'] }), 'after remove');
  t.true(s.remove(q));
  t.deepEqual(shape(s.match('foo.bar')), expect([]), 'after removing the queue member');

  // A failed remove changes nothing.
  const r2 = s.match('foo.bar');
  t.false(s.remove(star));
  t.deepEqual(shape(s.match('foo.bar')), shape(r2));

  // Insert after remove: the cached empty result must not stick.
  s.insert(star);
  t.deepEqual(shape(s.match('foo.bar')), expect(['star']), 'after re-insert');
});

test('C4.1 cache: cacheSize never exceeds the configured entries', (t) => {
  for (const cap of [1, 2, 8, 64]) {
    const s = filled(cap);
    for (let i = 0; i < 300; i++) {
      s.match(`foo.s${i % 150}`);
      t.true(s.cacheSize <= cap, `cap ${cap}: ${s.cacheSize}`);
      // Stale entries refreshed while the cache is full stay within the bound too.
      if (i % 17 === 0) s.insert(entry(`n${i}`, `foo.s${i}`));
      if (i % 23 === 0) s.remove(ENTRIES[i % ENTRIES.length]!);
    }
    t.is(s.cacheSize, cap);
    // Results from a full, churned cache are still right.
    const live = [...ENTRIES];
    const fresh = new Sublist<Entry>(0);
    for (let i = 0; i < 300; i++) {
      if (i % 17 === 0) live.push(entry(`n${i}`, `foo.s${i}`));
      if (i % 23 === 0) {
        const e = ENTRIES[i % ENTRIES.length]!;
        const at = live.indexOf(e);
        if (at >= 0) live.splice(at, 1);
      }
    }
    for (const e of live) fresh.insert(e);
    for (let i = 0; i < 150; i++) {
      t.deepEqual(shape(s.match(`foo.s${i}`)), shape(fresh.match(`foo.s${i}`)), `cap ${cap}: foo.s${i}`);
    }
  }
  const off = filled(0);
  for (let i = 0; i < 50; i++) off.match(`x${i}`);
  t.is(off.cacheSize, 0);
});

test('C4.1/C5.2 seeded random inserts, removes and matches agree with the reference (cache on and off)', (t) => {
  const rand = prng(2024);
  const int = (n: number): number => Math.floor(rand() * n);
  const tokens = ['a', 'b', 'c', 'a*', '>x'];
  const randomPattern = (): string => {
    const n = 1 + int(4);
    const parts: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = rand();
      parts.push(r < 0.2 ? '*' : r < 0.3 && i === n - 1 ? '>' : tokens[int(tokens.length)]!);
    }
    return parts.join('.');
  };
  const randomSubject = (): string =>
    Array.from({ length: 1 + int(5) }, () => tokens[int(tokens.length)]!).join('.');
  const lists = [new Sublist<Entry>(4096), new Sublist<Entry>(0), new Sublist<Entry>(4)];
  const live: Entry[] = [];
  for (let step = 0; step < 1500; step++) {
    const r = rand();
    if (r < 0.35 || live.length === 0) {
      const pattern = randomPattern();
      t.true(isValidSubscribeSubject(pattern), pattern);
      const e = entry(`e${step}`, pattern, rand() < 0.3 ? `q${int(3)}` : undefined);
      live.push(e);
      for (const s of lists) s.insert(e);
    } else if (r < 0.6) {
      const [e] = live.splice(int(live.length), 1);
      for (const s of lists) t.true(s.remove(e!));
    } else {
      const subject = randomSubject();
      const want = reference(live, subject);
      for (const s of lists) {
        const got = shape(s.match(subject));
        if (JSON.stringify(got) !== JSON.stringify(want)) {
          t.deepEqual(got, want, `step ${step}: ${subject}`);
          return;
        }
      }
    }
    for (const s of lists) t.is(s.size, live.length);
  }
  for (const e of live) for (const s of lists) t.true(s.remove(e));
  for (const s of lists) t.true(isPruned(s));
});

// ---------------------------------------------------------------------------
// Subject syntax

test('C4.1/C4.2 isValidSubscribeSubject', (t) => {
  const valid = [
    'foo',
    'foo.bar',
    'foo.bar.baz',
    '*',
    '>',
    'foo.*',
    'foo.>',
    '*.bar',
    'foo.*.bar',
    '*.*.>',
    'foo*', // C4.1: '*' inside a longer token is literal
    '*foo',
    'foo.b*r',
    'a>b', // C4.1: '>' inside a longer token is literal
    'foo.>bar',
    'foo.bar>',
    '>>',
    '**',
    '$SYS.REQ',
    '_INBOX.abc.1',
  ];
  const invalid = [
    '', // no token
    '.',
    'foo.', // C4.2
    '.foo',
    'foo..bar', // C4.2
    '..',
    'foo.>.bar', // C4.2: '>' must be last
    '>.foo',
    '>.>',
    '>.*',
    'foo.>.',
    '*..*',
  ];
  for (const s of valid) t.true(isValidSubscribeSubject(s), JSON.stringify(s));
  for (const s of invalid) t.false(isValidSubscribeSubject(s), JSON.stringify(s));
});

test('C3.3 isValidPublishSubject', (t) => {
  const valid = ['foo', 'foo.bar', 'foo*', '*foo', 'a>b', 'foo.b*r', 'foo.>bar', '**', '>>', '_INBOX.x.1'];
  const invalid = [
    '',
    '.',
    'foo.',
    '.foo',
    'foo..bar',
    '*',
    '>',
    'foo.*',
    'foo.>',
    '*.foo',
    'foo.*.bar',
    'foo.>.bar',
  ];
  for (const s of valid) t.true(isValidPublishSubject(s), JSON.stringify(s));
  for (const s of invalid) t.false(isValidPublishSubject(s), JSON.stringify(s));
});

test('C4.1 hasWildcard sees only whole-token wildcards', (t) => {
  for (const s of ['*', '>', 'foo.*', 'foo.>', '*.bar', 'a.*.c']) t.true(hasWildcard(s), s);
  for (const s of ['foo', 'foo*', 'a>b', 'foo.b*r', '**', '>>']) t.false(hasWildcard(s), s);
});

// ---------------------------------------------------------------------------
// Helpers

function shuffle<T>(xs: T[], rand: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

/** Whether the trie holds no node at all (reads the private root: pruning is not otherwise visible). */
function isPruned(s: Sublist<Entry>): boolean {
  const root = (s as unknown as { root: { literal: Map<string, unknown>; star: unknown; tail: unknown } })
    .root;
  return root.literal.size === 0 && root.star === null && root.tail === null;
}
