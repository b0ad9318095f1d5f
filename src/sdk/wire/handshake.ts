/**
 * The CLI client's steps before and around its handshake (protocol/CLIENT.md
 * C2.1-C2.6, SECURITY.md SEC4.1): the TCP connect, the CONNECT line, and the
 * TLS upgrade of the same socket after INFO. The Client (client.ts) runs them
 * in order and waits for each answer.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { VERSION } from '../../version.js';
import { ClientError, ClientErrorCode, abortError, describeSocketError } from './errors.js';
import type { ConnectOptions, TlsFiles, Waiter } from './types.js';

/**
 * The byte stream a Client speaks through: a TCP socket, or a libp2p
 * client stream as a Duplex (src/mesh/stream-socket.ts, SECURITY.md SEC6).
 */
export type WireSocket = Duplex & { setNoDelay?(noDelay?: boolean): unknown };

export function openSocket(
  host: string,
  port: number,
  where: string,
  signal?: AbortSignal,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) return reject(abortError(signal, `connecting to ${where}`));
    const socket = net.connect({ host, port });
    const onAbort = (): void => {
      socket.destroy();
      reject(abortError(signal!, `connecting to ${where}`));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal?.removeEventListener('abort', onAbort);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      signal?.removeEventListener('abort', onAbort);
      reject(
        new ClientError(ClientErrorCode.Connect, `cannot connect to ${where} (${describeSocketError(err)})`),
      );
    });
  });
}

export function hostPort(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** C2.2: the CONNECT line, with the credentials and name the options give. */
export function connectLine(opts: Pick<ConnectOptions, 'name' | 'token' | 'user' | 'password'>): Buffer {
  const connectFields: Record<string, unknown> = {
    verbose: false,
    pedantic: false,
    headers: true,
    no_responders: true,
    protocol: 1,
    lang: 'swarmmq-cli',
    version: VERSION,
    ...(opts.name === undefined ? {} : { name: opts.name }),
    ...(opts.token === undefined ? {} : { auth_token: opts.token }),
    ...(opts.user === undefined ? {} : { user: opts.user, pass: opts.password ?? '' }),
  };
  return Buffer.from(`CONNECT ${JSON.stringify(connectFields)}\r\n`);
}

/** Takes the plain socket off the reader and starts TLS on it; the caller attaches the result. */
export function startTls(plain: net.Socket, host: string, files: TlsFiles): tls.TLSSocket {
  plain.removeAllListeners('data');
  plain.removeAllListeners('close');
  return tls.connect({
    socket: plain,
    host,
    // SNI takes a name, not an address (RFC 6066); the certificate is checked against `host` either way.
    ...(net.isIP(host) === 0 ? { servername: host } : {}),
    ...files,
  });
}

/** Settles `w` when the TLS handshake on `secure` ends, either way. */
export function awaitSecureConnect(secure: tls.TLSSocket, where: string, w: Waiter<void>): void {
  secure.once('secureConnect', () => w.resolve());
  secure.once('error', (err) =>
    w.reject(
      new ClientError(
        ClientErrorCode.Tls,
        `TLS handshake with ${where} failed (${describeSocketError(err)})`,
      ),
    ),
  );
  secure.once('close', () =>
    w.reject(new ClientError(ClientErrorCode.Tls, `${where} closed the connection during the TLS handshake`)),
  );
}
