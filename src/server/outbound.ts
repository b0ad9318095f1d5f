/**
 * A connection's outbound queue. Everything written in one event-loop turn
 * is gathered here and handed to the socket in one go (STYLE 8): small
 * items are copied into a shared slab, large payloads are queued by
 * reference. Bytes already handed to the socket are never overwritten: the
 * slab only moves forward, and a full slab is replaced, not reused.
 */
import { OUTBOUND_COPY_LIMIT_BYTES } from '../config/defaults.js';

const SLAB_BYTES = 64 * 1024;

export class Outbound {
  private slab: Buffer = Buffer.allocUnsafe(SLAB_BYTES);
  /** Start of the bytes in `slab` not yet taken. */
  private start = 0;
  private pos = 0;
  /** Complete pieces not yet taken, in order; the slab's open part follows them. */
  private pieces: Buffer[] = [];
  private piecesBytes = 0;

  /** Bytes queued and not yet taken. */
  get size(): number {
    return this.piecesBytes + (this.pos - this.start);
  }

  /** Appends a control line written as latin1 (protocol bytes round-trip unchanged). */
  appendLatin1(s: string): void {
    // latin1 is one byte per char, so the length is exact.
    this.reserve(s.length);
    this.pos += this.slab.write(s, this.pos, 'latin1');
  }

  /** Appends text that may hold any Unicode (INFO JSON, -ERR texts). */
  appendUtf8(s: string): void {
    const n = Buffer.byteLength(s);
    this.reserve(n);
    this.pos += this.slab.write(s, this.pos, 'utf8');
  }

  /** Appends bytes: copied if small, queued by reference if large. */
  appendBytes(b: Buffer): void {
    const n = b.length;
    if (n >= OUTBOUND_COPY_LIMIT_BYTES) {
      this.closeSlabPiece();
      this.pieces.push(b);
      this.piecesBytes += n;
      return;
    }
    this.reserve(n);
    b.copy(this.slab, this.pos);
    this.pos += n;
  }

  /** Appends a small buffer (a cached line prefix): always copied. */
  appendSmall(b: Buffer): void {
    this.reserve(b.length);
    this.slab.set(b, this.pos);
    this.pos += b.length;
  }

  /** Appends a non-negative integer in decimal, without making a string. */
  appendUint(n: number): void {
    this.reserve(16);
    const slab = this.slab;
    if (n < 10) {
      slab[this.pos++] = 48 + n;
      return;
    }
    let digits = 0;
    for (let v = n; v > 0; v = Math.floor(v / 10)) digits++;
    let at = this.pos + digits;
    this.pos = at;
    for (let v = n; v > 0; v = Math.floor(v / 10)) slab[--at] = 48 + (v % 10);
  }

  appendCRLF(): void {
    this.reserve(2);
    this.slab[this.pos++] = 13;
    this.slab[this.pos++] = 10;
  }

  /** Hands over everything queued, in order, and empties the queue. */
  take(): Buffer[] {
    this.closeSlabPiece();
    const out = this.pieces;
    this.pieces = [];
    this.piecesBytes = 0;
    return out;
  }

  /** Drops everything queued (the connection is going away). */
  clear(): void {
    this.pieces = [];
    this.piecesBytes = 0;
    this.start = this.pos;
  }

  private closeSlabPiece(): void {
    if (this.pos > this.start) {
      const piece = this.slab.subarray(this.start, this.pos);
      this.pieces.push(piece);
      this.piecesBytes += piece.length;
      this.start = this.pos;
    }
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.slab.length) return;
    this.closeSlabPiece();
    this.slab = Buffer.allocUnsafe(Math.max(SLAB_BYTES, n));
    this.start = 0;
    this.pos = 0;
  }
}
