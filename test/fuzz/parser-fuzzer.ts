/**
 * The client protocol parser (protocol/CLIENT.md section 1, DURABLE.md D3.1,
 * D4.1) fed mutated streams of valid frames of every verb, with small random
 * limits, in random chunks. It must never throw; it holds at most a control
 * line (C1.5) or one declared payload (C1.6); a fatal error is its last
 * event and it stays closed (C6.3-C6.6), a non-fatal one skips a line and
 * it goes on (C6.1, C6.2); and chunking never changes the events (C1.4).
 */
import { ProtocolError, ProtocolErrorCode } from '../../src/errors.js';
import { Parser, ParserState, type ParserLimits } from '../../src/protocol/parser.js';
import { Recorder, type Event } from '../helpers/parser-recorder.js';
import * as C from './contracts.js';
import { mutateBytes, randomSplits, type Rand } from './mutate.js';
import { fuzz, type FuzzSummary } from './runner.js';

const CODES: ReadonlySet<string> = new Set(Object.values(ProtocolErrorCode));

function token(rand: Rand): string {
  const chars = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_';
  return Array.from({ length: 1 + rand.int(8) }, () => rand.pick([...chars])).join('');
}

function subject(rand: Rand): string {
  return Array.from({ length: 1 + rand.int(3) }, () =>
    rand.chance(0.1) ? rand.pick(['*', '>']) : token(rand),
  ).join('.');
}

function payload(rand: Rand, max: number): string {
  const n = rand.int(Math.min(max, 64) + 1);
  return Array.from({ length: n }, () =>
    rand.chance(0.2) ? rand.pick(['\r', '\n', ' ']) : String.fromCharCode(rand.int(256)),
  ).join('');
}

/** One valid frame of any verb (core and durable), with its spacing and case varied. */
function frame(rand: Rand, limits: ParserLimits): string {
  const eol = rand.chance(0.8) ? '\r\n' : '\n';
  const sp = rand.chance(0.8) ? ' ' : rand.pick(['  ', '\t', ' \t ']);
  const verb = (v: string): string => [...v].map((c) => (rand.chance(0.3) ? c.toLowerCase() : c)).join('');
  const handle = (): string => `${rand.int(100)}/${1 + rand.int(5)}/${token(rand)}/${token(rand)}`;
  switch (rand.int(16)) {
    case 0:
    case 1: {
      const p = payload(rand, limits.maxPayloadBytes);
      const reply = rand.chance(0.4) ? `${sp}${subject(rand)}` : '';
      return `${verb('PUB')}${sp}${subject(rand)}${reply}${sp}${p.length}${eol}${p}${eol}`;
    }
    case 2: {
      const h = `NATS/1.0\r\nK: ${token(rand)}\r\n\r\n`;
      const p = payload(rand, Math.max(0, limits.maxPayloadBytes - h.length));
      return `${verb('HPUB')}${sp}${subject(rand)}${sp}${h.length}${sp}${h.length + p.length}${eol}${h}${p}${eol}`;
    }
    case 3:
      return `${verb('SUB')}${sp}${subject(rand)}${rand.chance(0.3) ? `${sp}${token(rand)}` : ''}${sp}${rand.int(1000)}${eol}`;
    case 4:
      return `${verb('UNSUB')}${sp}${rand.int(1000)}${rand.chance(0.5) ? `${sp}${rand.int(10)}` : ''}${eol}`;
    case 5:
      return `${verb('CONNECT')}${sp}{"verbose":${rand.chance(0.5)},"name":"${token(rand)}","headers":true}${eol}`;
    case 6:
      return `${verb(rand.pick(['PING', 'PONG', 'HELP', 'INFO', '+OK', 'DESTS']))}${eol}`;
    case 7:
      return `-ERR 'x ${token(rand)}'${eol}`;
    case 8: {
      const p = payload(rand, limits.maxPayloadBytes);
      const opts = rand.pick([
        '',
        ` id=${token(rand)}`,
        ` priority=${1 + rand.int(10)} ttl=5s`,
        ' delay=250ms',
      ]);
      return `${verb('SEND')}${sp}${token(rand)}${opts}${sp}${p.length}${eol}${p}${eol}`;
    }
    case 9:
      return `${verb('PULL')}${sp}${token(rand)}${sp}${token(rand)}${rand.chance(0.5) ? ` ${1 + rand.int(100)} ${rand.int(5)}s` : ''}${eol}`;
    case 10:
      return `${verb(rand.pick(['ACK', 'WIP', 'TERM']))}${sp}${handle()}${eol}`;
    case 11:
      return `${verb('NAK')}${sp}${handle()}${rand.chance(0.5) ? ' 5s' : ''}${eol}`;
    case 12:
      return `${verb('CREATE')}${sp}${token(rand)} ttl=1h max_msgs=${rand.int(100)} ack_timeout=2s${eol}`;
    case 13:
      return `${verb(rand.pick(['DROP', 'OWNER']))}${sp}${token(rand)}${rand.chance(0.5) ? ` ${token(rand)}` : ''}${eol}`;
    case 14:
      return rand.chance(0.5) ? eol : `${sp}${eol}`;
    default:
      return `${verb(rand.pick(['PUB', 'HPUB', 'SEND']))}${sp}${subject(rand)}${sp}${rand.pick(['x', '-1', '99999999999', String(limits.maxPayloadBytes + 1)])}${eol}`;
  }
}

