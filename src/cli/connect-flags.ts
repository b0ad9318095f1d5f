/**
 * What every client subcommand (pub, sub, send, pull, bench) shares: the
 * connection flags, turning them into a connected Client, argument parsers,
 * and how a failure becomes one line on stderr and an exit code.
 */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { DEFAULT_CLIENT_PORT } from '../config/defaults.js';
import { parseDurationMs } from '../config/units.js';
import { ClientError, ClientErrorCode } from '../sdk/wire/errors.js';
import { connect, type Client } from '../sdk/wire/connection.js';
import type { TlsFiles } from '../sdk/wire/types.js';

export const ExitCode = {
  Ok: 0,
  /** The node refused (-ERR), could not be reached, or the connection was lost. */
  Failure: 1,
  /** Bad flags or arguments. */
  Usage: 2,
  /** Nothing came in time: no reply, no message to pull, no confirmation within --timeout. */
  NoMessage: 3,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** For --help of every client subcommand. */
export const EXIT_CODES_HELP = `
Exit codes: 0 ok; 1 the node refused (-ERR), could not be reached or the connection
was lost; 2 bad usage; 3 nothing came in time (no reply, no message, no
confirmation within --timeout).`;

const DEFAULT_SERVER = `127.0.0.1:${DEFAULT_CLIENT_PORT}`;
/** Long enough for a synced send on a loaded cluster (D7.5), short enough that a dead node shows soon. */
const DEFAULT_TIMEOUT_MS = 5000;
/** A wait longer than an hour is a mistake, not a timeout. */
const MAX_TIMEOUT_MS = 3_600_000;

export interface ConnectionFlags {
  server: string;
  token?: string;
  user?: string;
  password?: string;
  tls?: boolean;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  /** Milliseconds (parsed by durationArg). */
  timeout: number;
}

/** A bad flag or argument found after commander's own checks: exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Adds the connection flags (each with its environment variable) to a subcommand. */
export function withConnectionOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('-s, --server <host:port>', 'node to connect to (nats:// or tls:// prefix allowed)')
        .env('SWARMMQ_SERVER')
        .default(DEFAULT_SERVER),
    )
    .addOption(new Option('--token <token>', 'API key to authenticate with').env('SWARMMQ_TOKEN'))
    .addOption(new Option('--user <name>', 'user name to authenticate with').env('SWARMMQ_USER'))
    .addOption(
      new Option('--password <password>', "the user's password (prefer the env var: ps shows flags)").env(
        'SWARMMQ_PASSWORD',
      ),
    )
    .option('--tls', 'insist on TLS (used anyway when the node requires it)')
    .option('--tls-ca <file>', "PEM CA that signed the node's certificate (implies --tls)")
    .option('--tls-cert <file>', 'client certificate for mutual TLS, with --tls-key (implies --tls)')
    .option('--tls-key <file>', 'private key of --tls-cert')
    .addOption(
      new Option('--timeout <duration>', 'for connecting and for each answer: ms, or with a unit (5s)')
        .default(DEFAULT_TIMEOUT_MS, '5s')
        .argParser(durationArg(1, MAX_TIMEOUT_MS)),
    );
}

/** Connects as the flags say; `name` is the CONNECT name the node records. */
export async function openClient(flags: ConnectionFlags, name: string): Promise<Client> {
  const { host, port, tls } = parseServer(flags.server);
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) {
    throw new UsageError('--tls-cert and --tls-key go together');
  }
  const files: TlsFiles = {
    ...(flags.tlsCa === undefined ? {} : { ca: readPem('--tls-ca', flags.tlsCa) }),
    ...(flags.tlsCert === undefined ? {} : { cert: readPem('--tls-cert', flags.tlsCert) }),
    ...(flags.tlsKey === undefined ? {} : { key: readPem('--tls-key', flags.tlsKey) }),
  };
  const wantTls = tls || flags.tls === true || Object.keys(files).length > 0;
  if (flags.password !== undefined && flags.user === undefined)
    throw new UsageError('--password needs --user');
  return connect({
    host,
    port,
    name,
    signal: AbortSignal.timeout(flags.timeout),
    ...(wantTls ? { tls: files } : {}),
    ...(flags.token === undefined ? {} : { token: flags.token }),
    ...(flags.user === undefined ? {} : { user: flags.user, password: flags.password ?? '' }),
  });
}

