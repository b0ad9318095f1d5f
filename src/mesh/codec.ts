/**
 * The one frame format of every SwarmMQ mesh protocol (protocol/MESH.md
 * section 4): a length, a kind, a request id, a JSON head and raw bytes.
 *
 *   u32 length (of what follows) | u8 kind | u32 id | u32 headLength | head (JSON, UTF-8) | data
 *
 * The decoder is pure and incremental (chunks split anywhere), and refuses a
 * frame longer than its limit before buffering it (M4.1). It keeps the
 * chunks of an incomplete frame as a list and joins them once, when the
 * frame is whole: a big frame sent in tiny chunks costs its length in
 * copying, not its length times the chunk count.
 */
import { Uint8ArrayList } from 'uint8arraylist';

export const FrameKind = {
  /** A request: the peer answers with Reply or Failure carrying the same id. */
  Request: 1,
  Reply: 2,
  Failure: 3,
  /** One-way: no answer. */
  Event: 4,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

export interface Frame {
  kind: FrameKind;
  id: number;
  head: Record<string, unknown>;
  data: Buffer;
}

const FIXED_BYTES = 4 + 1 + 4 + 4;

export class FrameError extends Error {
  override name = 'FrameError';
}

export function encodeFrame(kind: FrameKind, id: number, head: unknown, data?: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify(head));
  const dataLen = data === undefined ? 0 : data.length;
  const out = Buffer.allocUnsafe(FIXED_BYTES + json.length + dataLen);
  out.writeUInt32BE(out.length - 4, 0);
  out[4] = kind;
  out.writeUInt32BE(id >>> 0, 5);
  out.writeUInt32BE(json.length, 9);
  json.copy(out, FIXED_BYTES);
  if (data !== undefined) data.copy(out, FIXED_BYTES + json.length);
  return out;
}

/**
 * Incremental decoder: push chunks, get whole frames. Throws FrameError on a
 * bad or oversized frame, and then holds nothing (the stream is aborted).
 */
export class FrameDecoder {
  private buf = new Uint8ArrayList();

  constructor(private readonly maxFrameBytes: number) {}

  /** Bytes held between pushes (the start of a frame): fewer than 4 + the frame limit. */
  get bufferedBytes(): number {
    return this.buf.byteLength;
  }

  push(chunk: Uint8Array | Uint8ArrayList, onFrame: (f: Frame) => void): void {
    this.buf.append(chunk);
    while (this.buf.byteLength >= 4) {
      const len = this.buf.getUint32(0);
      if (len < FIXED_BYTES - 4 || len > this.maxFrameBytes) {
        throw this.fail(`frame length ${len} outside 9-${this.maxFrameBytes}`);
      }
      if (this.buf.byteLength < 4 + len) break;
      const bytes = this.buf.subarray(0, 4 + len);
      const frame = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      this.buf.consume(4 + len);
      const kind = frame[4]!;
      if (kind < FrameKind.Request || kind > FrameKind.Event) throw this.fail(`unknown frame kind ${kind}`);
      const id = frame.readUInt32BE(5);
      const headLen = frame.readUInt32BE(9);
      if (headLen > len - (FIXED_BYTES - 4)) throw this.fail(`head length ${headLen} beyond the frame`);
      let head: unknown;
      try {
        head = JSON.parse(frame.toString('utf8', FIXED_BYTES, FIXED_BYTES + headLen));
      } catch {
        throw this.fail('frame head is not JSON');
      }
      if (head === null || typeof head !== 'object' || Array.isArray(head)) {
        throw this.fail('frame head is not an object');
      }
      // A copy: the frame outlives this chunk (stored, queued), the chunk may not.
      const data = Buffer.from(frame.subarray(FIXED_BYTES + headLen));
      onFrame({ kind: kind as FrameKind, id, head: head as Record<string, unknown>, data });
    }
  }

  private fail(message: string): FrameError {
    this.buf = new Uint8ArrayList();
    return new FrameError(message);
  }
}
