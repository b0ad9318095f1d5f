/**
 * The CLI client's errors: one class with a closed set of codes, each
 * message one line a person can read (the CLI prints it as is).
 */

export const ClientErrorCode = {
  /** The TCP connection could not be made (refused, unknown host ...). */
  Connect: 'CONNECT',
  /** TLS was asked for and not offered, or the handshake failed. */
  Tls: 'TLS',
  /** The node answered `-ERR`; `serverText` holds its text. */
  Server: 'SERVER',
  /** An AbortSignal that timed out. */
  Timeout: 'TIMEOUT',
  /** An AbortSignal aborted for another reason (Ctrl-C). */
  Aborted: 'ABORTED',
  /** A request reached no subscriber (C5.4). */
  NoResponders: 'NO_RESPONDERS',
  /** The connection closed, or was lost. */
  Closed: 'CLOSED',
  /** The node sent something this client cannot read. */
  Protocol: 'PROTOCOL',
  /** A call with arguments the protocol cannot carry (checked before anything is written). */
  Invalid: 'INVALID',
} as const;
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/** Every failure of this client; `message` is one line a person can read. */
export class ClientError extends Error {
  override readonly name = 'ClientError';
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    /** For `Server`: the -ERR text without quotes. */
    readonly serverText?: string,
  ) {
    super(message);
  }
}

/** `doing`: what was under way, e.g. "waiting for PONG from 127.0.0.1:4222". */
export function abortError(signal: AbortSignal, doing: string): ClientError {
  const reason = signal.reason as { name?: string } | undefined;
  return reason?.name === 'TimeoutError'
    ? new ClientError(ClientErrorCode.Timeout, `timed out ${doing}`)
    : new ClientError(ClientErrorCode.Aborted, `stopped ${doing}`);
}

const SOCKET_ERRORS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'unknown host',
  EAI_AGAIN: 'host name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'timed out',
  EPIPE: 'connection closed while writing',
  // SEC4.2: a node with tls.verify closes a TLS 1.3 client without a certificate after the handshake.
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: 'the server requires a client certificate',
};

export function describeSocketError(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return (code === undefined ? undefined : SOCKET_ERRORS[code]) ?? err.message;
}
