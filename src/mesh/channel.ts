/**
 * A framed, batched request/response channel over one libp2p stream
 * (protocol/MESH.md section 4). Everything written in one event-loop turn
 * goes out in one `stream.send()` (M4.2: a send costs a yamux frame, a noise
 * encryption and a socket write); a full stream waits for its 'drain' event
 * (the notes record that `onDrain()` does not wait); queued bytes are
 * bounded (M4.3).
 */
import type { Stream } from '@libp2p/interface';
import type { Logger } from '../log.js';
import { encodeFrame, FrameDecoder, FrameKind, type Frame } from './codec.js';

export interface Answer {
  head?: Record<string, unknown>;
  data?: Buffer;
}

export interface ChannelHandlers {
  /** Answers a request; a thrown error goes back as a Failure with its name and message. */
  request?(method: string, head: Record<string, unknown>, data: Buffer): Promise<Answer> | Answer;
  event?(method: string, head: Record<string, unknown>, data: Buffer): void;
}

export interface ChannelLimits {
  maxFrameBytes: number;
  maxPendingBytes: number;
  requestTimeoutMs: number;
}

/** A request failed on the remote side (its error name and message), or the link failed. */
export class PeerError extends Error {
  override name = 'PeerError';
  constructor(
    message: string,
    /** The remote error's name (e.g. DurableError), or 'LinkClosed', 'Timeout', 'LinkFull'. */
    readonly code: string,
    /** Remote error details (DurableError code, ...). */
    readonly detail?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/**
 * Requests from the peer being handled at once (a waiting PULL holds one for
 * its wait): as many as a node's clients can have waiting by default (1024
 * connections x 64 pulls), so a peer cannot make this node hold more.
 */
const MAX_INBOUND_REQUESTS = 65_536;
/** A remote error's name and message are shown to clients (-ERR) and logged: one line, bounded. */
const MAX_REMOTE_NAME_CHARS = 64;
const MAX_REMOTE_MESSAGE_CHARS = 1024;

/**
 * A peer's head (or a field of one) that does not have its message's shape
 * (M4.6, schema.ts): a request is answered with it, an event or an answer
 * is dropped.
 */
export class MalformedMessage extends PeerError {
  override name = 'MalformedMessage';
  constructor(what: string) {
    super(`malformed ${what}`, 'MalformedMessage');
  }
}

interface Pending {
  resolve: (f: Frame) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class Channel {
  private readonly decoder: FrameDecoder;
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private flushScheduled = false;
  private blocked = false;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly closeListeners: ((err?: Error) => void)[] = [];
  private inboundRequests = 0;
  closed = false;

  constructor(
    readonly stream: Stream,
    private readonly handlers: ChannelHandlers,
    private readonly limits: ChannelLimits,
    private readonly log: Logger,
  ) {
    this.decoder = new FrameDecoder(limits.maxFrameBytes);
    stream.addEventListener('message', (evt) => {
      // A throw inside a 'message' listener would crash the process (notes): catch here.
      try {
        this.decoder.push(evt.data, (f) => this.onFrame(f));
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'bad frame from peer; closing the stream');
        stream.abort(err as Error);
      }
    });
    stream.addEventListener('drain', () => {
      this.blocked = false;
      this.scheduleFlush();
    });
    stream.addEventListener('close', (evt) => this.onClose((evt as { error?: Error }).error));
  }

  get pendingBytes(): number {
    return this.queuedBytes;
  }

  /** Sends a request and resolves with the answer (M4.4). */
  request(
    method: string,
    head: Record<string, unknown>,
    data?: Buffer,
    opts: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<Answer> {
    if (this.closed) return Promise.reject(new PeerError('peer link closed', 'LinkClosed'));
    if (this.queuedBytes > this.limits.maxPendingBytes) {
      return Promise.reject(new PeerError('peer link is full', 'LinkFull'));
    }
    const id = this.nextId++ >>> 0 || this.nextId++;
    return new Promise<Answer>((resolve, reject) => {
      const timeoutMs = opts.timeoutMs ?? this.limits.requestTimeoutMs;
      const done = (): void => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        this.pending.delete(id);
      };
      const onAbort = (): void => {
        done();
        reject(new PeerError('request aborted', 'Aborted'));
      };
      const timer = setTimeout(() => {
        done();
        reject(new PeerError(`${method} timed out after ${timeoutMs} ms`, 'Timeout'));
      }, timeoutMs);
      opts.signal?.addEventListener('abort', onAbort);
      this.pending.set(id, {
        timer,
        resolve: (f) => {
          done();
          if (f.kind === FrameKind.Reply) resolve({ head: f.head, data: f.data });
          else {
            // Any shape may come (M4.6): String() of {"toString":1} would throw here and leave the caller waiting.
            const message = remoteText(f.head.message, MAX_REMOTE_MESSAGE_CHARS) ?? 'remote error';
            reject(new PeerError(message, remoteText(f.head.name, MAX_REMOTE_NAME_CHARS) ?? 'Error', f.head));
          }
        },
        reject: (e) => {
          done();
          reject(e);
        },
      });
      this.write(encodeFrame(FrameKind.Request, id, { ...head, m: method }, data));
    });
  }

  /** One-way message; false (and dropped) when the link is closed or over its pending limit. */
  event(method: string, head: Record<string, unknown>, data?: Buffer): boolean {
    if (this.closed || this.queuedBytes > this.limits.maxPendingBytes) return false;
    this.write(encodeFrame(FrameKind.Event, 0, { ...head, m: method }, data));
    return true;
  }

  onClosed(cb: (err?: Error) => void): void {
    if (this.closed) cb();
    else this.closeListeners.push(cb);
  }

  close(): void {
    if (this.closed) return;
    this.stream.abort(new Error('channel closed'));
    this.onClose();
  }

  private write(frame: Buffer): void {
    this.queue.push(frame);
    this.queuedBytes += frame.length;
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.blocked || this.queue.length === 0 || this.closed) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.closed || this.blocked || this.queue.length === 0) return;
    const out = this.queue.length === 1 ? this.queue[0]! : Buffer.concat(this.queue, this.queuedBytes);
    this.queue = [];
    this.queuedBytes = 0;
    try {
      if (!this.stream.send(out)) this.blocked = true;
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'peer stream write failed');
      this.onClose(err as Error);
    }
  }

  private onFrame(f: Frame): void {
    const method = typeof f.head.m === 'string' ? f.head.m : '';
    switch (f.kind) {
      case FrameKind.Reply:
      case FrameKind.Failure:
        this.pending.get(f.id)?.resolve(f);
        return;
      case FrameKind.Event:
        try {
          this.handlers.event?.(method, f.head, f.data);
        } catch (err) {
          // A malformed event is dropped (M4.6); anything else is a fault of this node, logged as one.
          if (err instanceof MalformedMessage)
            this.log.debug({ method, err: err.message }, 'malformed event dropped');
          else this.log.error({ method, err: (err as Error).message }, 'mesh event handler failed');
        }
        return;
      case FrameKind.Request: {
        const handler = this.handlers.request;
        const answer = (kind: FrameKind, head: unknown, data?: Buffer): void => {
          if (this.closed) return;
          // A peer that does not read its answers is not queued for without bound (M4.3): it times out.
          if (this.queuedBytes > this.limits.maxPendingBytes) {
            this.log.debug({ method }, 'answer dropped: peer link is full');
            return;
          }
          this.write(encodeFrame(kind, f.id, head, data));
        };
        if (handler === undefined) {
          answer(FrameKind.Failure, { name: 'Unsupported', message: `no requests on this protocol` });
          return;
        }
        if (this.inboundRequests >= MAX_INBOUND_REQUESTS) {
          answer(FrameKind.Failure, {
            name: 'PeerBusy',
            message: `over ${MAX_INBOUND_REQUESTS} requests pending`,
          });
          return;
        }
        // Called synchronously, so requests and events apply in the order they came (M4.4).
        let result: Promise<Answer> | Answer;
        try {
          result = handler(method, f.head, f.data);
        } catch (err) {
          result = Promise.reject(err as Error);
        }
        this.inboundRequests++;
        Promise.resolve(result)
          .then(
            (a) => answer(FrameKind.Reply, a.head ?? {}, a.data),
            (err: unknown) => {
              const e = err as Error & { code?: unknown };
              answer(FrameKind.Failure, { name: e.name ?? 'Error', message: e.message, code: e.code });
            },
          )
          .catch((err: unknown) => this.log.error({ method, err: String(err) }, 'mesh answer not sent'))
          .finally(() => this.inboundRequests--);
      }
    }
  }

  private onClose(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.queuedBytes = 0;
    for (const p of [...this.pending.values()]) p.reject(new PeerError('peer link closed', 'LinkClosed'));
    this.pending.clear();
    for (const cb of this.closeListeners.splice(0)) cb(err);
  }
}

/** A peer's text field as one bounded line, or undefined when it is not a string. */
function remoteText(v: unknown, maxChars: number): string | undefined {
  if (typeof v !== 'string') return undefined;
  // eslint-disable-next-line no-control-regex
  return v.slice(0, maxChars).replace(/[\u0000-\u001f\u007f]/g, ' ');
}
