/**
 * Unit tests of the storage layout (protocol/STORAGE.md): key order (S1.1,
 * S2.1), the envelope's seal/open round trip (section 3), the binary id flag
 * (S3.4), the MAC over key and envelope (S3.3) and the per-message overhead.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { IntegrityError, KeyRing } from '../../src/crypto/seal.js';
import {
  openMessage,
  readMeta,
  sealedSize,
  sealMessage,
  type MessageMeta,
} from '../../src/store/envelope.js';
import {
  dedupKey,
  destinationKey,
  groupKey,
  messageKey,
  messageRange,
  nodeKey,
  parseMessageKey,
  parseStateKey,
  Prefix,
  prefixRange,
  quarantineKey,
  readU64,
  stateKey,
  writeU64,
} from '../../src/store/keys.js';

const ring = new KeyRing(Buffer.alloc(32, 7));
const ASSIGNED = '5d0e3a2b9c8f4e7a1b2c3d4e5f607182';

function meta(over: Partial<MessageMeta> = {}): MessageMeta {
  return {
    id: ASSIGNED,
    priority: 5,
    timestampMs: 1_795_717_373_898,
    expiresAtMs: 0,
    notBeforeMs: 0,
    producer: undefined,
    ...over,
  };
}

// ---- keys -------------------------------------------------------------------------

test('S2.1 message keys sort by destination, then priority (10 first), then seq numerically', (t) => {
  const seqs = [1, 2, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER];
  const want: { destId: number; priority: number; seq: number }[] = [];
  for (const destId of [1, 2, 256, 2 ** 32 - 1]) {
    for (let priority = 10; priority >= 1; priority--) {
      for (const seq of seqs) want.push({ destId, priority, seq });
    }
  }
  const keys = [...want].reverse().map((k) => messageKey(k.destId, k.priority, k.seq));
  keys.sort(Buffer.compare);
  t.deepEqual(keys.map(parseMessageKey), want);
  for (const k of keys) {
    t.is(k.length, 14);
    t.is(k[0], Prefix.Message);
  }
});

test('S2.1 within a destination: 10 before 5 before 1, then seq 255 < 256 < 65536', (t) => {
  const order = [
    messageKey(1, 10, 65_536),
    messageKey(1, 5, 255),
    messageKey(1, 5, 256),
    messageKey(1, 5, 65_536),
    messageKey(1, 1, 1),
  ];
  t.deepEqual([...order].reverse().sort(Buffer.compare), order);
});

test('S2.1 messageRange holds exactly one destination’s messages', (t) => {
  const { gte, lt } = messageRange(7);
  const inside = (k: Buffer): boolean => Buffer.compare(k, gte) >= 0 && Buffer.compare(k, lt) < 0;
  t.true(inside(messageKey(7, 10, 0)));
  t.true(inside(messageKey(7, 1, Number.MAX_SAFE_INTEGER)));
  t.false(inside(messageKey(6, 1, Number.MAX_SAFE_INTEGER)));
  t.false(inside(messageKey(8, 10, 1)));
  t.false(inside(stateKey(7, 1, 1)));
});

test('S1.1 state keys sort by destination, group, then seq numerically, and parse back', (t) => {
  const want = [
    { destId: 1, groupId: 1, seq: 255 },
    { destId: 1, groupId: 1, seq: 256 },
    { destId: 1, groupId: 1, seq: 2 ** 33 },
    { destId: 1, groupId: 2, seq: 1 },
    { destId: 2, groupId: 1, seq: 1 },
  ];
  const keys = [...want].reverse().map((k) => stateKey(k.destId, k.groupId, k.seq));
  keys.sort(Buffer.compare);
  t.deepEqual(keys.map(parseStateKey), want);
  t.is(keys[0]!.length, 17);
});

test('S2 every record kind has its own prefix byte, and prefixRange covers exactly it', (t) => {
  const kinds: [Buffer, number][] = [
    [destinationKey('orders'), Prefix.Destination],
    [groupKey(1, 'billing'), Prefix.Group],
    [messageKey(1, 5, 1), Prefix.Message],
    [stateKey(1, 1, 1), Prefix.State],
    [dedupKey(1, 'id-1'), Prefix.Dedup],
    [quarantineKey(messageKey(1, 5, 1)), Prefix.Quarantine],
    [nodeKey('dest'), Prefix.Node],
  ];
  t.is(new Set(kinds.map(([, p]) => p)).size, kinds.length);
  for (const [k, p] of kinds) {
    t.is(k[0], p);
    for (const [, q] of kinds) {
      const { gte, lt } = prefixRange(q);
      t.is(Buffer.compare(k, gte) >= 0 && Buffer.compare(k, lt) < 0, p === q);
    }
  }
  t.deepEqual(quarantineKey(messageKey(3, 2, 9)).subarray(1), messageKey(3, 2, 9));
  t.is(destinationKey('café').toString('utf8', 1), 'café');
  t.is(groupKey(258, 'g').readUInt32BE(1), 258);
  t.is(dedupKey(258, 'ü').toString('utf8', 5), 'ü');
});

test('S1.1 u64 big-endian round trip up to 2^53-1', (t) => {
  const b = Buffer.alloc(8);
  for (const v of [
    0,
    1,
    255,
    256,
    2 ** 32 - 1,
    2 ** 32,
    2 ** 32 + 1,
    2 ** 52 + 12_345,
    Number.MAX_SAFE_INTEGER,
  ]) {
    writeU64(b, 0, v);
    t.is(readU64(b, 0), v);
  }
  writeU64(b, 0, 256);
  t.deepEqual([...b], [0, 0, 0, 0, 0, 0, 1, 0]);
});

// ---- envelope -------------------------------------------------------------------------

test('S3 seal/open round trip with and without headers, producer, ttl and delay', (t) => {
  const key = messageKey(1, 7, 42);
  const payloads = [Buffer.alloc(0), Buffer.from('hello'), randomBytes(70_000)];
  const headerSets = [undefined, Buffer.from('NATS/1.0\r\nTrace-Id: 1\r\n\r\n')];
  const producers = [undefined, '', 'billing-service', 'orders/g1/term', 'ü'.repeat(10)];
  for (const payload of payloads) {
    for (const headers of headerSets) {
      for (const producer of producers) {
        for (const expiresAtMs of [0, 1_795_717_999_999]) {
          for (const notBeforeMs of [0, 1_795_717_400_000]) {
            for (const id of [ASSIGNED, 'order-42', 'ü-€-日本']) {
              const m = meta({ id, priority: 7, producer, expiresAtMs, notBeforeMs });
              const value = sealMessage(ring, key, m, headers, payload);
              const what = JSON.stringify({
                len: payload.length,
                h: headers !== undefined,
                producer,
                expiresAtMs,
                notBeforeMs,
                id,
              });
              t.is(value.length, sealedSize(m, headers, payload.length), what);
              const opened = openMessage(ring, key, value);
              t.deepEqual(opened.meta, m, what);
              t.deepEqual(readMeta(value), m, what);
              // Buffer.equals: t.deepEqual on 70 KB buffers is slow.
              t.true(opened.payload.equals(payload), what);
              t.is(opened.headers?.toString('hex'), headers?.toString('hex'), what);
            }
          }
        }
      }
    }
  }
});

test('S3 an empty header block is stored as no headers', (t) => {
  const key = messageKey(1, 5, 1);
  const value = sealMessage(ring, key, meta(), Buffer.alloc(0), Buffer.from('p'));
  t.is(value[1]! & 1, 0);
  const opened = openMessage(ring, key, value);
  t.is(opened.headers, undefined);
  t.deepEqual(opened.payload, Buffer.from('p'));
});

test('S3.4 an assigned id (32 lowercase hex) is stored as 16 bytes with flag 16; a given id as UTF-8', (t) => {
  const key = messageKey(1, 5, 1);
  const bin = sealMessage(ring, key, meta({ id: ASSIGNED }), undefined, Buffer.from('x'));
  t.is(bin[1]! & 16, 16);
  t.is(bin[9], 16); // idLen right after version, flags, priority, timestamp
  t.deepEqual(bin.subarray(10, 26), Buffer.from(ASSIGNED, 'hex'));
  t.is(openMessage(ring, key, bin).meta.id, ASSIGNED);
  for (const id of ['order-42', ASSIGNED.toUpperCase(), ASSIGNED.slice(1), `${ASSIGNED}0`, 'ü-€']) {
    const v = sealMessage(ring, key, meta({ id }), undefined, Buffer.from('x'));
    t.is(v[1]! & 16, 0, id);
    t.is(v[9], Buffer.byteLength(id), id);
    t.deepEqual(v.subarray(10, 10 + v[9]!), Buffer.from(id, 'utf8'));
    t.is(openMessage(ring, key, v).meta.id, id);
  }
});

test('S3 the clear header layout: version 1, flags, priority, timestamp u48, expiresAt, notBefore', (t) => {
  const key = messageKey(1, 9, 1);
  const m = meta({
    priority: 9,
    expiresAtMs: 1_800_000_000_000,
    notBeforeMs: 1_795_717_400_000,
    producer: 'p',
  });
  const v = sealMessage(ring, key, m, Buffer.from('NATS/1.0\r\n\r\n'), Buffer.from('x'));
  t.is(v[0], 1);
  t.is(v[1], 1 | 2 | 4 | 8 | 16);
  t.is(v[2], 9);
  t.is(v.readUIntBE(3, 6), m.timestampMs);
  t.is(v.readUIntBE(9, 6), m.expiresAtMs);
  t.is(v.readUIntBE(15, 6), m.notBeforeMs);
  t.is(v[21], 16);
  t.is(v[38], 1); // producer length after the 16 id bytes
  t.is(v.toString('utf8', 39, 40), 'p');
});

test('S3 bytes beyond the payload: 70 in the value for an assigned id, no producer, ttl or delay; 14 in the key', (t) => {
  const key = messageKey(1, 5, 1);
  for (const n of [0, 1, 100, 4096]) {
    const value = sealMessage(ring, key, meta(), undefined, Buffer.alloc(n, 1));
    t.is(value.length - n, 70);
  }
  t.is(key.length, 14);
  // Each of ttl, delay adds its u48; a producer its length byte and bytes; headers a u32 and themselves.
  const base = sealMessage(ring, key, meta(), undefined, Buffer.alloc(10)).length;
  t.is(sealMessage(ring, key, meta({ expiresAtMs: 1 }), undefined, Buffer.alloc(10)).length, base + 6);
  t.is(sealMessage(ring, key, meta({ notBeforeMs: 1 }), undefined, Buffer.alloc(10)).length, base + 6);
  t.is(sealMessage(ring, key, meta({ producer: 'abc' }), undefined, Buffer.alloc(10)).length, base + 4);
  t.is(sealMessage(ring, key, meta(), Buffer.alloc(12, 65), Buffer.alloc(10)).length, base + 16);
});

test('S3.2 sealing the same message twice gives different bytes (a fresh nonce each time)', (t) => {
  const key = messageKey(1, 5, 1);
  const a = sealMessage(ring, key, meta(), undefined, Buffer.from('same'));
  const b = sealMessage(ring, key, meta(), undefined, Buffer.from('same'));
  t.notDeepEqual(a, b);
  t.deepEqual(openMessage(ring, key, a).payload, openMessage(ring, key, b).payload);
});

test('S3.3/D8.3 flipping any single byte of a sealed record fails its check', (t) => {
  const key = messageKey(3, 8, 77);
  const m = meta({
    id: 'given-id',
    priority: 8,
    producer: 'prod',
    expiresAtMs: 1_800_000_000_000,
    notBeforeMs: 1,
  });
  const value = sealMessage(
    ring,
    key,
    m,
    Buffer.from('NATS/1.0\r\nA: b\r\n\r\n'),
    Buffer.from('payload bytes'),
  );
  for (let i = 0; i < value.length; i++) {
    for (const bit of [0x01, 0x80]) {
      const bad = Buffer.from(value);
      bad[i] = bad[i]! ^ bit;
      t.throws(() => openMessage(ring, key, bad), { instanceOf: IntegrityError }, `byte ${i} bit ${bit}`);
    }
  }
  // Flipping a byte of the key fails too: the MAC covers it.
  for (let i = 0; i < key.length; i++) {
    const badKey = Buffer.from(key);
    badKey[i] = badKey[i]! ^ 0x01;
    t.throws(() => openMessage(ring, badKey, value), { instanceOf: IntegrityError }, `key byte ${i}`);
  }
  t.notThrows(() => openMessage(ring, key, value));
});

test('S3.3 a record copied to another key (destination, priority or seq) fails', (t) => {
  const key = messageKey(1, 5, 10);
  const value = sealMessage(ring, key, meta(), undefined, Buffer.from('x'));
  for (const other of [messageKey(2, 5, 10), messageKey(1, 6, 10), messageKey(1, 5, 11)]) {
    t.throws(() => openMessage(ring, other, value), { instanceOf: IntegrityError });
  }
});

test('S3.1 another master key cannot open a record', (t) => {
  const key = messageKey(1, 5, 1);
  const value = sealMessage(ring, key, meta(), undefined, Buffer.from('secret'));
  t.throws(() => openMessage(new KeyRing(randomBytes(32)), key, value), { instanceOf: IntegrityError });
  t.throws(() => openMessage(new KeyRing(Buffer.alloc(32, 8)), key, value), { instanceOf: IntegrityError });
});

test('truncated or extended records fail their check', (t) => {
  const key = messageKey(1, 5, 1);
  const value = sealMessage(ring, key, meta({ producer: 'p' }), undefined, Buffer.from('payload'));
  for (let n = 0; n < value.length; n++) {
    t.throws(
      () => openMessage(ring, key, value.subarray(0, n)),
      { instanceOf: IntegrityError },
      `first ${n}`,
    );
  }
  t.throws(() => openMessage(ring, key, Buffer.concat([value, Buffer.from([0])])), {
    instanceOf: IntegrityError,
  });
  t.throws(() => openMessage(ring, key, value.subarray(1)), { instanceOf: IntegrityError });
});

test('the payload is not stored in the clear', (t) => {
  const key = messageKey(1, 5, 1);
  const secret = Buffer.from('credit card 4111-1111-1111-1111');
  const headers = Buffer.from('NATS/1.0\r\nAuthorization: Bearer s3cr3t\r\n\r\n');
  const value = sealMessage(ring, key, meta(), headers, secret);
  t.is(value.indexOf(secret), -1);
  t.is(value.indexOf(Buffer.from('4111')), -1);
  t.is(value.indexOf(Buffer.from('s3cr3t')), -1);
});