/** `host:port`, `host`, `[::1]:port`, with an optional nats:// or tls:// (TLS) in front. */
export function parseServer(s: string): { host: string; port: number; tls: boolean } {
  const m = /^(?:(nats|tls):\/\/)?(?:\[([0-9a-fA-F:.]+)\]|([^\s:/[\]]+))(?::(\d{1,5}))?\/?$/.exec(s.trim());
  const port = m?.[4] === undefined ? DEFAULT_CLIENT_PORT : Number(m[4]);
  if (m === null || port < 1 || port > 65535) {
    throw new UsageError(`--server must be host:port (such as 127.0.0.1:4222), got ${JSON.stringify(s)}`);
  }
  return { host: m[2] ?? m[3]!, port, tls: m[1] === 'tls' };
}

function readPem(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(
      `cannot read ${flag} ${file} (${code === 'ENOENT' ? 'no such file' : (code ?? err)})`,
    );
  }
}

/**
 * Wraps a subcommand's action: a failure is one line `swarmmq: ...` on
 * stderr and its exit code; success leaves the exit code at 0. The process
 * then ends by itself once output is written (no process.exit, which could
 * cut off a piped stdout).
 */
export function runAction<A extends unknown[]>(
  action: (...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await action(...args);
    } catch (err) {
      const flags = args.find((a) => typeof a === 'object' && a !== null && 'server' in a) as
        Partial<ConnectionFlags> | undefined;
      const [code, line] = describeFailure(err, flags ?? {});
      process.stderr.write(`swarmmq: ${line}\n`);
      process.exitCode = code;
    }
  };
}

/** The exit code and the one line for a failure. */
export function describeFailure(err: unknown, flags: Partial<ConnectionFlags>): [ExitCode, string] {
  if (err instanceof UsageError) return [ExitCode.Usage, err.message];
  if (!(err instanceof ClientError)) throw err;
  switch (err.code) {
    case ClientErrorCode.Invalid:
      return [ExitCode.Usage, err.message];
    case ClientErrorCode.Timeout:
      return [ExitCode.NoMessage, `${err.message} (--timeout ${flags.timeout ?? DEFAULT_TIMEOUT_MS} ms)`];
    case ClientErrorCode.NoResponders:
      return [ExitCode.NoMessage, err.message];
    case ClientErrorCode.Server:
      if (/^Authorization Violation/i.test(err.serverText ?? '') && !hasCredentials(flags)) {
        return [
          ExitCode.Failure,
          `${err.message} (the node wants credentials: --token, or --user and --password)`,
        ];
      }
      return [ExitCode.Failure, err.message];
    case ClientErrorCode.Tls:
      if (/client certificate/i.test(err.message)) {
        return [ExitCode.Failure, `${err.message}; give one with --tls-cert and --tls-key`];
      }
      // The node's certificate is not trusted: most often a development CA (SEC4.3) not passed.
      if (flags.tlsCa === undefined && /self.signed|unable to (verify|get local issuer)/i.test(err.message)) {
        return [ExitCode.Failure, `${err.message}; pass the CA that signed it with --tls-ca`];
      }
      return [ExitCode.Failure, err.message];
    default:
      return [ExitCode.Failure, err.message];
  }
}

function hasCredentials(flags: Partial<ConnectionFlags>): boolean {
  return flags.token !== undefined || flags.user !== undefined;
}

/** A commander argument parser for a whole number in [min, max]. */
export function intArg(min: number, max: number): (v: string) => number {
  return (v) => {
    const n = /^\d{1,15}$/.test(v) ? Number(v) : NaN;
    if (!(n >= min && n <= max))
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    return n;
  };
}

/** A commander argument parser for a duration (5000, 250ms, 5s, 2m) in [minMs, maxMs], giving ms. */
export function durationArg(minMs: number, maxMs: number): (v: string) => number {
  return (v) => {
    const n = parseDurationMs(v);
    if (typeof n === 'string') throw new InvalidArgumentError(n);
    if (n < minMs || n > maxMs) {
      throw new InvalidArgumentError(`expected a duration from ${minMs} ms to ${maxMs} ms`);
    }
    return n;
  };
}

/** For repeatable options. */
export function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

/** A fresh AbortSignal for one answer, from --timeout (plus `extraMs`, e.g. a pull's own wait). */
export function answerSignal(flags: ConnectionFlags, extraMs = 0): AbortSignal {
  return AbortSignal.timeout(flags.timeout + extraMs);
}

/** Payloads read from stdin stop here: above the largest max_payload a node takes (8 MiB mesh frame). */
const MAX_STDIN_BYTES = 8 * 1024 * 1024;

/** The payload argument, or all of stdin when it is omitted (bounded). */
export async function readPayload(arg: string | undefined): Promise<Buffer> {
  if (arg !== undefined) return Buffer.from(arg);
  if (process.stdin.isTTY === true)
    process.stderr.write('reading the payload from stdin (end it with Ctrl-D)\n');
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > MAX_STDIN_BYTES) {
      process.stdin.destroy();
      throw new UsageError(`the payload on stdin is over ${MAX_STDIN_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
