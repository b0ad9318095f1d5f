/**
 * The messages an application gets: core messages (CLIENT.md C5) and
 * durable deliveries (DURABLE.md D4), with their headers decoded and their
 * bytes copied (safe to keep).
 */
import { decodeHeaders, encodeHeaders } from './wire/text.js';
import type { Delivery } from './wire/types.js';

/** Header fields to send: an object or name/value pairs (a name may repeat in pairs). */
export type HeadersInit = Readonly<Record<string, string>> | readonly (readonly [string, string])[];

/** Message data: bytes, or text sent as UTF-8. */
export type Payload = Uint8Array | string;

/** Decoded header fields: every value of a name, in order. */
export type Headers = ReadonlyMap<string, readonly string[]>;

export function toBuffer(data: Payload): Buffer {
  return typeof data === 'string'
    ? Buffer.from(data, 'utf8')
    : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** C3.1: a NATS/1.0 header block, or undefined for none. */
export function headerBlock(h: HeadersInit | undefined): Buffer | undefined {
  if (h === undefined) return undefined;
  const pairs = Array.isArray(h) ? (h as readonly (readonly [string, string])[]) : Object.entries(h);
  return pairs.length === 0 ? undefined : encodeHeaders(pairs);
}

export function readHeaders(block: Buffer | undefined): Headers | undefined {
  if (block === undefined) return undefined;
  const out = new Map<string, string[]>();
  for (const [name, value] of decodeHeaders(block).fields) {
    const list = out.get(name);
    if (list === undefined) out.set(name, [value]);
    else list.push(value);
  }
  return out;
}

/** What every message offers for reading its data. */
abstract class Body {
  abstract readonly data: Uint8Array;
  /** The data as UTF-8 text. */
  string(): string {
    return Buffer.from(this.data.buffer, this.data.byteOffset, this.data.byteLength).toString('utf8');
  }
  /** The data parsed as JSON. */
  json<T = unknown>(): T {
    return JSON.parse(this.string()) as T;
  }
}

/** A core message (C5.1, C5.3). */
export class Msg extends Body {
  /** @internal */
  constructor(
    /** The subject it was published to. */
    readonly subject: string,
    /** The reply subject the publisher gave (C5.6), if any. */
    readonly reply: string | undefined,
    /** Its header fields, if it had any (C5.3). */
    readonly headers: Headers | undefined,
    /** Its payload (a copy, safe to keep). */
    readonly data: Uint8Array,
    private readonly publisher: (subject: string, data: Payload, opts: { headers?: HeadersInit }) => void,
  ) {
    super();
  }

  /** Answers a request: publishes to its reply subject. False when it has none. */
  respond(data: Payload, opts: { headers?: HeadersInit } = {}): boolean {
    if (this.reply === undefined) return false;
    this.publisher(this.reply, data, opts);
    return true;
  }
}

/** @internal How a consumer settles a delivery (D4.2-D4.5). */
export interface Settler {
  settle(m: ConsumedMessage, kind: 'ACK' | 'NAK' | 'WIP' | 'TERM', delayMs?: number): void;
}

/** One delivery to a consumer (D4.1). Settle it once with ack, nak or term; working() as often as needed. */
export class ConsumedMessage extends Body {
  /** The destination it came from. */
  readonly destination: string;
  /** The message's id (given to send(), or assigned): the key of de-duplication (D3.4). */
  readonly id: string;
  /** 1-10, 10 highest (D3.2). */
  readonly priority: number;
  /** How many times this group has been given it, this time included (D4.6). */
  readonly deliveries: number;
  /** When the owner stored it (ms since the epoch). */
  readonly timestampMs: number;
  /** Its header fields, if it was sent with any. */
  readonly headers: Headers | undefined;
  /** Its payload (safe to keep). */
  readonly data: Uint8Array;
  /** D4.9: names the delivery; valid at whichever node owns the destination (MESH.md M5.5). */
  readonly handle: string;
  /** Set once ack, nak or term was called. */
  settled = false;

  /** @internal */
  constructor(
    d: Delivery,
    private readonly settler: Settler,
  ) {
    super();
    this.destination = d.destination;
    this.id = d.id;
    this.priority = d.priority;
    this.deliveries = d.deliveries;
    this.timestampMs = d.timestampMs;
    this.headers = readHeaders(d.headers);
    this.data = d.payload;
    this.handle = d.handle;
  }

  /** D4.2: done with it. */
  ack(): void {
    this.finish('ACK');
  }

  /** D4.3: give it back, to be delivered again at once or after `delayMs`. */
  nak(opts: { delayMs?: number } = {}): void {
    this.finish('NAK', opts.delayMs);
  }

  /** D4.5: give up on it: it goes to the dead-letter destination. */
  term(): void {
    this.finish('TERM');
  }

  /** D4.4: still working on it; its ack timeout starts again. */
  working(): void {
    if (!this.settled) this.settler.settle(this, 'WIP');
  }

  private finish(kind: 'ACK' | 'NAK' | 'TERM', delayMs?: number): void {
    if (this.settled) return;
    this.settled = true;
    this.settler.settle(this, kind, delayMs);
  }
}
