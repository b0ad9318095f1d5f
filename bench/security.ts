/**
 * The secured modes of the core benchmark (core.ts --tls, --token): one
 * development certificate and one API key made with the SwarmMQ CLI under
 * test, the flags that make SwarmMQ and nats-server require them, the stock
 * client's options, and a probe that checks on the wire that each server
 * really asks for what the mode says (INFO tls_required / auth_required) and
 * which TLS version and cipher it negotiates.
 *
 * Every wait is bounded; only loopback is used. The key is a throw-away
 * benchmark secret: SwarmMQ gets only its hash (in a config file in the temp
 * dir), nats-server gets it on its command line (`--auth`, visible in ps).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import type { NodeConnectionOptions } from '@nats-io/transport-node';
import { parse, stringify } from 'yaml';
import { withTimeout } from './lib.js';

/** What the servers require of a client in this run. */
export type SecurityMode = 'plain' | 'tls' | 'token' | 'tls+token';

/** A `gen` command of the SwarmMQ CLI takes well under a second; openssl included. */
const GEN_TIMEOUT_MS = 30_000;
/** The INFO line is a few hundred bytes; anything longer is not a NATS server. */
const MAX_INFO_BYTES = 64 * 1024;
/** The name `gen certs` puts in the server certificate (besides IP 127.0.0.1). */
const CERT_HOST = 'localhost';

export interface BenchSecurity {
  mode: SecurityMode;
  /** --tls: the development CA (the client trusts it) and the server certificate both servers use. */
  tls: { caFile: string; certFile: string; keyFile: string } | undefined;
  /** --token: the API key both servers require; the stock client sends it as `token`. */
  token: string | undefined;
  /** --token: SwarmMQ's config file, holding only the key's hash (authorization.keys). */
  swarmConfigFile: string | undefined;
}

/** The mode's name, as the report and --json show it. */
export function securityMode(useTls: boolean, useToken: boolean): SecurityMode {
  return useTls ? (useToken ? 'tls+token' : 'tls') : useToken ? 'token' : 'plain';
}

/**
 * Makes what the mode needs in `dir` (a temp dir the caller removes):
 * `gen certs --out dir` for TLS, `gen key` and a config file for the token,
 * both with the SwarmMQ CLI at `swarmMain` so that the files suit that build.
 */
