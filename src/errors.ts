/**
 * The closed catalogue of SwarmMQ errors: the errors a client can see on the
 * wire, the reasons a connection is closed, and the errors that stop a node
 * from starting. Every other module raises errors from here, so tests assert
 * on `name`/`code`, and wire texts never drift.
 */

/** Why a client connection ended. Logged and counted; never free text. */
export const CloseReason = {
  ClientClosed: 'client_closed',
  ServerShutdown: 'server_shutdown',
  SlowConsumer: 'slow_consumer',
  StaleConnection: 'stale_connection',
  MaxPayloadExceeded: 'max_payload_exceeded',
  MaxControlLineExceeded: 'max_control_line_exceeded',
  MaxConnectionsExceeded: 'max_connections_exceeded',
  ParseError: 'parse_error',
  ProtocolViolation: 'protocol_violation',
  ClientError: 'client_sent_err',
  SocketError: 'socket_error',
  /** SEC2.3: bad or missing credentials, or an operation before CONNECT when auth is on. */
  AuthorizationViolation: 'authorization_violation',
  /** SEC2.5: no CONNECT within the auth timeout. */
  AuthenticationTimeout: 'authentication_timeout',
  /** SEC2.6: the connection's key or user was removed or changed by a reload. */
  CredentialsRevoked: 'credentials_revoked',
  /** SEC4.1: a plaintext client on a TLS port. */
  TlsRequired: 'tls_required',
  /** SEC4.1: the TLS handshake failed or did not finish in time. */
  TlsHandshakeFailed: 'tls_handshake_failed',
  /** SEC5.2: too many new connections from one address. */
  ConnectionRateExceeded: 'connection_rate_exceeded',
  /** SEC6.5: a libp2p client reset its stream (or its connection failed under it). */
  StreamReset: 'stream_reset',
} as const;
export type CloseReason = (typeof CloseReason)[keyof typeof CloseReason];

/**
 * An error in what a client sent. `wireText` goes out as `-ERR '<wireText>'`;
 * `fatal` says whether the connection is closed after it (protocol/CLIENT.md
 * rule C6.x gives the table).
 */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(
    readonly code: ProtocolErrorCode,
    readonly wireText: string,
    readonly fatal: boolean,
    readonly closeReason: CloseReason = CloseReason.ParseError,
  ) {
    super(wireText);
  }
}

export const ProtocolErrorCode = {
  UnknownOperation: 'UNKNOWN_OPERATION',
  BadArguments: 'BAD_ARGUMENTS',
  BadPayloadArguments: 'BAD_PAYLOAD_ARGUMENTS',
  MaxPayload: 'MAX_PAYLOAD',
  MaxControlLine: 'MAX_CONTROL_LINE',
  PayloadTerminator: 'PAYLOAD_TERMINATOR',
  InvalidConnect: 'INVALID_CONNECT',
  InvalidProtocol: 'INVALID_PROTOCOL',
  NoRespondersRequiresHeaders: 'NO_RESPONDERS_REQUIRES_HEADERS',
  InvalidSubject: 'INVALID_SUBJECT',
  InvalidPublishSubject: 'INVALID_PUBLISH_SUBJECT',
  MaxSubscriptions: 'MAX_SUBSCRIPTIONS',
  HeadersNotSupported: 'HEADERS_NOT_SUPPORTED',
} as const;
export type ProtocolErrorCode = (typeof ProtocolErrorCode)[keyof typeof ProtocolErrorCode];

const E = ProtocolErrorCode;

/** Constructors for every client-visible error. Texts follow nats-server 2.9 where it has one. */
export const protocolErrors = {
  /** C6.1: an unknown verb; the line is skipped and the connection stays open. */
  unknownOperation: (verb: string) =>
    new ProtocolError(
      E.UnknownOperation,
      `Unknown Protocol Operation: ${printable(verb)} (send HELP for the list of verbs)`,
      false,
    ),
  /** C6.2: a payload-less verb with wrong arguments; the line is skipped. */
  badArguments: (verb: string, usage: string) =>
    new ProtocolError(E.BadArguments, `Invalid ${verb} arguments, expected: ${usage}`, false),
  /** C6.3: a verb with a payload and wrong arguments; the payload cannot be found, so the connection closes. */
  badPayloadArguments: (verb: string, usage: string) =>
    new ProtocolError(E.BadPayloadArguments, `Invalid ${verb} arguments, expected: ${usage}`, true),
  /** C6.4 */
  maxPayload: () =>
    new ProtocolError(E.MaxPayload, 'Maximum Payload Violation', true, CloseReason.MaxPayloadExceeded),
  /** C6.5 */
  maxControlLine: () =>
    new ProtocolError(
      E.MaxControlLine,
      'maximum control line exceeded',
      true,
      CloseReason.MaxControlLineExceeded,
    ),
  /** C6.6: the byte after the declared payload is not CR LF (or LF). */
  payloadTerminator: (size: number) =>
    new ProtocolError(
      E.PayloadTerminator,
      `Unknown Protocol Operation: payload is longer than its declared ${size} bytes (expected CRLF after it)`,
      true,
    ),
  /** C2.3 */
  invalidConnect: (why: string) =>
    new ProtocolError(
      E.InvalidConnect,
      `Invalid CONNECT: ${why.replace(/'/g, '"')}`,
      true,
      CloseReason.ProtocolViolation,
    ),
  /** C2.4 */
  invalidProtocol: () =>
    new ProtocolError(E.InvalidProtocol, 'invalid client protocol', true, CloseReason.ProtocolViolation),
  /** C2.5 */
  noRespondersRequiresHeaders: () =>
    new ProtocolError(
      E.NoRespondersRequiresHeaders,
      'no responders requires headers support',
      true,
      CloseReason.ProtocolViolation,
    ),
  /** C4.2 */
  invalidSubject: () => new ProtocolError(E.InvalidSubject, 'Invalid Subject', false),
  /** C3.3 */
  invalidPublishSubject: () => new ProtocolError(E.InvalidPublishSubject, 'Invalid Publish Subject', false),
  /** C3.5 */
  headersNotSupported: () =>
    new ProtocolError(
      E.HeadersNotSupported,
      'message headers not supported (send CONNECT {"headers":true} first)',
      true,
      CloseReason.ProtocolViolation,
    ),
  /** C4.2: a subscription subject deeper than MAX_SUBJECT_TOKENS (SECURITY.md SEC5.1). */
  tooManyTokens: (max: number) =>
    new ProtocolError(E.InvalidSubject, `Invalid Subject: more than ${max} tokens`, false),
  /** C4.4 */
  maxSubscriptions: () => new ProtocolError(E.MaxSubscriptions, 'maximum subscriptions exceeded', false),
} as const;

