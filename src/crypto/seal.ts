/**
 * Encryption at rest (protocol/STORAGE.md section 3). Every payload is
 * sealed with AES-256-GCM under its own key, derived with HKDF-SHA256 from
 * the cluster master key and the message's random 12-byte nonce; an
 * HMAC-SHA256 (truncated to 16 bytes, RFC 2104 section 5) over the record's
 * key and envelope detects any change to metadata or ciphertext.
 *
 * HKDF is Extract then Expand. Extract depends only on the master key, so
 * it runs once; Expand for a 32-byte output is one HMAC, computed here
 * directly (the bytes equal crypto.hkdfSync's, which a test checks). Nonces
 * come from a pre-filled random pool: one randomBytes call per 4096 of them.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
export const MAC_BYTES = 16;
export const MASTER_KEY_BYTES = 32;

const MSG_INFO = Buffer.from('swarmmq/msg/v1');
const MAC_INFO = Buffer.from('swarmmq/mac/v1');
const SALT = Buffer.from('swarmmq/at-rest/v1');
const POOL_NONCES = 4096;

export class IntegrityError extends Error {
  override readonly name = 'IntegrityError';
}

export class KeyRing {
  /** HKDF-Extract(salt, master): the pseudo-random key every Expand starts from. */
  private readonly prk: Buffer;
  private readonly macKey: Buffer;
  private pool: Buffer = Buffer.alloc(0);
  private poolPos = 0;

  constructor(masterKey: Buffer) {
    if (masterKey.length !== MASTER_KEY_BYTES)
      throw new Error(`master key must be ${MASTER_KEY_BYTES} bytes`);
    this.prk = createHmac('sha256', SALT).update(masterKey).digest();
    this.macKey = this.expand(MAC_INFO, undefined);
  }

  /** HKDF-Expand to 32 bytes: T(1) = HMAC(PRK, info || extra || 0x01). */
  expand(info: Buffer, extra: Buffer | undefined): Buffer {
    const h = createHmac('sha256', this.prk).update(info);
    if (extra !== undefined) h.update(extra);
    return h.update(ONE).digest();
  }

  /** A fresh random nonce from the pool. */
  nonce(): Buffer {
    if (this.poolPos + NONCE_BYTES > this.pool.length) {
      this.pool = randomBytes(NONCE_BYTES * POOL_NONCES);
      this.poolPos = 0;
    }
    const n = this.pool.subarray(this.poolPos, this.poolPos + NONCE_BYTES);
    this.poolPos += NONCE_BYTES;
    return n;
  }

  /** Encrypts `plain` under the key derived from `nonce`; returns ciphertext || tag. */
  encrypt(nonce: Buffer, plain: Buffer): Buffer {
    const key = this.expand(MSG_INFO, nonce);
    const c = createCipheriv('aes-256-gcm', key, nonce);
    const body = c.update(plain);
    const final = c.final();
    const tag = c.getAuthTag();
    return final.length === 0 ? Buffer.concat([body, tag]) : Buffer.concat([body, final, tag]);
  }

  /** Decrypts ciphertext || tag; throws IntegrityError when it does not authenticate. */
  decrypt(nonce: Buffer, sealed: Buffer): Buffer {
    if (sealed.length < TAG_BYTES) throw new IntegrityError('sealed payload shorter than its tag');
    const key = this.expand(MSG_INFO, nonce);
    const d = createDecipheriv('aes-256-gcm', key, nonce);
    d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    try {
      const body = d.update(sealed.subarray(0, sealed.length - TAG_BYTES));
      const final = d.final();
      return final.length === 0 ? body : Buffer.concat([body, final]);
    } catch {
      throw new IntegrityError('payload does not authenticate');
    }
  }

  /** The truncated HMAC over the given parts. */
  mac(...parts: Buffer[]): Buffer {
    const h = createHmac('sha256', this.macKey);
    for (const p of parts) h.update(p);
    return h.digest().subarray(0, MAC_BYTES);
  }

  /** Constant-time check of a MAC. */
  verify(expected: Buffer, ...parts: Buffer[]): boolean {
    const actual = this.mac(...parts);
    return expected.length === MAC_BYTES && timingSafeEqual(actual, expected);
  }
}

const ONE = Buffer.from([1]);
