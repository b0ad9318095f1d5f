/**
 * `swarmmq gen`: make the secrets a secured cluster needs (protocol/
 * SECURITY.md): a cluster key, an API key with its config entry, a user with
 * a hashed password, and development certificates made with openssl.
 * Secrets go to stdout once and are never written anywhere else.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { hashApiKey, hashPassword, newApiKey } from '../auth/credentials.js';
import { isValidSubscribeSubject } from '../subjects/subject.js';

interface PermissionFlags {
  publish?: string[];
  subscribe?: string[];
  send?: string[];
  pull?: string[];
  admin?: string[];
}

export function registerGen(program: Command): void {
  const gen = program
    .command('gen')
    .description('make a cluster key, API keys, users or development certificates');
  gen
    .command('cluster-key')
    .description('print a new mesh cluster key (security.cluster_key or SWARMMQ_CLUSTER_KEY on every node)')
    .action(() => {
      console.log(randomBytes(32).toString('hex'));
    });
  withPermissions(
    gen
      .command('key')
      .description('print a new API key and the authorization.keys entry that admits it (only its hash)')
      .requiredOption('--name <name>', 'a name for the key, shown in logs'),
  ).action((flags: PermissionFlags & { name: string }) => {
    const key = newApiKey();
    console.log(
      `# API key "${flags.name}": the client sends it as its token (CONNECT auth_token). Shown only now.`,
    );
    console.log(key);
    console.log('# Add under authorization.keys in the node config:');
    process.stdout.write(stringify([{ name: flags.name, key_hash: hashApiKey(key), ...permissions(flags) }]));
  });
  withPermissions(
    gen
      .command('user')
      .description('print the authorization.users entry for a user; the password is read from stdin')
      .requiredOption('--user <name>', 'the user name (CONNECT user)'),
  ).action(async (flags: PermissionFlags & { user: string }) => {
    const password = readFileSync(0, 'utf8').split(/\r?\n/)[0] ?? '';
    if (password.length < 8) fail('the password (first line of stdin) must be at least 8 characters');
    const hash = await hashPassword(password);
    console.log('# Add under authorization.users in the node config:');
    process.stdout.write(stringify([{ user: flags.user, password_hash: hash, ...permissions(flags) }]));
  });
  gen
    .command('certs')
    .description('make a development CA, a server certificate and a client certificate with openssl')
    .requiredOption('--out <dir>', 'directory for the PEM files')
    .option('--host <name>', 'server DNS name', 'localhost')
    .option('--ip <address>', 'server IP address', '127.0.0.1')
    .action((flags: { out: string; host: string; ip: string }) => makeCerts(flags.out, flags.host, flags.ip));
}

function withPermissions(cmd: Command): Command {
  const many = (v: string, prev: string[] = []): string[] => {
    if (!isValidSubscribeSubject(v)) fail(`${JSON.stringify(v)} is not a subject pattern`);
    return [...prev, v];
  };
  return cmd
    .option('--publish <pattern>', 'subjects it may publish to (repeatable; default: all)', many)
    .option('--subscribe <pattern>', 'subjects it may subscribe to (repeatable; default: all)', many)
    .option('--send <pattern>', 'destinations it may SEND to (repeatable; default: all)', many)
    .option('--pull <pattern>', 'destinations it may PULL and settle (repeatable; default: all)', many)
    .option(
      '--admin <pattern>',
      'destinations it may CREATE and DROP groups of (repeatable; default: all)',
      many,
    );
}

function permissions(f: PermissionFlags): { permissions?: Record<string, unknown> } {
  const p: Record<string, unknown> = {};
  if (f.publish !== undefined) p.publish = f.publish;
  if (f.subscribe !== undefined) p.subscribe = f.subscribe;
  const d: Record<string, unknown> = {};
  if (f.send !== undefined) d.send = f.send;
  if (f.pull !== undefined) d.pull = f.pull;
  if (f.admin !== undefined) d.admin = f.admin;
  if (Object.keys(d).length > 0) p.destinations = d;
  return Object.keys(p).length === 0 ? {} : { permissions: p };
}

/** SEC4.3: an EC P-256 CA, and server and client certificates it signs; keys mode 0600. */
function makeCerts(out: string, host: string, ip: string): void {
  mkdirSync(out, { recursive: true });
  const f = (name: string): string => path.join(out, name);
  const openssl = (...args: string[]): void => {
    try {
      execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      const e = err as { stderr?: Buffer; message: string };
      fail(`openssl ${args[0]} failed: ${(e.stderr?.toString() ?? e.message).trim().split('\n')[0]}`);
    }
  };
  const days = '30';
  const key = (name: string): void =>
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', f(name));
  key('ca-key.pem');
  openssl(
    'req',
    '-x509',
    '-new',
    '-key',
    f('ca-key.pem'),
    '-out',
    f('ca.pem'),
    '-days',
    days,
    '-subj',
    '/CN=SwarmMQ development CA',
  );
  const leaf = (name: string, subject: string, ext: string): void => {
    key(`${name}-key.pem`);
    openssl('req', '-new', '-key', f(`${name}-key.pem`), '-out', f(`${name}.csr`), '-subj', subject);
    const extFile = f(`${name}.ext`);
    execFileSync('sh', ['-c', 'cat > "$1"', 'sh', extFile], { input: ext });
    openssl(
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca-key.pem'),
      '-CAcreateserial',
      '-out',
      f(`${name}.pem`),
      '-days',
      days,
      '-extfile',
      extFile,
    );
  };
  leaf('server', `/CN=${host}`, `subjectAltName=DNS:${host},IP:${ip}\nextendedKeyUsage=serverAuth\n`);
  leaf('client', '/CN=swarmmq-client', 'extendedKeyUsage=clientAuth\n');
  execFileSync('sh', ['-c', 'chmod 600 "$1"/*-key.pem && rm -f "$1"/*.csr "$1"/*.ext "$1"/*.srl', 'sh', out]);
  console.log(`# Development certificates in ${out} (valid ${days} days). Node config:`);
  process.stdout.write(
    stringify({
      tls: { cert_file: f('server.pem'), key_file: f('server-key.pem'), ca_file: f('ca.pem'), verify: true },
    }),
  );
  console.log(
    `# Clients trust ${f('ca.pem')} and, with verify on, present ${f('client.pem')} and ${f('client-key.pem')}.`,
  );
}

function fail(message: string): never {
  console.error(`swarmmq gen: ${message}`);
  process.exit(2);
}
