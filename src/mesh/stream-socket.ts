/**
 * A libp2p v3 Stream as a Node Duplex (protocol/SECURITY.md SEC6), so the
 * client protocol runs over it unchanged: the node's client server takes one
 * as it takes a TCP socket (src/server/client-socket.ts), and the SDK's wire
 * client speaks through one (src/sdk/transport/libp2p.ts).
 *
 * - In: every 'message' is pushed as a Buffer; a full readable buffer, or
 *   pause() (a password check, SEC2.4; a stopping node, OPS1.2), pauses the
 *   stream, so yamux stops granting window and the remote stops sending.
 * - Out: the writes of one tick (cork/uncork) go out in one `send()` (a send
 *   costs a yamux frame and a noise encryption); when `send()` says the
 *   stream is full, the write waits for the stream's own 'drain' event (the
 *   notes: `onDrain()` does not wait), so writableLength shows the backlog.
 * - End: end() closes the write side (the remote reads what was sent, then
 *   its end); destroy() aborts the stream. A remote reset destroys this with
 *   a StreamResetError, a lost connection with its error, a clean close of
 *   both sides without one.
 *
 * Nothing thrown from a stream listener escapes (one would end the process):
 * a failure destroys this socket instead.
 */
import { Duplex } from 'node:stream';
import type { Connection, Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface';
import type { ClientSocket, RemotePeer } from '../server/client-socket.js';

/** The remote reset the stream (SEC6.5): the node closes the connection as `stream_reset`. */
export class StreamResetError extends Error {
  override readonly name = 'StreamResetError';
}

/** The multicodec of a multiaddr's `/p2p/<peer id>` part. */
const P2P_CODE = 421;

/** The libp2p connection a stream came on, as far as a socket needs it. */
export type StreamConnection = Pick<Connection, 'remotePeer' | 'remoteAddr'>;

export class StreamSocket extends Duplex implements ClientSocket {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly remotePeer: RemotePeer;
  /** pause() was called and resume() not yet: reads stay stopped whatever the buffer holds. */
  private userPaused = false;
  private streamPaused = false;
  /** The remote closed its write side and everything it sent was pushed. */
  private readEnded = false;

  constructor(
    private readonly stream: Stream,
    connection: StreamConnection,
  ) {
    super({ allowHalfOpen: false });
    const { host, port } = hostAndPort(connection);
    this.remoteAddress = host;
    this.remotePort = port;
    // The address without its `/p2p/<id>` part: the id is kept apart (and put back by remoteLabel).
    const addr = connection.remoteAddr.decapsulateCode(P2P_CODE).toString();
    this.remotePeer = { id: connection.remotePeer.toString(), addr };
    stream.addEventListener('message', (evt) => this.onMessage(evt));
    // 'end', not 'remoteCloseWrite': it comes once the read buffer is empty, so nothing read is lost.
    stream.addEventListener('end', () => this.endRead());
    stream.addEventListener('close', (evt) => this.onStreamClose(evt));
  }

  // ---- Readable --------------------------------------------------------------

  override _read(): void {
    if (!this.userPaused) this.resumeStream();
  }

  /** Stops reading at once, not only once the readable buffer is full (net.Socket's pause lets a buffer's worth in). */
  override pause(): this {
    this.userPaused = true;
    this.pauseStream();
    return super.pause();
  }

  override resume(): this {
    this.userPaused = false;
    super.resume();
    if (this.readableLength < this.readableHighWaterMark) this.resumeStream();
    return this;
  }

  private onMessage(evt: StreamMessageEvent): void {
    try {
      if (this.destroyed || this.readEnded) return;
      const d = evt.data;
      const bytes = d instanceof Uint8Array ? d : d.subarray();
      if (!this.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))) this.pauseStream();
    } catch (err) {
      this.destroy(err as Error);
    }
  }

  private endRead(): void {
    if (this.readEnded || this.destroyed) return;
    this.readEnded = true;
    this.push(null);
  }

  private pauseStream(): void {
    if (this.streamPaused) return;
    try {
      this.stream.pause();
      this.streamPaused = true;
    } catch {
      // closing or closed: nothing more comes anyway
    }
  }

  private resumeStream(): void {
    if (!this.streamPaused) return;
    try {
      this.stream.resume();
      this.streamPaused = false;
    } catch {
      // closing or closed
    }
  }

  // ---- Writable --------------------------------------------------------------

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.send(chunk, cb);
  }

  /** What was written while corked goes out in one send. */
  override _writev(
    chunks: { chunk: Buffer; encoding: BufferEncoding }[],
    cb: (err?: Error | null) => void,
  ): void {
    this.send(chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk)), cb);
  }

  private send(bytes: Buffer, cb: (err?: Error | null) => void): void {
    let ok: boolean;
    try {
      ok = this.stream.send(bytes);
    } catch (err) {
      return cb(err as Error);
    }
    if (ok) return cb();
    // The bytes are kept by the stream; the next write waits for its 'drain' (or its end).
    const done = (): void => {
      this.stream.removeEventListener('drain', done);
      this.stream.removeEventListener('close', done);
      cb();
    };
    this.stream.addEventListener('drain', done);
    this.stream.addEventListener('close', done);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.stream.close().then(
      () => cb(),
      (err: unknown) => cb(err as Error),
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const s = this.stream;
    if (s.status === 'open' || s.status === 'closing') {
      // Dispatches the stream's 'close' at once; onStreamClose sees this socket destroyed and does nothing.
      s.abort(err ?? new Error('socket destroyed'));
    }
    cb(err);
  }

  private onStreamClose(evt: StreamCloseEvent): void {
    try {
      if (this.destroyed) return;
      if (evt.error !== undefined) {
        // A reset from the remote (local false), or this side's connection failing under the stream.
        const reset = !evt.local || evt.error.name === 'StreamResetError';
        this.destroy(reset ? new StreamResetError(`stream reset: ${evt.error.message}`) : evt.error);
        return;
      }
      // Both sides closed cleanly: what was read is still handed over before 'close'.
      this.endRead();
      if (this.readableLength === 0) this.destroy();
      else this.once('end', () => this.destroy());
    } catch (err) {
      this.destroy(err as Error);
    }
  }
}

/** The IP address and TCP port of a connection's multiaddr; the peer id when it has no IP (a relayed one). */
function hostAndPort(c: StreamConnection): { host: string; port: number | undefined } {
  let host: string | undefined;
  let port: number | undefined;
  for (const part of c.remoteAddr.getComponents()) {
    if (host === undefined && (part.name === 'ip4' || part.name === 'ip6' || part.name.startsWith('dns')))
      host = part.value;
    else if (port === undefined && (part.name === 'tcp' || part.name === 'udp')) port = Number(part.value);
  }
  return { host: host ?? c.remotePeer.toString(), port };
}
