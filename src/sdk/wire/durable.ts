/**
 * The durable verbs of the CLI client (protocol/DURABLE.md): SEND answered
 * by +STORED in send order (D3.5), PULL answered by its DMSGs and +PULLED
 * (one at a time per connection), and the settles ACK/NAK/WIP/TERM. The
 * Client (client.ts) owns the connection and hands these frames here.
 */
import { ClientError, ClientErrorCode } from './errors.js';
import { Fifo } from './fifo.js';
import type { ServerOp } from './reader.js';
import { checkDestination, checkId, checkToken } from './text.js';
import type { ClientWire, Delivery, PullOptions, SendOptions, Stored, Waiter } from './types.js';

type DurableWire = Pick<ClientWire, 'wait' | 'write' | 'writeFrame' | 'checkSize'>;

export class DurableVerbs {
  private readonly sends = new Fifo<Waiter<Stored>>();
  private pullWaiter: (Waiter<Delivery[]> & { msgs: Delivery[] }) | undefined;

  constructor(private readonly wire: DurableWire) {}

  /** D3.1: SEND, or HSEND with headers (D3.9); resolves with +STORED (synced), rejects with the -ERR. */
  send(destination: string, payload: Buffer, opts: SendOptions = {}, signal?: AbortSignal): Promise<Stored> {
    checkDestination(destination);
    const h = opts.headers?.length ?? 0;
    this.wire.checkSize(h + payload.length);
    let line = `${h === 0 ? 'SEND' : 'HSEND'} ${destination}`;
    if (opts.id !== undefined) {
      checkId(opts.id);
      line += ` id=${opts.id}`;
    }
    if (opts.priority !== undefined) line += ` priority=${opts.priority}`;
    if (opts.ttlMs !== undefined) line += ` ttl=${opts.ttlMs}`;
    if (opts.delayMs !== undefined) line += ` delay=${opts.delayMs}`;
    line += h === 0 ? ` ${payload.length}\r\n` : ` ${h} ${h + payload.length}\r\n`;
    return this.wire.wait<Stored>(signal, `+STORED for ${destination}`, (w) => {
      this.sends.push(w);
      this.wire.writeFrame(line, h === 0 ? undefined : opts.headers, payload);
    });
  }

  /** D4.1: PULL; resolves with the deliveries at +PULLED. One pull at a time per connection. */
  pull(destination: string, group: string, opts: PullOptions, signal?: AbortSignal): Promise<Delivery[]> {
    checkDestination(destination);
    checkToken('group', group);
    if (this.pullWaiter !== undefined) {
      throw new ClientError(ClientErrorCode.Invalid, 'one PULL at a time on a connection');
    }
    // D4.1: `ack_timeout=` needs the optional wait before it; 0 is "do not wait".
    const wait = opts.waitMs === undefined && opts.ackTimeoutMs === undefined ? '' : ` ${opts.waitMs ?? 0}`;
    const ack = opts.ackTimeoutMs === undefined ? '' : ` ack_timeout=${opts.ackTimeoutMs}`;
    return this.wire.wait<Delivery[]>(signal, `the PULL of ${destination}`, (w) => {
      this.pullWaiter = Object.assign(w, { msgs: [] as Delivery[] });
      this.wire.write(Buffer.from(`PULL ${destination} ${group} ${opts.batch}${wait}${ack}\r\n`));
    });
  }

  /** D4.2-D4.5: settles a delivery. Refusals (a stale handle) reject the next flush(). */
  settle(kind: 'ACK' | 'NAK' | 'WIP' | 'TERM', handle: string, delayMs?: number): void {
    checkToken('handle', handle);
    const delay = kind === 'NAK' && delayMs !== undefined ? ` ${delayMs}` : '';
    this.wire.write(Buffer.from(`${kind} ${handle}${delay}\r\n`));
  }

  /** D4.1: a DMSG joins the pull in flight; the reader's buffers are views, so they are copied. */
  onDelivery(op: Extract<ServerOp, { kind: 'DMSG' }>): void {
    const p = this.pullWaiter;
    if (p === undefined) return;
    const { kind: _, ...delivery } = op;
    p.msgs.push({
      ...delivery,
      headers: op.headers === undefined ? undefined : Buffer.from(op.headers),
      payload: Buffer.from(op.payload),
    });
  }

  /** D4.1: +PULLED ends the pull in flight. */
  onPulled(): void {
    const p = this.pullWaiter;
    this.pullWaiter = undefined;
    p?.resolve(p.msgs);
  }

  /** D3.5: +STORED answers the oldest send. */
  onStored(op: Extract<ServerOp, { kind: 'STORED' }>): void {
    this.sends.shift()?.resolve({
      destination: op.destination,
      seq: op.seq,
      id: op.id,
      duplicate: op.duplicate,
    });
  }

  /** A -ERR that is not a publish/subscribe/settle refusal: the oldest send's, else the pull's. False if neither waits. */
  claimErr(err: ClientError): boolean {
    const send = this.sends.shift();
    if (send !== undefined) {
      send.reject(err);
      return true;
    }
    if (this.pullWaiter !== undefined) {
      const p = this.pullWaiter;
      this.pullWaiter = undefined;
      p.reject(err);
      return true;
    }
    return false;
  }

  /** The connection is gone: the pull in flight fails with why. */
  failPull(err: ClientError): void {
    this.pullWaiter?.reject(err);
  }

  /** The connection is gone: every send waiting for +STORED fails with why. */
  failSends(err: ClientError): void {
    for (let w = this.sends.shift(); w !== undefined; w = this.sends.shift()) w.reject(err);
  }
}
