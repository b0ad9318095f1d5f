/**
 * The parser tests' recording sink: every op as given, and as a comparable
 * event (buffers as hex, errors as code and fatal) taken at call time, so
 * events compare with deepEqual.
 */
import type { ProtocolErrorCode } from '../../src/errors.js';
import type { ClientOp, ParserSink } from '../../src/protocol/ops.js';

/** An op with its buffers turned into hex and its error into code/fatal, so events compare with deepEqual. */
export type Event =
  | { kind: 'PUB'; subject: string; reply: string | undefined; payload: string }
  | { kind: 'HPUB'; subject: string; reply: string | undefined; headers: string; payload: string }
  | { kind: 'error'; code: ProtocolErrorCode; fatal: boolean }
  | { kind: 'CONNECT'; json: string }
  | { kind: 'SUB'; subject: string; queue: string | undefined; sid: string }
  | { kind: 'UNSUB'; sid: string; max: number | undefined }
  | { kind: 'ERR'; message: string }
  | { kind: 'SEND'; destination: string; options: string[]; payload: string }
  | { kind: 'HSEND'; destination: string; options: string[]; headers: string; payload: string }
  | { kind: 'DURABLE'; verb: string; args: string[] }
  | { kind: 'PING' | 'PONG' | 'OK' | 'INFO' | 'HELP' };

export function normalize(op: ClientOp): Event {
  switch (op.kind) {
    case 'PUB':
      return { kind: 'PUB', subject: op.subject, reply: op.reply, payload: op.payload.toString('hex') };
    case 'HPUB':
      return {
        kind: 'HPUB',
        subject: op.subject,
        reply: op.reply,
        headers: op.headers.toString('hex'),
        payload: op.payload.toString('hex'),
      };
    case 'error':
      return { kind: 'error', code: op.error.code, fatal: op.error.fatal };
    case 'CONNECT':
      return { kind: 'CONNECT', json: op.json };
    case 'SUB':
      return { kind: 'SUB', subject: op.subject, queue: op.queue, sid: op.sid };
    case 'UNSUB':
      return { kind: 'UNSUB', sid: op.sid, max: op.max };
    case 'ERR':
      return { kind: 'ERR', message: op.message };
    case 'SEND':
      return {
        kind: 'SEND',
        destination: op.destination,
        options: [...op.options],
        payload: op.payload.toString('hex'),
      };
    case 'HSEND':
      return {
        kind: 'HSEND',
        destination: op.destination,
        options: [...op.options],
        headers: op.headers.toString('hex'),
        payload: op.payload.toString('hex'),
      };
    case 'DURABLE':
      return { kind: 'DURABLE', verb: op.verb, args: [...op.args] };
    default:
      return { kind: op.kind };
  }
}

/** The sink: keeps every op as given and as a comparable event (taken at call time). */
export class Recorder implements ParserSink {
  readonly ops: ClientOp[] = [];
  readonly events: Event[] = [];
  onOp(op: ClientOp): void {
    this.ops.push(op);
    this.events.push(normalize(op));
  }
}
