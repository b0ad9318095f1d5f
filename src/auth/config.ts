/**
 * The `authorization:` section of the YAML file (protocol/SECURITY.md
 * section 2-3): API keys and users, each with permissions. Parsed into
 * frozen entries; a refusal is a ConfigError naming the key.
 */
import { ConfigError } from '../errors.js';
import { isValidSubscribeSubject } from '../subjects/subject.js';
import { KEY_HASH_RE, passwordHashProblem } from './credentials.js';
import type { DestinationRight, PatternRule, Permissions } from './permissions.js';

/** An API key a client presents as CONNECT `auth_token`. */
export interface KeyEntry {
  readonly kind: 'key';
  readonly name: string;
  /** `sha256:<hex>` of the key. */
  readonly hash: string;
  readonly permissions: Permissions;
}

/** A user a client names with CONNECT `user` and `pass`. */
export interface UserEntry {
  readonly kind: 'user';
  readonly name: string;
  /** `scrypt:...` of the password. */
  readonly hash: string;
  readonly permissions: Permissions;
}

export type Credential = KeyEntry | UserEntry;

export interface AuthConfig {
  readonly keys: readonly KeyEntry[];
  readonly users: readonly UserEntry[];
}

/** The keys of `authorization:` this module reads; the rest are ordinary options. */
export const AUTH_LIST_KEYS = ['keys', 'users'] as const;

const RIGHTS: readonly DestinationRight[] = ['send', 'pull', 'admin'];

export function parseAuthorization(section: Record<string, unknown>): AuthConfig | undefined {
  const keys = list(section.keys, 'authorization.keys').map((e, i) =>
    parseKey(e, `authorization.keys[${i}]`),
  );
  const users = list(section.users, 'authorization.users').map((e, i) =>
    parseUser(e, `authorization.users[${i}]`),
  );
  unique(
    keys.map((k) => k.name),
    'authorization.keys',
    'name',
  );
  unique(
    keys.map((k) => k.hash),
    'authorization.keys',
    'key_hash',
  );
  unique(
    users.map((u) => u.name),
    'authorization.users',
    'user',
  );
  if (keys.length === 0 && users.length === 0) return undefined;
  return Object.freeze({ keys: Object.freeze(keys), users: Object.freeze(users) });
}

function parseKey(raw: unknown, where: string): KeyEntry {
  const e = mapping(raw, where, ['name', 'key_hash', 'permissions']);
  const name = text(e.name, `${where}.name`);
  const hash = text(e.key_hash, `${where}.key_hash`);
  // The hash is not a secret, but a raw key pasted here by mistake is: never echo the value.
  if (!KEY_HASH_RE.test(hash)) {
    throw new ConfigError(
      `${where}.key_hash`,
      'expected sha256:<64 hex digits> as `swarmmq gen key` prints it',
    );
  }
  return Object.freeze({ kind: 'key', name, hash, permissions: parsePermissions(e.permissions, where) });
}

function parseUser(raw: unknown, where: string): UserEntry {
  const e = mapping(raw, where, ['user', 'password_hash', 'permissions']);
  const name = text(e.user, `${where}.user`);
  const hash = text(e.password_hash, `${where}.password_hash`);
  const problem = passwordHashProblem(hash);
  if (problem !== undefined) throw new ConfigError(`${where}.password_hash`, problem);
  return Object.freeze({ kind: 'user', name, hash, permissions: parsePermissions(e.permissions, where) });
}

function parsePermissions(raw: unknown, where: string): Permissions {
  const at = `${where}.permissions`;
  if (raw === undefined || raw === null) raw = {};
  const e = mapping(raw, at, ['publish', 'subscribe', 'destinations']);
  const destinations: Partial<Record<DestinationRight, readonly string[] | undefined>> = {};
  const d = mapping(e.destinations ?? {}, `${at}.destinations`, RIGHTS);
  for (const r of RIGHTS)
    destinations[r] = d[r] === undefined ? undefined : patterns(d[r], `${at}.destinations.${r}`);
  return Object.freeze({
    publish: rule(e.publish, `${at}.publish`),
    subscribe: rule(e.subscribe, `${at}.subscribe`),
    destinations: Object.freeze(destinations as Record<DestinationRight, readonly string[] | undefined>),
  });
}

/** A rule is a list (the allow list) or `{allow, deny}`. */
function rule(raw: unknown, where: string): PatternRule {
  if (raw === undefined || raw === null) return Object.freeze({ allow: undefined, deny: Object.freeze([]) });
  if (Array.isArray(raw)) return Object.freeze({ allow: patterns(raw, where), deny: Object.freeze([]) });
  const e = mapping(raw, where, ['allow', 'deny']);
  return Object.freeze({
    allow: e.allow === undefined ? undefined : patterns(e.allow, `${where}.allow`),
    deny: e.deny === undefined ? Object.freeze([]) : patterns(e.deny, `${where}.deny`),
  });
}

function patterns(raw: unknown, where: string): readonly string[] {
  const items = typeof raw === 'string' ? [raw] : raw;
  if (!Array.isArray(items)) throw new ConfigError(where, 'expected a list of subject patterns');
  return Object.freeze(
    items.map((p: unknown, i) => {
      if (typeof p !== 'string' || !isValidSubscribeSubject(p) || /\s/.test(p)) {
        throw new ConfigError(`${where}[${i}]`, 'expected a subject pattern such as orders.> or events.*.eu');
      }
      return p;
    }),
  );
}

function list(raw: unknown, where: string): unknown[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw new ConfigError(where, 'must be a list');
  return raw;
}

function mapping(raw: unknown, where: string, known: readonly string[]): Record<string, unknown> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(where, 'must be a mapping');
  }
  const e = raw as Record<string, unknown>;
  for (const k of Object.keys(e)) {
    if (!known.includes(k))
      throw new ConfigError(`${where}.${k}`, `unknown key (known: ${known.join(', ')})`);
  }
  return e;
}

function text(raw: unknown, where: string): string {
  if (typeof raw !== 'string' || raw.trim() === '' || raw.length > 256) {
    throw new ConfigError(where, 'expected a non-empty string of at most 256 characters');
  }
  return raw;
}

function unique(values: readonly string[], where: string, key: string): void {
  const seen = new Set<string>();
  values.forEach((v, i) => {
    if (seen.has(v)) throw new ConfigError(`${where}[${i}].${key}`, 'listed twice');
    seen.add(v);
  });
}