export function prepareSecurity(
  useTls: boolean,
  useToken: boolean,
  swarmMain: string,
  dir: string,
): BenchSecurity {
  const gen = (args: string[]): string =>
    execFileSync(process.execPath, [swarmMain, 'gen', ...args], {
      encoding: 'utf8',
      timeout: GEN_TIMEOUT_MS,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  let tlsFiles: BenchSecurity['tls'];
  if (useTls) {
    gen(['certs', '--out', dir, '--host', CERT_HOST, '--ip', '127.0.0.1']);
    tlsFiles = {
      caFile: path.join(dir, 'ca.pem'),
      certFile: path.join(dir, 'server.pem'),
      keyFile: path.join(dir, 'server-key.pem'),
    };
  }
  let token: string | undefined;
  let swarmConfigFile: string | undefined;
  if (useToken) {
    // Line 1 is a comment, line 2 the key, line 3 a comment, then the YAML list entry.
    const lines = gen(['key', '--name', 'bench']).split('\n');
    token = lines[1]?.trim();
    const keys = parse(lines.slice(3).join('\n')) as unknown;
    if (token === undefined || token === '' || !Array.isArray(keys) || keys.length !== 1) {
      throw new Error('`swarmmq gen key` printed something else than a key and one authorization.keys entry');
    }
    swarmConfigFile = path.join(dir, 'swarmmq-bench.yaml');
    writeFileSync(swarmConfigFile, stringify({ authorization: { keys } }), { mode: 0o600 });
  }
  return { mode: securityMode(useTls, useToken), tls: tlsFiles, token, swarmConfigFile };
}

/** Arguments for `swarmmq start`: TLS by flags, the keys through the config file. */
export function swarmArgs(sec: BenchSecurity): string[] {
  return [
    ...(sec.swarmConfigFile !== undefined ? ['--config', sec.swarmConfigFile] : []),
    ...(sec.tls !== undefined ? ['--tls-cert', sec.tls.certFile, '--tls-key', sec.tls.keyFile] : []),
  ];
}

/** Arguments for nats-server: TLS without client verification, and a single token. */
export function natsServerArgs(sec: BenchSecurity): string[] {
  return [
    ...(sec.tls !== undefined ? ['--tls', '--tlscert', sec.tls.certFile, '--tlskey', sec.tls.keyFile] : []),
    ...(sec.token !== undefined ? ['--auth', sec.token] : []),
  ];
}

/** The stock client's options for the mode (its TLS upgrade follows INFO's tls_required). */
export function clientOptions(sec: BenchSecurity): NodeConnectionOptions {
  return {
    ...(sec.tls !== undefined ? { tls: { caFile: sec.tls.caFile } } : {}),
    ...(sec.token !== undefined ? { token: sec.token } : {}),
  };
}

/** What a server announced and negotiated, as seen by a raw connection. */
export interface WireSecurity {
  tlsRequired: boolean;
  authRequired: boolean;
  /** e.g. TLSv1.3; undefined without TLS. */
  tlsProtocol: string | undefined;
  /** e.g. TLS_AES_256_GCM_SHA384; undefined without TLS. */
  tlsCipher: string | undefined;
}

/**
 * Reads the plaintext INFO line, checks that tls_required and auth_required
 * match the mode (so a server that silently ignored a flag fails the run
 * instead of being measured in the wrong mode), and with TLS completes a
 * handshake to learn the protocol and cipher. Sends no CONNECT.
 */
export async function probeServer(
  port: number,
  sec: BenchSecurity,
  label: string,
  ms: number,
): Promise<WireSecurity> {
  const socket = net.connect({ host: '127.0.0.1', port });
  let secure: tls.TLSSocket | undefined;
  try {
    const info = await withTimeout(readInfo(socket), ms, `${label}: INFO`);
    const tlsRequired = info.tls_required === true;
    const authRequired = info.auth_required === true;
    if (tlsRequired !== (sec.tls !== undefined) || authRequired !== (sec.token !== undefined)) {
      throw new Error(
        `${label} announces tls_required=${tlsRequired} auth_required=${authRequired}, not what mode ${sec.mode} needs`,
      );
    }
    if (sec.tls === undefined)
      return { tlsRequired, authRequired, tlsProtocol: undefined, tlsCipher: undefined };
    const s = tls.connect({ socket, servername: CERT_HOST, ca: readFileSync(sec.tls.caFile) });
    secure = s;
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        s.once('secureConnect', () => resolve());
        s.once('error', reject);
        s.once('close', () => reject(new Error('closed during the TLS handshake')));
      }),
      ms,
      `${label}: TLS handshake`,
    );
    return {
      tlsRequired,
      authRequired,
      tlsProtocol: s.getProtocol() ?? 'unknown',
      tlsCipher: s.getCipher().name,
    };
  } finally {
    secure?.destroy();
    socket.destroy();
  }
}

/** The first line from the server, which must be INFO; leaves the socket paused for a TLS upgrade. */
function readInfo(socket: net.Socket): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (d: Buffer): void => {
      text += d.toString('latin1');
      const end = text.indexOf('\r\n');
      if (end < 0) {
        if (text.length > MAX_INFO_BYTES) finish(new Error('no INFO line within 64 KiB'));
        return;
      }
      const m = /^INFO (.*)$/.exec(text.slice(0, end));
      if (m === null) finish(new Error(`expected INFO, got ${JSON.stringify(text.slice(0, 80))}`));
      else finish(undefined, JSON.parse(m[1]!) as Record<string, unknown>);
    };
    const onError = (err: Error): void => finish(err);
    const onClose = (): void => finish(new Error('closed before INFO'));
    const finish = (err: Error | undefined, info?: Record<string, unknown>): void => {
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.pause();
      if (err !== undefined) reject(err);
      else resolve(info!);
    };
    socket.on('data', onData);
    socket.once('error', onError);
    socket.once('close', onClose);
  });
}
