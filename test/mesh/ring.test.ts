/**
 * Unit tests of the consistent-hash ring: the properties the mesh relies on
 * (every node computes the same owner, the split is balanced, a join or a
 * leave moves only the keys it must, and a failover goes to the next member
 * of the preference list).
 */
import test from 'ava';
import { DEFAULT_VNODES, HashRing, placementKey, ringPosition } from '../../src/mesh/ring.js';
import { prng } from '../helpers/prng.js';

/** A libp2p-looking peer id, random-looking but fixed by its index. */
function peerId(index: number): string {
  const rand = prng(0x5eed + index);
  let hex = '';
  for (let i = 0; i < 6; i++)
    hex += Math.floor(rand() * 2 ** 32)
      .toString(16)
      .padStart(8, '0');
  return `12D3KooW${hex}`;
}

const peers = (count: number): string[] => Array.from({ length: count }, (_, i) => peerId(i));
const keys = (count: number): string[] => Array.from({ length: count }, (_, i) => `orders.region-${i}`);

/** A seeded Fisher-Yates shuffle, so a failing order can be replayed. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  const rand = prng(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

test('determinism: input order and duplicates do not change any preference list', (t) => {
  const ids = peers(7);
  const a = new HashRing(ids);
  const b = new HashRing([...shuffled(ids, 1), ids[3]!, ids[0]!]);
  const c = new HashRing(new Set(shuffled(ids, 2)));
  t.deepEqual(a.members, [...ids].sort());
  t.is(b.size, 7);
  t.true(a.equals(b) && b.equals(c));
  for (const key of keys(1000)) {
    const expected = a.preferenceList(key, 7);
    t.deepEqual(b.preferenceList(key, 7), expected, key);
    t.deepEqual(c.preferenceList(key, 7), expected, key);
  }
});

test('equals: same members and vnodes only', (t) => {
  const ids = peers(4);
  t.true(new HashRing(ids).equals(new HashRing([...ids].reverse(), DEFAULT_VNODES)));
  t.false(new HashRing(ids).equals(new HashRing(ids, 64)));
  t.false(new HashRing(ids).equals(new HashRing(ids.slice(1))));
  t.false(new HashRing(ids.slice(0, 3)).equals(new HashRing([...ids.slice(0, 2), ids[3]!])));
});

test('preference lists: distinct members, min(n, size) long, led by the owner', (t) => {
  const ring = new HashRing(peers(5));
  for (const key of keys(500)) {
    for (const n of [0, 1, 2, 3, 5, 9]) {
      const list = ring.preferenceList(key, n);
      t.is(list.length, Math.min(n, 5));
      t.is(new Set(list).size, list.length);
      if (n > 0) t.is(list[0], ring.owner(key));
      // A shorter list is a prefix of a longer one: replicas are added, never reordered.
      t.deepEqual(list, ring.preferenceList(key, 5).slice(0, list.length));
    }
  }
});

test('preference lists: an empty ring has no owner, a one-member ring has one', (t) => {
  const empty = new HashRing([]);
  t.is(empty.size, 0);
  t.deepEqual(empty.preferenceList('orders', 3), []);
  t.is(empty.owner('orders'), undefined);
  t.is(empty.share('anyone'), 0);
  const solo = new HashRing(['12D3KooWsolo'], 1);
  t.deepEqual(solo.preferenceList('orders', 3), ['12D3KooWsolo']);
  t.is(solo.share('12D3KooWsolo'), 1);
});

for (const count of [3, 5, 10]) {
  test(`balance: ${count} members each own their share of keys within 35%`, (t) => {
    const ids = peers(count);
    const ring = new HashRing(ids);
    const owned = new Map(ids.map((id) => [id, 0]));
    const all = keys(20_000);
    for (const key of all) owned.set(ring.owner(key)!, owned.get(ring.owner(key)!)! + 1);
    const ratios = ids.map((id) => owned.get(id)! / (all.length / count));
    const shares = ids.map((id) => ring.share(id) * count);
    t.log(
      `keys: min/max ratio to mean ${Math.min(...ratios).toFixed(3)}/${Math.max(...ratios).toFixed(3)};`,
      `share(): ${Math.min(...shares).toFixed(3)}/${Math.max(...shares).toFixed(3)}`,
    );
    for (const r of [...ratios, ...shares]) t.true(r > 0.65 && r < 1.35, `ratio ${r}`);
    const total = ids.reduce((sum, id) => sum + ring.share(id), 0);
    t.true(Math.abs(total - 1) < 1e-9, `shares sum to ${total}`);
    t.is(ring.share('12D3KooWnot-a-member'), 0);
  });
}

test('movement on join (5 -> 6): only keys moving to the new member move', (t) => {
  const ids = peers(6);
  const joiner = ids[5]!;
  const before = new HashRing(ids.slice(0, 5));
  const after = new HashRing(ids);
  const all = keys(20_000);
  let moved = 0;
  let listsChanged = 0;
  for (const key of all) {
    const owner = after.owner(key);
    if (owner !== before.owner(key)) {
      moved++;
      t.is(owner, joiner, key);
    }
    // The joiner is inserted into the old list, which keeps its order and drops at most its last entry.
    const oldList = before.preferenceList(key, 3);
    const newList = after.preferenceList(key, 3);
    const kept = newList.filter((id) => id !== joiner);
    t.deepEqual(kept, oldList.slice(0, kept.length), key);
    if (kept.length < 3) listsChanged++;
  }
  const fraction = moved / all.length;
  t.log(`owner moved for ${(fraction * 100).toFixed(2)}% of keys (ideal 16.67%)`);
  t.log(`3-lists changed for ${((listsChanged / all.length) * 100).toFixed(2)}% (ideal 50%)`);
  t.true(fraction > 0 && fraction < 2 / 6, `fraction ${fraction}`);
});

test('movement on leave (6 -> 5): the departed member keys fail over to entry 1 of their list', (t) => {
  const ids = peers(6);
  const leaver = ids[2]!;
  const before = new HashRing(ids);
  const after = new HashRing(ids.filter((id) => id !== leaver));
  let moved = 0;
  for (const key of keys(20_000)) {
    const oldList = before.preferenceList(key, 3);
    if (oldList[0] === leaver) {
      moved++;
      t.is(after.owner(key), oldList[1], key);
    } else {
      t.is(after.owner(key), oldList[0], key);
    }
    // Replicas fail over the same way: the leaver drops out and the next member joins the end.
    const survivors = oldList.filter((id) => id !== leaver);
    t.deepEqual(after.preferenceList(key, 3).slice(0, survivors.length), survivors, key);
  }
  t.log(`owner moved for ${((moved / 20_000) * 100).toFixed(2)}% of keys (ideal 16.67%)`);
  t.true(moved > 0);
});

test('placementKey: X.DLQ is placed with X', (t) => {
  t.is(placementKey('orders.DLQ'), 'orders');
  t.is(placementKey('orders'), 'orders');
  t.is(placementKey('a.DLQ.DLQ'), 'a.DLQ');
  t.is(placementKey('DLQ'), 'DLQ');
  t.is(placementKey('orders.dlq'), 'orders.dlq');
  const ring = new HashRing(peers(5));
  for (const key of keys(200)) {
    t.deepEqual(
      ring.preferenceList(placementKey(`${key}.DLQ`), 3),
      ring.preferenceList(placementKey(key), 3),
    );
  }
});

test('ringPosition: a stable 48-bit safe integer', (t) => {
  // Computed independently: node -e "crypto.createHash('sha256').update('orders').digest('hex').slice(0, 12)"
  // gives 1c168adb00d2. A change here moves every destination in a live mesh.
  t.is(ringPosition('orders'), 0x1c168adb00d2);
  t.is(ringPosition('orders'), 30883144466642);
  for (const key of [...keys(1000), '', 'ünïcødé.☃']) {
    const p = ringPosition(key);
    t.true(Number.isSafeInteger(p) && p >= 0 && p < 2 ** 48, `${key}: ${p}`);
  }
});

test('argument errors name the bad argument', (t) => {
  for (const vnodes of [0, -1, 1.5, 4097, Number.NaN]) {
    t.throws(() => new HashRing(['a'], vnodes), {
      instanceOf: RangeError,
      message: /vnodes must be an integer/,
    });
  }
  t.notThrows(() => new HashRing(['a'], 4096));
  t.throws(() => new HashRing(['a', '']), { instanceOf: TypeError, message: /non-empty strings/ });
  const ring = new HashRing(['a', 'b']);
  for (const n of [-1, 0.5, Number.NaN, Infinity]) {
    t.throws(() => ring.preferenceList('k', n), {
      instanceOf: RangeError,
      message: /n must be a non-negative integer/,
    });
  }
});
