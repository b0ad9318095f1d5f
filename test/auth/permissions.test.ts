/** Subject patterns and permission checks (protocol/SECURITY.md section 3), with no sockets. */
import test from 'ava';
import { covers, matches, overlaps, PermissionCheck, ALLOW_ALL } from '../../src/auth/permissions.js';
import { parseAuthorization } from '../../src/auth/config.js';
import { ConfigError } from '../../src/errors.js';

test('matches: a literal subject against a pattern', (t) => {
  const yes: [string, string][] = [
    ['orders', 'orders'],
    ['orders.*', 'orders.eu'],
    ['orders.>', 'orders.eu.north'],
    ['*.eu', 'orders.eu'],
    ['>', 'a'],
    ['>', 'a.b.c'],
  ];
  const no: [string, string][] = [
    ['orders', 'orders.eu'],
    ['orders.*', 'orders'],
    ['orders.*', 'orders.eu.north'],
    ['orders.>', 'orders'],
    ['*.eu', 'orders.us'],
    ['orders.eu', 'orders'],
  ];
  for (const [p, s] of yes) t.true(matches(p, s), `${p} ~ ${s}`);
  for (const [p, s] of no) t.false(matches(p, s), `${p} !~ ${s}`);
});

test('covers: every subject a subscription can match is matched by the pattern (SEC3.3)', (t) => {
  const yes: [string, string][] = [
    ['orders.>', 'orders.*'],
    ['orders.>', 'orders.>'],
    ['orders.>', 'orders.eu.*'],
    ['>', '>'],
    ['*.eu', '*.eu'],
    ['orders.*', 'orders.eu'],
  ];
  const no: [string, string][] = [
    ['orders.*', 'orders.>'],
    ['orders.eu', 'orders.*'],
    ['orders.>', '>'],
    ['orders.>', 'orders'],
    ['*.eu', '*.*'],
  ];
  for (const [p, s] of yes) t.true(covers(p, s), `${p} covers ${s}`);
  for (const [p, s] of no) t.false(covers(p, s), `${p} does not cover ${s}`);
});

test('overlaps: some subject matches both', (t) => {
  t.true(overlaps('>', 'secret.x'));
  t.true(overlaps('orders.*', '*.eu'));
  t.true(overlaps('a.*.c', 'a.b.>'));
  t.false(overlaps('orders.*', 'secret.>'));
  t.false(overlaps('a.b', 'a.b.c'));
  t.false(overlaps('a.*', 'a.b.>'));
});

function permissionsOf(yaml: Record<string, unknown>): PermissionCheck {
  const cfg = parseAuthorization({
    keys: [{ name: 'k', key_hash: `sha256:${'0'.repeat(64)}`, permissions: yaml }],
  })!;
  return new PermissionCheck(cfg.keys[0]!.permissions);
}

test('publish and subscribe rules: allow list, deny list, and the delivery filter', (t) => {
  const p = permissionsOf({
    publish: { allow: ['orders.>', '_INBOX.>'], deny: ['orders.secret'] },
    subscribe: { deny: ['secret.>'] },
  });
  t.true(p.mayPublish('orders.eu'));
  t.false(p.mayPublish('orders.secret'));
  t.false(p.mayPublish('billing'));
  t.true(p.mayPublish('orders.eu'), 'the cached answer agrees');
  // SUB: no allow list, so anything not covered by a deny pattern.
  t.true(p.maySubscribe('>'));
  t.false(p.maySubscribe('secret.>'));
  t.false(p.maySubscribe('secret.x'));
  t.true(p.needsDeliveryFilter('>'));
  t.false(p.needsDeliveryFilter('orders.*'));
  t.false(p.mayReceive('secret.x'));
  t.true(p.mayReceive('orders.x'));
});

test('destination rights: absent lists grant, present lists restrict (SEC3.4)', (t) => {
  const p = permissionsOf({ destinations: { send: ['orders.*'], admin: [] } });
  t.true(p.mayUse('send', 'orders.eu'));
  t.false(p.mayUse('send', 'billing'));
  t.true(p.mayUse('pull', 'billing'), 'no pull list: every destination');
  t.false(p.mayUse('admin', 'orders.eu'), 'an empty list: none');
  const all = new PermissionCheck(ALLOW_ALL);
  t.true(all.mayPublish('x') && all.maySubscribe('>') && all.mayUse('admin', 'x'));
});

test('the publish decision cache stays bounded', (t) => {
  const p = permissionsOf({ publish: ['a.>'] });
  for (let i = 0; i < 5000; i++) p.mayPublish(`a.${i}`);
  const cache = (p as unknown as { publishCache: Map<string, boolean> }).publishCache;
  t.true(cache.size <= 1024);
});

test('a bad authorization section names the key and the reason', (t) => {
  const bad: [Record<string, unknown>, string][] = [
    [{ keys: [{ name: 'a', key_hash: 'smq_plaintextkey' }] }, 'authorization.keys[0].key_hash'],
    [
      { keys: [{ name: 'a', key_hash: `sha256:${'0'.repeat(64)}`, extra: 1 }] },
      'authorization.keys[0].extra',
    ],
    [
      { keys: [{ name: 'a', key_hash: `sha256:${'0'.repeat(64)}`, permissions: { publish: ['a..b'] } }] },
      'authorization.keys[0].permissions.publish[0]',
    ],
    [
      {
        keys: [
          { name: 'a', key_hash: `sha256:${'0'.repeat(64)}` },
          { name: 'a', key_hash: `sha256:${'1'.repeat(64)}` },
        ],
      },
      'authorization.keys[1].name',
    ],
    [{ users: [{ user: 'u', password_hash: 'plain' }] }, 'authorization.users[0].password_hash'],
    [
      { users: [{ user: 'u', password_hash: `scrypt:30:8:1:${'A'.repeat(22)}:${'A'.repeat(43)}` }] },
      'authorization.users[0].password_hash',
    ],
    [
      {
        keys: [
          { name: 'a', key_hash: `sha256:${'0'.repeat(64)}`, permissions: { destinations: { read: [] } } },
        ],
      },
      'authorization.keys[0].permissions.destinations.read',
    ],
  ];
  for (const [section, key] of bad) {
    const err = t.throws(() => parseAuthorization(section), { instanceOf: ConfigError });
    t.is(err?.key, key);
  }
  const err = t.throws(() => parseAuthorization({ keys: [{ name: 'a', key_hash: 'smq_plaintextkey' }] }));
  t.false(err?.message.includes('smq_plaintextkey'), 'a pasted key is not echoed');
});
