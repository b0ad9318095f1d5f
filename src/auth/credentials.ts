/**
 * Client credentials (protocol/SECURITY.md SEC2.2): API keys are random
 * 256-bit tokens, configured by their SHA-256 (a preimage is out of reach, so
 * a fast hash is enough and a lookup costs one hash); passwords, which people
 * choose, are configured as scrypt hashes with a random salt. Neither form
 * lets someone who reads the config file connect.
 */
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/** API keys start with this, so a leaked one is recognisable in a scan. */
export const API_KEY_PREFIX = 'smq_';
/** scrypt cost: 2^14 x 8 takes about 16 MiB and tens of milliseconds, off the event loop. */
const SCRYPT_LOG_N = 14;
const SCRYPT_R = 8;
const SCRYPT_P = 1;
const SCRYPT_KEY_BYTES = 32;

/** A new API key: the prefix and 32 random bytes in base64url. */
export function newApiKey(): string {
  return API_KEY_PREFIX + randomBytes(32).toString('base64url');
}

/** The configured form of an API key: `sha256:<hex>`. */
export function hashApiKey(key: string): string {
  return `sha256:${createHash('sha256').update(key, 'utf8').digest('hex')}`;
}

export const KEY_HASH_RE = /^sha256:[0-9a-f]{64}$/;
export const PASSWORD_HASH_RE =
  /^scrypt:(\d{1,2}):(\d{1,2}):(\d{1,2}):([A-Za-z0-9_-]{16,}):([A-Za-z0-9_-]{43})$/;

/** The configured form of a password: `scrypt:<log2 N>:<r>:<p>:<salt>:<hash>` (base64url). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scryptAsync(password, salt, SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P);
  return `scrypt:${SCRYPT_LOG_N}:${SCRYPT_R}:${SCRYPT_P}:${salt.toString('base64url')}:${hash.toString('base64url')}`;
}

/** Checks a password against its configured hash, in constant time once hashed. */
export async function verifyPassword(password: string, configured: string): Promise<boolean> {
  const m = PASSWORD_HASH_RE.exec(configured);
  if (m === null) return false;
  const [logN, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const want = Buffer.from(m[5]!, 'base64url');
  const got = await scryptAsync(password, Buffer.from(m[4]!, 'base64url'), logN, r, p);
  return got.length === want.length && timingSafeEqual(got, want);
}

/** The scrypt parameters a configured hash may use: bounded, so a config cannot stall the node. */
export function passwordHashProblem(configured: string): string | undefined {
  const m = PASSWORD_HASH_RE.exec(configured);
  if (m === null) return 'expected scrypt:<logN>:<r>:<p>:<salt>:<hash> as `swarmmq gen user` prints it';
  const [logN, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (logN < 10 || logN > 16 || r < 1 || r > 16 || p < 1 || p > 4) {
    return 'scrypt parameters out of range (logN 10-16, r 1-16, p 1-4)';
  }
  return undefined;
}

function scryptAsync(password: string, salt: Buffer, logN: number, r: number, p: number): Promise<Buffer> {
  const N = 2 ** logN;
  return new Promise((resolve, reject) =>
    scrypt(password, salt, SCRYPT_KEY_BYTES, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (err, key) =>
      err === null ? resolve(key) : reject(err),
    ),
  );
}
