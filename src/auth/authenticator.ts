/**
 * Decides who a CONNECT is (protocol/SECURITY.md SEC2.2-SEC2.4): an
 * `auth_token` is looked up by its hash, `user`/`pass` is checked against
 * the user's scrypt hash off the event loop. One Authenticator per config;
 * a reload builds a new one and asks it which connections still stand.
 */
import type { AuthConfig, Credential, KeyEntry, UserEntry } from './config.js';
import { hashApiKey, verifyPassword } from './credentials.js';

/** The CONNECT fields that carry credentials. Secrets: never logged. */
export interface PresentedCredentials {
  readonly token: string | undefined;
  readonly user: string | undefined;
  readonly pass: string | undefined;
}

/** A fixed hash to check unknown users against, so a wrong user name costs what a wrong password does. */
const DUMMY_HASH = 'scrypt:14:8:1:AAAAAAAAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

export class Authenticator {
  private readonly byHash = new Map<string, KeyEntry>();
  private readonly users = new Map<string, UserEntry>();

  constructor(readonly config: AuthConfig) {
    for (const k of config.keys) this.byHash.set(k.hash, k);
    for (const u of config.users) this.users.set(u.name, u);
  }

  /** The credential the client proved, or undefined; a promise only for passwords. */
  authenticate(c: PresentedCredentials): Credential | undefined | Promise<Credential | undefined> {
    if (c.token !== undefined) return this.byHash.get(hashApiKey(c.token));
    if (c.user === undefined || c.pass === undefined) return undefined;
    const entry = this.users.get(c.user);
    return verifyPassword(c.pass, entry?.hash ?? DUMMY_HASH).then(
      (ok) => (ok && entry !== undefined ? entry : undefined),
      () => undefined,
    );
  }

  /**
   * SEC2.6: after a reload, the entry that stands for a connection's
   * credential: same kind, name and hash; undefined when it was removed or
   * its secret changed.
   */
  current(c: Credential): Credential | undefined {
    const now = c.kind === 'key' ? this.byHash.get(c.hash) : this.users.get(c.name);
    return now !== undefined && now.name === c.name && now.hash === c.hash ? now : undefined;
  }
}
