/**
 * What the client protocol parser hands to its sink: one event per complete
 * operation, or an error. Payload buffers are views into the bytes the parser
 * was fed (or a copy when a frame straddled two chunks): a sink that keeps one
 * beyond the call holds that chunk alive.
 */
import type { ProtocolError } from '../errors.js';

export type ClientOp =
  | { readonly kind: 'CONNECT'; readonly json: string }
  | {
      readonly kind: 'PUB';
      readonly subject: string;
      readonly reply: string | undefined;
      readonly payload: Buffer;
    }
  | {
      readonly kind: 'HPUB';
      readonly subject: string;
      readonly reply: string | undefined;
      readonly headers: Buffer;
      readonly payload: Buffer;
    }
  | {
      readonly kind: 'SUB';
      readonly subject: string;
      readonly queue: string | undefined;
      readonly sid: string;
    }
  | { readonly kind: 'UNSUB'; readonly sid: string; readonly max: number | undefined }
  | { readonly kind: 'PING' }
  | { readonly kind: 'PONG' }
  | { readonly kind: 'OK' }
  | { readonly kind: 'INFO' }
  | { readonly kind: 'ERR'; readonly message: string }
  | { readonly kind: 'HELP' }
  /** D3.1: a durable send; `options` are the raw key=value tokens. */
  | {
      readonly kind: 'SEND';
      readonly destination: string;
      readonly options: readonly string[];
      readonly payload: Buffer;
    }
  /** D3.9: a durable send with a NATS/1.0 header block (as HPUB's, C3.1). */
  | {
      readonly kind: 'HSEND';
      readonly destination: string;
      readonly options: readonly string[];
      readonly headers: Buffer;
      readonly payload: Buffer;
    }
  /** Payload-less durable verbs (PULL, ACK, NAK, WIP, TERM, CREATE, DESTS) with their raw arguments. */
  | { readonly kind: 'DURABLE'; readonly verb: DurableVerb; readonly args: readonly string[] }
  | { readonly kind: 'error'; readonly error: ProtocolError };

/** The parser's one-method sink. It must not throw. */
export interface ParserSink {
  onOp(op: ClientOp): void;
}

export const DURABLE_VERBS = [
  'PULL',
  'ACK',
  'NAK',
  'WIP',
  'TERM',
  'CREATE',
  'DESTS',
  'DROP',
  'OWNER',
] as const;
export type DurableVerb = (typeof DURABLE_VERBS)[number];

/** One-line usage of each verb, used in -ERR texts and HELP (protocol/CLIENT.md section 3). */
export const usage = {
  CONNECT: 'CONNECT <json>',
  PUB: 'PUB <subject> [reply-to] <#bytes>',
  HPUB: 'HPUB <subject> [reply-to] <#header-bytes> <#total-bytes>',
  SUB: 'SUB <subject> [queue-group] <sid>',
  UNSUB: 'UNSUB <sid> [max-msgs]',
  PING: 'PING',
  PONG: 'PONG',
  HELP: 'HELP',
  SEND: 'SEND <destination> [id=<id>] [priority=<1-10>] [ttl=<dur>] [delay=<dur>] <#bytes>',
  HSEND:
    'HSEND <destination> [id=<id>] [priority=<1-10>] [ttl=<dur>] [delay=<dur>] <#header-bytes> <#total-bytes>',
  PULL: 'PULL <destination> <group> [batch] [wait] [ack_timeout=<dur>]',
  ACK: 'ACK <handle>',
  NAK: 'NAK <handle> [delay]',
  WIP: 'WIP <handle>',
  TERM: 'TERM <handle>',
  CREATE:
    'CREATE <destination> [ttl=<dur>] [max_msgs=<n>] [max_bytes=<size>] [max_deliveries=<n>] [ack_timeout=<dur>] [dead_letter_expired=true]',
  DESTS: 'DESTS',
  DROP: 'DROP <destination> <group>',
  OWNER: 'OWNER <destination>',
} as const;
