/**
 * Where the master key comes from (protocol/STORAGE.md 3.1): the config or
 * SWARMMQ_MASTER_KEY; failing that, a key generated once into the data dir
 * (mode 0600) with a warning. The key itself is never logged.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { StartupError } from '../errors.js';
import type { Logger } from '../log.js';
import { MASTER_KEY_BYTES } from './seal.js';

export const MASTER_KEY_FILE = 'master.key';

export function resolveMasterKey(configured: Buffer | undefined, dataDir: string, log: Logger): Buffer {
  if (configured !== undefined) return configured;
  const file = path.join(dataDir, MASTER_KEY_FILE);
  if (existsSync(file)) {
    const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
    if (key.length !== MASTER_KEY_BYTES) {
      throw new StartupError(
        'DATA_DIR_UNUSABLE',
        `${file} does not hold a base64 ${MASTER_KEY_BYTES}-byte key`,
      );
    }
    return key;
  }
  const key = randomBytes(MASTER_KEY_BYTES);
  writeFileSync(file, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  log.warn(
    { file },
    'no master key configured: generated one for this node; set security.master_key (or SWARMMQ_MASTER_KEY) and keep a copy: without it the messages this node stored cannot be read',
  );
  return key;
}
