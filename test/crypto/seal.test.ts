/**
 * Unit tests of encryption at rest (protocol/STORAGE.md S3.2, S3.3): the
 * HKDF derivations equal node's crypto.hkdfSync, AES-256-GCM under the
 * per-message key, the truncated HMAC, and the nonce pool.
 */
import test from 'ava';
import { createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { IntegrityError, KeyRing, MAC_BYTES, NONCE_BYTES, TAG_BYTES } from '../../src/crypto/seal.js';

const SALT = 'swarmmq/at-rest/v1';
const master = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');

function hkdf(key: Buffer, info: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', key, Buffer.from(SALT), info, 32));
}

test('S3.2 the message key is HKDF-SHA256(master, salt, "swarmmq/msg/v1" + nonce) to 32 bytes', (t) => {
  const ring = new KeyRing(master);
  for (let i = 0; i < 20; i++) {
    const nonce = ring.nonce();
    const want = hkdf(master, Buffer.concat([Buffer.from('swarmmq/msg/v1'), nonce]));
    t.deepEqual(ring.expand(Buffer.from('swarmmq/msg/v1'), nonce), want);
  }
  // Another master key, another key.
  const other = randomBytes(32);
  const n = randomBytes(NONCE_BYTES);
  t.deepEqual(
    new KeyRing(other).expand(Buffer.from('swarmmq/msg/v1'), n),
    hkdf(other, Buffer.concat([Buffer.from('swarmmq/msg/v1'), n])),
  );
  t.notDeepEqual(
    ring.expand(Buffer.from('swarmmq/msg/v1'), n),
    new KeyRing(other).expand(Buffer.from('swarmmq/msg/v1'), n),
  );
});

test('S3.2 encrypt is AES-256-GCM under the derived key with the nonce as IV, tag appended', (t) => {
  const ring = new KeyRing(master);
  const nonce = ring.nonce();
  const plain = Buffer.from('the payload, any bytes: \u0000\u00ff');
  const sealed = ring.encrypt(nonce, plain);
  t.is(sealed.length, plain.length + TAG_BYTES);
  const key = hkdf(master, Buffer.concat([Buffer.from('swarmmq/msg/v1'), nonce]));
  const d = createDecipheriv('aes-256-gcm', key, nonce);
  d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  const out = Buffer.concat([d.update(sealed.subarray(0, sealed.length - TAG_BYTES)), d.final()]);
  t.deepEqual(out, plain);
  t.deepEqual(ring.decrypt(nonce, sealed), plain);
});

test('S3.3 the MAC is HMAC-SHA256 under HKDF(master, salt, "swarmmq/mac/v1"), truncated to 16 bytes', (t) => {
  const ring = new KeyRing(master);
  const macKey = hkdf(master, Buffer.from('swarmmq/mac/v1'));
  const parts = [Buffer.from('key'), Buffer.from('envelope bytes')];
  const want = createHmac('sha256', macKey).update(Buffer.concat(parts)).digest().subarray(0, MAC_BYTES);
  t.deepEqual(ring.mac(...parts), want);
  // Parts are concatenated: the split does not matter.
  t.deepEqual(ring.mac(Buffer.from('keyenvelope bytes')), want);
  t.true(ring.verify(want, ...parts));
});

test('S3.3 verify refuses a changed MAC, changed data, or a MAC of the wrong length', (t) => {
  const ring = new KeyRing(master);
  const data = Buffer.from('record');
  const mac = ring.mac(data);
  t.true(ring.verify(mac, data));
  for (let i = 0; i < mac.length; i++) {
    const bad = Buffer.from(mac);
    bad[i] = bad[i]! ^ 0x01;
    t.false(ring.verify(bad, data));
  }
  t.false(ring.verify(mac, Buffer.from('recorD')));
  t.false(ring.verify(mac.subarray(0, 15), data));
  t.false(ring.verify(Buffer.concat([mac, Buffer.from([0])]), data));
  t.false(new KeyRing(randomBytes(32)).verify(mac, data));
});

test('decrypt refuses a changed byte, another nonce, another key, or a short input', (t) => {
  const ring = new KeyRing(master);
  const nonce = ring.nonce();
  const sealed = ring.encrypt(nonce, Buffer.from('secret'));
  for (let i = 0; i < sealed.length; i++) {
    const bad = Buffer.from(sealed);
    bad[i] = bad[i]! ^ 0x80;
    t.throws(() => ring.decrypt(nonce, bad), { instanceOf: IntegrityError });
  }
  t.throws(() => ring.decrypt(ring.nonce(), sealed), { instanceOf: IntegrityError });
  t.throws(() => new KeyRing(randomBytes(32)).decrypt(nonce, sealed), { instanceOf: IntegrityError });
  t.throws(() => ring.decrypt(nonce, sealed.subarray(0, TAG_BYTES - 1)), { instanceOf: IntegrityError });
  // An empty plaintext is just the tag.
  const empty = ring.encrypt(nonce, Buffer.alloc(0));
  t.is(empty.length, TAG_BYTES);
  t.deepEqual(ring.decrypt(nonce, empty), Buffer.alloc(0));
});

test('S3.2 nonces are 12 bytes and never repeat, across pool refills', (t) => {
  const ring = new KeyRing(master);
  const seen = new Set<string>();
  const first = ring.nonce();
  const firstCopy = Buffer.from(first);
  seen.add(first.toString('hex'));
  const n = 3 * 4096 + 17; // past several refills of the 4096-nonce pool
  for (let i = 1; i < n; i++) {
    const x = ring.nonce();
    t.is(x.length, NONCE_BYTES);
    seen.add(x.toString('hex'));
  }
  t.is(seen.size, n);
  // A nonce handed out earlier is not overwritten by a refill.
  t.deepEqual(first, firstCopy);
  // Two rings (two nodes, or a restart) draw independent nonces.
  const other = new KeyRing(master);
  for (let i = 0; i < 1000; i++) t.false(seen.has(other.nonce().toString('hex')));
});

test('the master key must be 32 bytes', (t) => {
  for (const n of [0, 16, 31, 33, 64]) {
    t.throws(() => new KeyRing(Buffer.alloc(n)), { message: /master key must be 32 bytes/ });
  }
  t.notThrows(() => new KeyRing(Buffer.alloc(32)));
});