/** Feeds `chunks`, checking what the parser holds after each, and returns its events. */
function parse(chunks: Buffer[], limits: ParserLimits): { parser: Parser; rec: Recorder } {
  const rec = new Recorder();
  const parser = new Parser(rec, limits);
  for (const chunk of chunks) {
    parser.feed(chunk);
    const held = parser.bufferedBytes;
    C.check(held <= limits.maxControlLineBytes + limits.maxPayloadBytes + 2, `parser holds ${held} bytes`);
    if (parser.state === ParserState.OpLine)
      C.check(held <= limits.maxControlLineBytes + 1, `a partial line of ${held} bytes`);
    else if (parser.state === ParserState.Closed) C.check(held === 0, 'a closed parser holds bytes');
    else C.check(held <= limits.maxPayloadBytes, `a payload buffer of ${held} bytes`);
  }
  return { parser, rec };
}

function checkEvents(rec: Recorder, parser: Parser, limits: ParserLimits): void {
  rec.ops.forEach((op, i) => {
    switch (op.kind) {
      case 'error':
        C.check(
          op.error instanceof ProtocolError && CODES.has(op.error.code),
          'an error event that is not a ProtocolError',
        );
        if (op.error.fatal) {
          C.check(i === rec.ops.length - 1, `events after a fatal ${op.error.code}`);
          C.check(parser.state === ParserState.Closed, `not closed after a fatal ${op.error.code}`);
        }
        return;
      case 'PUB':
      case 'HPUB':
      case 'SEND': {
        const n = op.payload.length + (op.kind === 'HPUB' ? op.headers.length : 0);
        C.check(n <= limits.maxPayloadBytes, `a ${op.kind} payload of ${n} bytes`);
        const name = op.kind === 'SEND' ? op.destination : op.subject;
        C.check(name.length > 0 && !/[ \t\n]/.test(name), `${op.kind} subject ${JSON.stringify(name)}`);
        return;
      }
      case 'SUB':
        C.check(!/[ \t\n]/.test(op.subject + op.sid + (op.queue ?? '')), 'SUB arguments with separators');
    }
  });
}

const comparable = (events: Event[]): string => JSON.stringify(events);

export async function parser(seed: number, count: number, first = 0): Promise<FuzzSummary> {
  return fuzz('parser', seed, count, first, ({ rand, input }) => {
    const limits: ParserLimits = {
      maxControlLineBytes: rand.pick([64, 128, 256, 4096]),
      maxPayloadBytes: rand.pick([16, 64, 512, 4096]),
    };
    const valid = Buffer.from(
      Array.from({ length: 1 + rand.int(12) }, () => frame(rand, limits)).join(''),
      'latin1',
    );
    const bytes = rand.chance(0.9) ? mutateBytes(valid, rand) : valid;
    input({ limits, bytes: bytes.toString('latin1') });
    const whole = parse([bytes], limits);
    checkEvents(whole.rec, whole.parser, limits);
    const split = parse(randomSplits(bytes, rand), limits);
    C.check(
      comparable(split.rec.events) === comparable(whole.rec.events),
      'chunking changed the events (C1.4)',
    );
    // It resumes or stays closed as its last error says.
    const { parser: p, rec } = whole;
    const closed = p.state === ParserState.Closed;
    const seen = rec.ops.length;
    p.feed(Buffer.from('\r\n'));
    if (closed) C.check(rec.ops.length === seen && p.state === ParserState.Closed, 'a closed parser went on');
    else if (p.state === ParserState.OpLine) {
      p.feed(Buffer.from('PING\r\n'));
      C.check(rec.ops.at(-1)?.kind === 'PING', 'the parser did not resume after its errors');
    }
    return rec.ops.some((op) => op.kind === 'error') ? 'refused' : 'accepted';
  });
}
