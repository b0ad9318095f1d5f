/**
 * The one frame format of every SwarmMQ mesh protocol (protocol/MESH.md
 * section 4): a length, a kind, a request id, a JSON head and raw bytes.
 *
 *   u32 length (of what follows) | u8 kind | u32 id | u32 headLength | head (JSON, UTF-8) | data
 *
 * The decoder is pure and incremental (chunks split anywhere), and refuses a
 * frame longer than its limit before buffering it (M4.1).
 */
import type { Uint8ArrayList } from 'uint8arraylist';

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

/** Incremental decoder: push chunks, get whole frames. Throws FrameError on a bad or oversized frame. */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly maxFrameBytes: number) {}

  push(chunk: Uint8Array | Uint8ArrayList, onFrame: (f: Frame) => void): void {
    const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray();
    this.buf =
      this.buf.length === 0
        ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
        : Buffer.concat([this.buf, bytes]);
    let at = 0;
    while (this.buf.length - at >= 4) {
      const len = this.buf.readUInt32BE(at);
      if (len < FIXED_BYTES - 4 || len > this.maxFrameBytes) {
        throw new FrameError(`frame length ${len} outside 9-${this.maxFrameBytes}`);
      }
      if (this.buf.length - at < 4 + len) break;
      const kind = this.buf[at + 4]!;
      if (kind < FrameKind.Request || kind > FrameKind.Event)
        throw new FrameError(`unknown frame kind ${kind}`);
      const id = this.buf.readUInt32BE(at + 5);
      const headLen = this.buf.readUInt32BE(at + 9);
      if (headLen > len - (FIXED_BYTES - 4)) throw new FrameError(`head length ${headLen} beyond the frame`);
      const headStart = at + FIXED_BYTES;
      let head: unknown;
      try {
        head = JSON.parse(this.buf.toString('utf8', headStart, headStart + headLen));
      } catch {
        throw new FrameError('frame head is not JSON');
      }
      if (head === null || typeof head !== 'object' || Array.isArray(head)) {
        throw new FrameError('frame head is not an object');
      }
      // A copy: the frame outlives this chunk (stored, queued), the buffer does not.
      const data = Buffer.from(this.buf.subarray(headStart + headLen, at + 4 + len));
      at += 4 + len;
      onFrame({ kind: kind as FrameKind, id, head: head as Record<string, unknown>, data });
    }
    this.buf =
      at === 0 ? this.buf : at === this.buf.length ? Buffer.alloc(0) : Buffer.from(this.buf.subarray(at));
  }
}
