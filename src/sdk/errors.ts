/**
 * The SDK's closed catalogue of errors. Every error an application can get
 * from a call is one of these classes; each sets `name` and a stable `code`,
 * so callers branch on `instanceof` or `code`, never on message text.
 * Errors the SDK rides out by itself (a lost connection during a send, an
 * owner that moved) never reach the application.
 */
import { ClientError, ClientErrorCode } from './wire/errors.js';

/** The `code` of every SDK error. */
export const SwarmErrorCode = {
  /** The destination does not exist (DURABLE.md D4.1), or nobody answered a request (C5.4). */
  NotFound: 'NOT_FOUND',
  /** Credentials or permissions refused the call (SECURITY.md SEC2, SEC3). */
  Forbidden: 'FORBIDDEN',
  /** The call's deadline passed. */
  Timeout: 'TIMEOUT',
  /** The caller's AbortSignal aborted the call. */
  Aborted: 'ABORTED',
  /** No node could be reached within the reconnect budget, or the client was closed. */
  Disconnected: 'DISCONNECTED',
  /** A node refused the call; `serverText` is its reason (a full destination, a limit, a bad option). */
  Refused: 'REFUSED',
  /** The arguments cannot be put on the wire (checked before anything is sent). */
  InvalidArgument: 'INVALID_ARGUMENT',
} as const;
/** One of {@link SwarmErrorCode}'s values. */
export type SwarmErrorCode = (typeof SwarmErrorCode)[keyof typeof SwarmErrorCode];

/** The base of every SDK error. */
export class SwarmError extends Error {
  constructor(
    /** What kind of failure: branch on this (or on the class). Its `name` is the class's name. */
    readonly code: SwarmErrorCode,
    message: string,
    /** The node's `-ERR` text, when a node said it. */
    readonly serverText?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SwarmError';
  }
}

/** The destination does not exist (DURABLE.md D4.1). */
export class NotFoundError extends SwarmError {
  constructor(message: string, serverText?: string) {
    super(SwarmErrorCode.NotFound, message, serverText);
    this.name = 'NotFoundError';
  }
}

/** A request that reached no subscriber (CLIENT.md C5.4): a NotFoundError, named for what it is. */
export class NoRespondersError extends NotFoundError {
  constructor(message: string) {
    super(message);
    this.name = 'NoRespondersError';
  }
}

/** Credentials or permissions refused the call (SECURITY.md SEC2, SEC3). */
export class ForbiddenError extends SwarmError {
  constructor(message: string, serverText?: string) {
    super(SwarmErrorCode.Forbidden, message, serverText);
    this.name = 'ForbiddenError';
  }
}

/** The call's deadline passed. */
export class TimeoutError extends SwarmError {
  constructor(message: string) {
    super(SwarmErrorCode.Timeout, message);
    this.name = 'TimeoutError';
  }
}

/** The caller's AbortSignal aborted the call. */
export class AbortError extends SwarmError {
  constructor(message: string, cause?: unknown) {
    super(SwarmErrorCode.Aborted, message, undefined, { cause });
    this.name = 'AbortError';
  }
}

/** No node could be reached within the reconnect budget, or the client is closed. */
export class DisconnectedError extends SwarmError {
  constructor(message: string, cause?: unknown) {
    super(SwarmErrorCode.Disconnected, message, undefined, { cause });
    this.name = 'DisconnectedError';
  }
}

/** A node refused the call; `serverText` says why (a full destination, a limit). */
export class RefusedError extends SwarmError {
  constructor(message: string, serverText: string) {
    super(SwarmErrorCode.Refused, message, serverText);
    this.name = 'RefusedError';
  }
}

/** The arguments cannot be put on the wire; nothing was sent. */
export class InvalidArgumentError extends SwarmError {
  constructor(message: string) {
    super(SwarmErrorCode.InvalidArgument, message);
    this.name = 'InvalidArgumentError';
  }
}

const FORBIDDEN = /^(Permissions Violation|Authorization Violation|Authentication Timeout)/i;
const NOT_FOUND = /^unknown destination/i;

/** The public error for a wire error (one connection's view of a failure). */
export function toSwarmError(err: unknown): SwarmError {
  if (err instanceof SwarmError) return err;
  if (!(err instanceof ClientError)) {
    return new DisconnectedError(err instanceof Error ? err.message : String(err), err);
  }
  switch (err.code) {
    case ClientErrorCode.Server: {
      const text = err.serverText ?? err.message;
      if (FORBIDDEN.test(text)) return new ForbiddenError(err.message, text);
      if (NOT_FOUND.test(text)) return new NotFoundError(err.message, text);
      return new RefusedError(err.message, text);
    }
    case ClientErrorCode.Timeout:
      return new TimeoutError(err.message);
    case ClientErrorCode.Aborted:
      return new AbortError(err.message, err);
    case ClientErrorCode.NoResponders:
      return new NoRespondersError(err.message);
    case ClientErrorCode.Invalid:
      return new InvalidArgumentError(err.message);
    default:
      return new DisconnectedError(err.message, err);
  }
}

/**
 * The node's texts that mean "try again" (whole texts: a destination name
 * inside another text must never match): the owner could not be reached or
 * moved (MESH.md M4.5), fewer nodes than the write quorum confirmed (M5.2),
 * or the node is stopping.
 */
const RETRY_TEXTS = [
  /^owner of \S+ unavailable \(.*\); retry$/,
  /^message stored on \d+ of \d+ nodes; retry with the same id$/,
  /^node is shutting down$/,
];

/**
 * Failures a durable call is retried after, with the same id (protocol/SDK.md
 * SDK3.2): the connection went, or one of RETRY_TEXTS. Anything else is the
 * application's to see, as is the client itself closing.
 */
export function isRetryable(err: unknown): boolean {
  if (!(err instanceof ClientError)) return false;
  switch (err.code) {
    case ClientErrorCode.Closed:
    case ClientErrorCode.Connect:
    case ClientErrorCode.Protocol:
      return true;
    case ClientErrorCode.Server:
      return RETRY_TEXTS.some((re) => re.test(err.serverText ?? ''));
    default:
      return false;
  }
}

/** The error a call gets when its signal aborts: a TimeoutError for AbortSignal.timeout(), else an AbortError. */
export function abortReason(signal: AbortSignal, doing: string): SwarmError {
  // The client's own signal aborts with the error that closed it.
  if (signal.reason instanceof SwarmError) return signal.reason;
  const reason = signal.reason as { name?: string } | undefined;
  return reason?.name === 'TimeoutError'
    ? new TimeoutError(`timed out ${doing}`)
    : new AbortError(`aborted ${doing}`, signal.reason);
}
