/**
 * The shapes the CLI client (client.ts) takes and gives, and the narrow
 * view of a connection its messaging helpers (client-core.ts,
 * client-durable.ts) work through. Callers import these from client.ts.
 */
import type { ClientError } from './errors.js';
import type { ServerOp } from './reader.js';

/** The INFO fields the client uses (C2.1). */
export interface ServerInfo {
  server_id?: string;
  server_name?: string;
  version?: string;
  max_payload?: number;
  auth_required?: boolean;
  tls_required?: boolean;
  tls_available?: boolean;
  tls_verify?: boolean;
  cluster?: string;
  [field: string]: unknown;
}

export interface TlsFiles {
  /** PEM CA bundle to trust instead of the system's. */
  ca?: Buffer;
  /** Client certificate and key for mutual TLS (SEC4.2). */
  cert?: Buffer;
  key?: Buffer;
}

export interface ConnectOptions {
  host: string;
  port: number;
  /** CONNECT auth_token (an API key, SECURITY.md SEC2.1). */
  token?: string;
  user?: string;
  password?: string;
  /**
   * TLS: given, the client insists on it; absent, it upgrades only when INFO
   * says tls_required, trusting the system's CAs.
   */
  tls?: TlsFiles;
  /** CONNECT name; the node stores it as the producer of sent messages (D3.2). */
  name?: string;
  /** Bounds connecting, the TLS handshake and CONNECT; aborting it fails connect(). */
  signal?: AbortSignal;
}

/** A core message. Its buffers are views valid during the callback only: copy what you keep. */
export interface Msg {
  readonly subject: string;
  readonly sid: string;
  readonly reply: string | undefined;
  /** The raw NATS/1.0 header block (C3.1), or undefined. */
  readonly headers: Buffer | undefined;
  readonly payload: Buffer;
}

/** D4.1: one delivery of a pull, as the reader gives it but with buffers copied (safe to keep). */
export type Delivery = Omit<Extract<ServerOp, { kind: 'DMSG' }>, 'kind'>;

/** D3.1: a send's confirmation. */
export interface Stored {
  readonly destination: string;
  readonly seq: number;
  readonly id: string;
  readonly duplicate: boolean;
}

export interface SendOptions {
  id?: string;
  priority?: number;
  ttlMs?: number;
  delayMs?: number;
  /**
   * A raw NATS/1.0 header block (C3.1), stored with the message and shown
   * in its DMSG; given, the send goes as HSEND (D3.9). Without `id`, its
   * `Nats-Msg-Id` names the message.
   */
  headers?: Buffer;
}

export interface PullOptions {
  /** 1-10000 (D4.7). */
  batch: number;
  /** How long the node waits for a first message (D4.1). */
  waitMs?: number;
  /** D4.1 `ack_timeout`: sets the group's ack timeout from this pull on. */
  ackTimeoutMs?: number;
}

export interface Subscription {
  readonly sid: string;
  /** C4.5/C4.6: stop now, or after `max` messages in all. */
  unsubscribe(max?: number): void;
}

/** One pending answer; settling it twice is a no-op. */
export interface Waiter<T> {
  settled: boolean;
  resolve(v: T): void;
  reject(e: ClientError): void;
}

/**
 * What the messaging helpers use of a Client's connection, and only that, so
 * each verb's file shows what it may touch.
 */
export interface ClientWire {
  /** A promise for an answer: settled by the reader, the connection's close, or the signal. */
  wait<T>(signal: AbortSignal | undefined, what: string, start: (w: Waiter<T>) => void): Promise<T>;
  /** Queues bytes; false when the outbound buffer is past its mark. */
  write(bytes: Buffer): boolean;
  /** Queues a control line, optional header block, payload and CRLF as one frame. */
  writeFrame(line: string, headers: Buffer | undefined, payload: Buffer): boolean;
  /** Throws when a message is over the node's max_payload (C1.6). */
  checkSize(bytes: number): void;
  /** C2.6: PING, resolved at its PONG (see Client.flush). */
  flush(signal?: AbortSignal): Promise<void>;
}