/** Wire texts the server sends when it closes a connection for its own reasons. */
export const closeTexts = {
  stale: 'Stale Connection',
  maxConnections: 'maximum connections exceeded',
  authorizationViolation: 'Authorization Violation',
  authenticationTimeout: 'Authentication Timeout',
  tlsRequired: 'Secure Connection - TLS Required',
  connectionRate: 'maximum connection rate exceeded',
} as const;

/**
 * SEC3.5: permission refusals, in nats-server's words where it has them.
 * None closes the connection.
 */
export const permissionTexts = {
  publish: (subject: string) => `Permissions Violation for Publish to ${quoted(subject)}`,
  subscribe: (subject: string, queue: string | undefined) =>
    `Permissions Violation for Subscription to ${quoted(subject)}${queue === undefined ? '' : ` using queue ${quoted(queue)}`}`,
  send: (destination: string) => `Permissions Violation for Send to ${quoted(destination)}`,
  pull: (destination: string) => `Permissions Violation for Pull from ${quoted(destination)}`,
  admin: (destination: string) => `Permissions Violation for Admin of ${quoted(destination)}`,
} as const;

/** A client-supplied subject in double quotes, without letting it break the -ERR line. */
function quoted(s: string): string {
  return `"${s.replace(/["'\r\n]/g, '?').slice(0, 256)}"`;
}

/** A configuration the node refuses; `key` names the offending option path. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly key: string,
    readonly reason: string,
  ) {
    super(`config ${key}: ${reason}`);
  }
}

/** The node could not start (port taken, data dir unusable). */
export class StartupError extends Error {
  override readonly name = 'StartupError';
  constructor(
    readonly code:
      | 'PORT_IN_USE'
      | 'BIND_FAILED'
      | 'DATA_DIR_UNUSABLE'
      | 'MASTER_KEY_MISMATCH'
      | 'MESH_FAILED'
      | 'TLS_FAILED',
    message: string,
  ) {
    super(message);
  }
}

/** Shows a client-supplied token in an error without letting it break the line. */
function printable(s: string): string {
  const clipped = s.length > 32 ? `${s.slice(0, 32)}...` : s;
  return JSON.stringify(clipped).replace(/'/g, '');
}

/** Why a durable operation was refused (protocol/DURABLE.md section 6). Never fatal to the connection. */
export const DurableErrorCode = {
  InvalidDestination: 'INVALID_DESTINATION',
  UnknownDestination: 'UNKNOWN_DESTINATION',
  InvalidGroup: 'INVALID_GROUP',
  InvalidOption: 'INVALID_OPTION',
  DestinationFull: 'DESTINATION_FULL',
  TooManyDestinations: 'TOO_MANY_DESTINATIONS',
  DiskFull: 'DISK_FULL',
  StorageFailure: 'STORAGE_FAILURE',
  UnknownHandle: 'UNKNOWN_HANDLE',
  TooManyGroups: 'TOO_MANY_GROUPS',
  Closed: 'CLOSED',
  /** Fewer replicas than the write quorum synced the message (protocol/MESH.md M5.2). */
  ReplicationFailed: 'REPLICATION_FAILED',
  /** A node that owns a destination refused another node's replica change (MESH.md M5.1). */
  NotReplica: 'NOT_REPLICA',
  /** The client's key or user lacks the right on this destination (SECURITY.md SEC3.4). */
  PermissionDenied: 'PERMISSION_DENIED',
  /** The destination's owner could not be reached in time (M4.5). */
  OwnerUnavailable: 'OWNER_UNAVAILABLE',
} as const;
export type DurableErrorCode = (typeof DurableErrorCode)[keyof typeof DurableErrorCode];

/**
 * What an -ERR sent to a client is counted as (protocol/METRICS.md MT2.1,
 * swarmmq_server_errors_total{kind}): its code from this catalogue, or
 * INTERNAL for a fault of the node's own.
 */
export type ErrorKind = ProtocolErrorCode | DurableErrorCode | 'INTERNAL';

export class DurableError extends Error {
  override readonly name = 'DurableError';
  constructor(
    readonly code: DurableErrorCode,
    message: string,
  ) {
    super(message.replace(/'/g, '"'));
  }
}

/**
 * A monitoring query parameter an endpoint refuses (protocol/MONITORING.md
 * MON1.3): answered 400 with `param` and `reason` (a value it quotes is clipped).
 */
export class MonitorQueryError extends Error {
  override readonly name = 'MonitorQueryError';
  constructor(
    readonly param: string,
    readonly reason: string,
  ) {
    super(`${param}: ${reason}`);
  }
}
