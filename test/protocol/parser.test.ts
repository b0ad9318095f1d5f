/**
 * Unit tests of the client protocol parser (protocol/CLIENT.md sections 1, 3,
 * 4 and 6): a recording sink, no sockets. Test titles cite the rule checked.
 */
import test from 'ava';
import { ProtocolError, ProtocolErrorCode } from '../../src/errors.js';
import { Recorder, type Event } from '../helpers/parser-recorder.js';
import { Parser, ParserState, parseSize, type ParserLimits } from '../../src/protocol/parser.js';
import { prng } from '../helpers/prng.js';
import { cut } from '../fuzz/mutate.js';

const DEFAULT_LIMITS: ParserLimits = { maxControlLineBytes: 4096, maxPayloadBytes: 1024 * 1024 };
/** Small limits so the limit tests stay small. */
const SMALL_LIMITS: ParserLimits = { maxControlLineBytes: 32, maxPayloadBytes: 64 };

function newParser(limits: ParserLimits = DEFAULT_LIMITS): { parser: Parser; rec: Recorder } {
  const rec = new Recorder();
  return { parser: new Parser(rec, limits), rec };
}

/** Feeds the chunks in order and returns the events. */
function parseChunks(chunks: readonly Buffer[], limits: ParserLimits = DEFAULT_LIMITS): Event[] {
  const { parser, rec } = newParser(limits);
  for (const c of chunks) parser.feed(c);
  return rec.events;
}

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const hex = (s: string): string => Buffer.from(s, 'latin1').toString('hex');
/** A Buffer that has an ArrayBuffer of its own (Buffer.from of a short string may come from the shared pool). */
function unpooled(s: string): Buffer {
  const buf = Buffer.alloc(Buffer.byteLength(s, 'latin1'));
  buf.write(s, 'latin1');
  return buf;
}

const pub = (subject: string, reply: string | undefined, payload: string): Event => ({
  kind: 'PUB',
  subject,
  reply,
  payload: hex(payload),
});
const hpub = (subject: string, reply: string | undefined, headers: string, payload: string): Event => ({
  kind: 'HPUB',
  subject,
  reply,
  headers: hex(headers),
  payload: hex(payload),
});
const sub = (subject: string, queue: string | undefined, sid: string): Event => ({
  kind: 'SUB',
  subject,
  queue,
  sid,
});
const unsub = (sid: string, max: number | undefined): Event => ({ kind: 'UNSUB', sid, max });
const err = (code: ProtocolErrorCode, fatal: boolean): Event => ({ kind: 'error', code, fatal });
const PING: Event = { kind: 'PING' };
const PONG: Event = { kind: 'PONG' };

const E = ProtocolErrorCode;
const { OpLine, Payload, PayloadCR, PayloadLF, Closed } = ParserState;

// ---------------------------------------------------------------------------
// State after every byte

test('C1.3 state after every byte of PUB foo 5 / hello', (t) => {
  const frame = b('PUB foo 5\r\nhello\r\n');
  // After each byte: 'PUB foo 5\r' (10 bytes) leaves a partial control line;
  // its LF starts the payload; 'hello' fills it; CR, then LF emits.
  const expected = [
    ...Array<ParserState>(10).fill(OpLine),
    Payload, // LF of the control line
    Payload, // h
    Payload, // e
    Payload, // l
    Payload, // l
    PayloadCR, // o: payload complete
    PayloadLF, // CR
    OpLine, // LF: op emitted
  ];
  t.is(expected.length, frame.length);
  const { parser, rec } = newParser();
  t.is(parser.state, OpLine);
  for (let i = 0; i < frame.length; i++) {
    parser.feed(frame.subarray(i, i + 1));
    t.is(parser.state, expected[i]!, `state after byte ${i}`);
    t.is(rec.events.length, i === frame.length - 1 ? 1 : 0, `events after byte ${i}`);
  }
  t.deepEqual(rec.events, [pub('foo', undefined, 'hello')]);
  t.is(parser.bufferedBytes, 0);
});

interface StateCase {
  title: string;
  frame: string;
  /** Length of the control line including its line ending; 0 for an op without payload. */
  controlLine: number;
  /** Declared payload size (total for HPUB). */
  size: number;
  /** The line ending after the payload. */
  end: '\r\n' | '\n';
  event: Event;
}

const stateCases: StateCase[] = [
  {
    title: 'PUB with reply',
    frame: 'PUB foo bar 3\r\nabc\r\n',
    controlLine: 15,
    size: 3,
    end: '\r\n',
    event: pub('foo', 'bar', 'abc'),
  },
  {
    title: 'PUB zero-length',
    frame: 'PUB a 0\r\n\r\n',
    controlLine: 9,
    size: 0,
    end: '\r\n',
    event: pub('a', undefined, ''),
  },
  {
    title: 'PUB with LF-only endings (C1.1)',
    frame: 'PUB a 2\nhi\n',
    controlLine: 8,
    size: 2,
    end: '\n',
    event: pub('a', undefined, 'hi'),
  },
  {
    title: 'PUB whose payload is CR LF',
    frame: 'PUB a 2\r\n\r\n\r\n',
    controlLine: 9,
    size: 2,
    end: '\r\n',
    event: pub('a', undefined, '\r\n'),
  },
  {
    title: 'HPUB',
    frame: 'HPUB foo 12 17\r\nNATS/1.0\r\n\r\nhello\r\n',
    controlLine: 16,
    size: 17,
    end: '\r\n',
    event: hpub('foo', undefined, 'NATS/1.0\r\n\r\n', 'hello'),
  },
  {
    title: 'HPUB with reply and LF-only ending',
    frame: 'HPUB foo r 12 14\nNATS/1.0\r\n\r\nhi\n',
    controlLine: 17,
    size: 14,
    end: '\n',
    event: hpub('foo', 'r', 'NATS/1.0\r\n\r\n', 'hi'),
  },
];

/** What `state` must be after each byte of a PUB/HPUB frame. */
function expectedStates(c: StateCase): ParserState[] {
  const out: ParserState[] = Array<ParserState>(c.controlLine - 1).fill(OpLine);
  out.push(c.size > 0 ? Payload : PayloadCR);
  for (let i = 1; i <= c.size; i++) out.push(i < c.size ? Payload : PayloadCR);
  if (c.end === '\r\n') out.push(PayloadLF);
  out.push(OpLine);
  return out;
}

for (const c of stateCases) {
  test(`C1.3 state after every byte: ${c.title}`, (t) => {
    const frame = b(c.frame);
    const expected = expectedStates(c);
    t.is(expected.length, frame.length);
    const { parser, rec } = newParser();
    for (let i = 0; i < frame.length; i++) {
      parser.feed(frame.subarray(i, i + 1));
      t.is(parser.state, expected[i]!, `state after byte ${i}`);
      t.is(rec.events.length, i === frame.length - 1 ? 1 : 0, `events after byte ${i}`);
    }
    t.deepEqual(rec.events, [c.event]);
    t.is(parser.bufferedBytes, 0);
  });
}

test('C1.1 state after every byte of ops without payload: emitted at the LF, never before', (t) => {
  const frames: [string, Event][] = [
    ['SUB foo q 1\r\n', sub('foo', 'q', '1')],
    ['UNSUB 1 5\n', unsub('1', 5)],
    ['PING\r\n', PING],
    ['pong\n', PONG],
  ];
  for (const [text, event] of frames) {
    const frame = b(text);
    const { parser, rec } = newParser();
    for (let i = 0; i < frame.length; i++) {
      parser.feed(frame.subarray(i, i + 1));
      t.is(parser.state, OpLine, `${JSON.stringify(text)} after byte ${i}`);
      t.is(rec.events.length, i === frame.length - 1 ? 1 : 0, `${JSON.stringify(text)} after byte ${i}`);
    }
    t.deepEqual(rec.events, [event]);
    t.is(parser.bufferedBytes, 0);
  }
});

// ---------------------------------------------------------------------------
// Every valid frame, in one chunk and split anywhere

interface FrameCase {
  title: string;
  frame: Buffer;
  events: Event[];
  /** Also split at every pair of indexes. */
  threeWay?: boolean;
}

const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('latin1');

const frameCases: FrameCase[] = [
  {
    title: 'CONNECT',
    frame: b('CONNECT {"verbose":false,"name":"a b"}\r\n'),
    events: [{ kind: 'CONNECT', json: '{"verbose":false,"name":"a b"}' }],
  },
  {
    title: 'PUB without reply',
    frame: b('PUB foo.bar 5\r\nhello\r\n'),
    events: [pub('foo.bar', undefined, 'hello')],
  },
  {
    title: 'PUB with reply',
    frame: b('PUB foo.bar _INBOX.x.1 5\r\nhello\r\n'),
    events: [pub('foo.bar', '_INBOX.x.1', 'hello')],
    threeWay: true,
  },
  { title: 'zero-length PUB', frame: b('PUB a 0\r\n\r\n'), events: [pub('a', undefined, '')] },
  {
    title: 'PUB whose payload holds CRLF and a whole frame',
    frame: b('PUB a 16\r\n\r\nPUB b 1\r\nx\r\n\r\n\r\n'),
    events: [pub('a', undefined, '\r\nPUB b 1\r\nx\r\n\r\n')],
  },
  {
    title: 'PUB whose payload is every byte value',
    frame: b(`PUB all 256\r\n${allBytes}\r\n`),
    events: [pub('all', undefined, allBytes)],
  },
  {
    title: 'HPUB without reply',
    frame: b('HPUB foo 12 17\r\nNATS/1.0\r\n\r\nhello\r\n'),
    events: [hpub('foo', undefined, 'NATS/1.0\r\n\r\n', 'hello')],
  },
  {
    title: 'HPUB with reply',
    frame: b('HPUB foo rep 20 22\r\nNATS/1.0\r\nX-A: 1\r\n\r\nhi\r\n'),
    events: [hpub('foo', 'rep', 'NATS/1.0\r\nX-A: 1\r\n\r\n', 'hi')],
    threeWay: true,
  },
  {
    title: 'HPUB with an empty payload',
    frame: b('HPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n'),
    events: [hpub('foo', undefined, 'NATS/1.0\r\n\r\n', '')],
  },
  { title: 'SUB without queue', frame: b('SUB foo.* 1\r\n'), events: [sub('foo.*', undefined, '1')] },
  { title: 'SUB with queue', frame: b('SUB foo.> workers 22\r\n'), events: [sub('foo.>', 'workers', '22')] },
  { title: 'UNSUB without max', frame: b('UNSUB 1\r\n'), events: [unsub('1', undefined)] },
  { title: 'UNSUB with max', frame: b('UNSUB 1 10\r\n'), events: [unsub('1', 10)] },
  { title: 'PING', frame: b('PING\r\n'), events: [PING] },
  { title: 'PONG', frame: b('PONG\r\n'), events: [PONG] },
  { title: '+OK (C6.7)', frame: b('+OK\r\n'), events: [{ kind: 'OK' }] },
  { title: 'INFO (C6.7)', frame: b('INFO {"server_id":"x"}\r\n'), events: [{ kind: 'INFO' }] },
  {
    title: '-ERR (C6.8)',
    frame: b("-ERR 'Unknown Protocol Operation'\r\n"),
    events: [{ kind: 'ERR', message: "'Unknown Protocol Operation'" }],
  },
  { title: 'HELP (C7.2)', frame: b('HELP\r\n'), events: [{ kind: 'HELP' }] },
  {
    title: 'lowercase and mixed-case verbs (C1.2)',
    frame: b(
      'connect {}\r\npub a 2\r\nhi\r\nhPub a 12 12\r\nNATS/1.0\r\n\r\n\r\nsub a 1\r\nUnSub 1\r\nping\r\nPong\r\nhelp\r\n+ok\r\n-err x\r\n',
    ),
    events: [
      { kind: 'CONNECT', json: '{}' },
      pub('a', undefined, 'hi'),
      hpub('a', undefined, 'NATS/1.0\r\n\r\n', ''),
      sub('a', undefined, '1'),
      unsub('1', undefined),
      PING,
      PONG,
      { kind: 'HELP' },
      { kind: 'OK' },
      { kind: 'ERR', message: 'x' },
    ],
  },
  {
    title: 'LF-only line endings (C1.1)',
    frame: b('PUB a 2\nhi\nHPUB a 12 14\nNATS/1.0\r\n\r\nhi\nSUB a 1\nUNSUB 1 2\nPING\nCONNECT {}\n'),
    events: [
      pub('a', undefined, 'hi'),
      hpub('a', undefined, 'NATS/1.0\r\n\r\n', 'hi'),
      sub('a', undefined, '1'),
      unsub('1', 2),
      PING,
      { kind: 'CONNECT', json: '{}' },
    ],
  },
  {
    title: 'tabs and runs of spaces between arguments (C1.2)',
    frame: b(
      'PUB \t foo\t\trep   3 \r\nabc\r\nSUB\tfoo  q\t 7\r\nHPUB  h\t12\t 12\t\r\nNATS/1.0\r\n\r\n\r\nUNSUB\t\t9   \r\n',
    ),
    events: [
      pub('foo', 'rep', 'abc'),
      sub('foo', 'q', '7'),
      hpub('h', undefined, 'NATS/1.0\r\n\r\n', ''),
      unsub('9', undefined),
    ],
  },
  {
    title: 'empty lines are ignored (C1.7)',
    frame: b('\r\n\n  \t\r\n\t\nPING\r\n\r\n \n'),
    events: [PING],
  },
  {
    title: 'subjects and sids are taken as bytes (C1.2)',
    frame: Buffer.concat([b('SUB '), Buffer.from('café.ü', 'utf8'), b(' q\xff s\x01d\r\n')]),
    events: [sub(Buffer.from('café.ü', 'utf8').toString('latin1'), 'q\xff', 's\x01d')],
  },
  {
    title: 'several frames concatenated (C1.4)',
    frame: b(
      'CONNECT {"verbose":false}\r\nSUB foo 1\r\nPUB foo 5\r\nhello\r\nPING\r\n' +
        'HPUB foo r 12 15\r\nNATS/1.0\r\n\r\nabc\r\nUNSUB 1 3\r\nPUB foo 0\r\n\r\nPONG\r\n',
    ),
    events: [
      { kind: 'CONNECT', json: '{"verbose":false}' },
      sub('foo', undefined, '1'),
      pub('foo', undefined, 'hello'),
      PING,
      hpub('foo', 'r', 'NATS/1.0\r\n\r\n', 'abc'),
      unsub('1', 3),
      pub('foo', undefined, ''),
      PONG,
    ],
    threeWay: true,
  },
];

for (const c of frameCases) {
  test(`C1.4 every valid frame split at every index: ${c.title}`, (t) => {
    t.deepEqual(parseChunks([c.frame]), c.events, 'one chunk');
    for (let i = 0; i <= c.frame.length; i++) {
      t.deepEqual(parseChunks(cut(c.frame, [i])), c.events, `split at ${i}`);
    }
  });
}

for (const c of frameCases.filter((f) => f.threeWay === true)) {
  test(`C1.4 every valid frame split at every pair of indexes: ${c.title}`, (t) => {
    let failures = 0;
    for (let i = 0; i <= c.frame.length; i++) {
      for (let j = i; j <= c.frame.length; j++) {
        const got = parseChunks(cut(c.frame, [i, j]));
        if (JSON.stringify(got) !== JSON.stringify(c.events)) {
          failures++;
          if (failures <= 3) t.deepEqual(got, c.events, `split at ${i} and ${j}`);
        }
      }
    }
    t.is(failures, 0);
  });
}

test('C1.4 every frame at once and one byte at a time give the same events', (t) => {
  const all = Buffer.concat(frameCases.map((c) => c.frame));
  const expected = frameCases.flatMap((c) => c.events);
  t.deepEqual(parseChunks([all]), expected);
  t.deepEqual(
    parseChunks(
      cut(
        all,
        Array.from({ length: all.length }, (_, i) => i),
      ),
    ),
    expected,
  );
});

// ---------------------------------------------------------------------------
// Malformed input

interface BadCase {
  title: string;
  input: string;
  code: ProtocolErrorCode;
  fatal: boolean;
  /** Events before the error. */
  before?: Event[];
}

/** Run with SMALL_LIMITS: 32-byte control lines, 64-byte payloads. */
const badCases: BadCase[] = [
  { title: 'C6.1 unknown verb', input: 'FOO bar\r\n', code: E.UnknownOperation, fatal: false },
  { title: 'C6.1 unknown verb alone', input: 'PUBX\r\n', code: E.UnknownOperation, fatal: false },
  { title: 'C6.1 unknown verb, LF only', input: 'subscribe a 1\n', code: E.UnknownOperation, fatal: false },
  { title: 'C6.3 PUB with no args', input: 'PUB\r\n', code: E.BadPayloadArguments, fatal: true },
  { title: 'C6.3 PUB with 1 arg', input: 'PUB foo\r\n', code: E.BadPayloadArguments, fatal: true },
  { title: 'C6.3 PUB with 4 args', input: 'PUB foo r x 1\r\n', code: E.BadPayloadArguments, fatal: true },
  { title: 'C6.3 PUB with 7 args', input: 'PUB a b c d e f 1\r\n', code: E.BadPayloadArguments, fatal: true },
  { title: 'C3.2 PUB non-numeric size', input: 'PUB foo abc\r\n', code: E.BadPayloadArguments, fatal: true },
  { title: 'C3.2 PUB size with a sign', input: 'PUB foo +5\r\n', code: E.BadPayloadArguments, fatal: true },
  { title: 'C3.2 PUB hex size', input: 'PUB foo 0x10\r\n', code: E.BadPayloadArguments, fatal: true },
  { title: 'C3.2 PUB fractional size', input: 'PUB foo 1.5\r\n', code: E.BadPayloadArguments, fatal: true },
  { title: 'C3.2 PUB negative size', input: 'PUB foo -1\r\n', code: E.BadPayloadArguments, fatal: true },
  {
    title: 'C3.2 PUB size over 10 digits',
    input: 'PUB foo 00000000001\r\n',
    code: E.BadPayloadArguments,
    fatal: true,
  },
  { title: 'C6.3 HPUB with 1 arg', input: 'HPUB foo\r\n', code: E.BadPayloadArguments, fatal: true },
  { title: 'C6.3 HPUB with 2 args', input: 'HPUB foo 5\r\n', code: E.BadPayloadArguments, fatal: true },
  { title: 'C6.3 HPUB with 5 args', input: 'HPUB a b c 1 2\r\n', code: E.BadPayloadArguments, fatal: true },
  { title: 'C3.2 HPUB header > total', input: 'HPUB foo 10 5\r\n', code: E.BadPayloadArguments, fatal: true },
  {
    title: 'C3.2 HPUB header > total with reply',
    input: 'HPUB foo r 3 2\r\n',
    code: E.BadPayloadArguments,
    fatal: true,
  },
  {
    title: 'C3.2 HPUB non-numeric header',
    input: 'HPUB foo x 5\r\n',
    code: E.BadPayloadArguments,
    fatal: true,
  },
  {
    title: 'C3.2 HPUB non-numeric total',
    input: 'HPUB foo 2 x\r\n',
    code: E.BadPayloadArguments,
    fatal: true,
  },
  { title: 'C3.2 HPUB negative total', input: 'HPUB foo 0 -2\r\n', code: E.BadPayloadArguments, fatal: true },
  { title: 'C6.4 PUB size > max_payload', input: 'PUB foo 65\r\n', code: E.MaxPayload, fatal: true },
  { title: 'C6.4 PUB 10-digit size', input: 'PUB foo 9999999999\r\n', code: E.MaxPayload, fatal: true },
  { title: 'C6.4 HPUB total > max_payload', input: 'HPUB foo r 1 65\r\n', code: E.MaxPayload, fatal: true },
  {
    title: 'C6.5 control line longer than max, with CRLF',
    input: `SUB ${'a'.repeat(27)} 1\r\n`,
    code: E.MaxControlLine,
    fatal: true,
  },
  {
    title: 'C6.5 control line longer than max, with LF',
    input: `SUB ${'a'.repeat(27)} 1\n`,
    code: E.MaxControlLine,
    fatal: true,
  },
  {
    title: 'C6.5 unknown verb longer than max',
    input: `${'X'.repeat(40)}\r\n`,
    code: E.MaxControlLine,
    fatal: true,
  },
  {
    title: 'C6.5 control line of max bytes plus CR CR LF',
    input: `SUB ${'a'.repeat(26)} 1\r\r\n`,
    code: E.MaxControlLine,
    fatal: true,
  },
  {
    title: 'C6.5 control line longer than max, no line end',
    input: `SUB ${'a'.repeat(60)}`,
    code: E.MaxControlLine,
    fatal: true,
  },
  {
    title: 'C6.6 payload longer than declared',
    input: 'PUB foo 3\r\nabcdef\r\n',
    code: E.PayloadTerminator,
    fatal: true,
  },
  {
    title: 'C6.6 payload followed by CR and not LF',
    input: 'PUB foo 3\r\nabc\rX\r\n',
    code: E.PayloadTerminator,
    fatal: true,
  },
  {
    title: 'C6.6 zero-length payload without its line end',
    input: 'PUB foo 0\r\nPING\r\n',
    code: E.PayloadTerminator,
    fatal: true,
  },
  {
    title: 'C6.6 HPUB payload longer than declared',
    input: 'HPUB foo 12 12\r\nNATS/1.0\r\n\r\nx\r\n',
    code: E.PayloadTerminator,
    fatal: true,
  },
  { title: 'C6.2 SUB with no args', input: 'SUB\r\n', code: E.BadArguments, fatal: false },
  { title: 'C6.2 SUB with 1 arg', input: 'SUB foo\r\n', code: E.BadArguments, fatal: false },
  { title: 'C6.2 SUB with 4 args', input: 'SUB foo q 1 2\r\n', code: E.BadArguments, fatal: false },
  { title: 'C6.2 SUB with 6 args', input: 'SUB a b c d e f\r\n', code: E.BadArguments, fatal: false },
  { title: 'C6.2 UNSUB with no args', input: 'UNSUB\r\n', code: E.BadArguments, fatal: false },
  { title: 'C6.2 UNSUB with 3 args', input: 'UNSUB 1 2 3\r\n', code: E.BadArguments, fatal: false },
  { title: 'C6.2 UNSUB non-numeric max', input: 'UNSUB 1 ten\r\n', code: E.BadArguments, fatal: false },
  { title: 'C6.2 UNSUB negative max', input: 'UNSUB 1 -1\r\n', code: E.BadArguments, fatal: false },
  {
    title: 'C6.1 error after a good frame in the same chunk',
    input: 'PUB a 1\r\nx\r\nNOPE\r\n',
    code: E.UnknownOperation,
    fatal: false,
    before: [pub('a', undefined, 'x')],
  },
  {
    title: 'C6.3 error after a good frame in the same chunk',
    input: 'SUB a 1\r\nPUB a\r\n',
    code: E.BadPayloadArguments,
    fatal: true,
    before: [sub('a', undefined, '1')],
  },
];

for (const c of badCases) {
  test(`${c.title} -> ${c.code}, ${c.fatal ? 'fatal' : 'line skipped'}`, (t) => {
    const follow = 'PING\r\n';
    const input = b(c.input + follow);
    const before = c.before ?? [];
    const expected = c.fatal ? [...before, err(c.code, true)] : [...before, err(c.code, false), PING];
    // C1.4: the same events wherever the input is split.
    for (let i = 0; i <= input.length; i++) {
      const { parser, rec } = newParser(SMALL_LIMITS);
      for (const chunk of cut(input, [i])) parser.feed(chunk);
      t.deepEqual(rec.events, expected, `split at ${i}`);
      t.is(parser.state, c.fatal ? Closed : OpLine, `split at ${i}`);
      // After a fatal error later input is ignored; otherwise parsing goes on.
      parser.feed(b('PONG\r\n'));
      t.deepEqual(rec.events, c.fatal ? expected : [...expected, PONG], `split at ${i}`);
      t.is(parser.bufferedBytes, 0);
      t.true(rec.ops.some((op) => op.kind === 'error' && op.error instanceof ProtocolError));
    }
  });
}

test('C7.3 error texts say what was expected', (t) => {
  const texts = (input: string): string[] => {
    const { parser, rec } = newParser(SMALL_LIMITS);
    parser.feed(b(input));
    return rec.ops.flatMap((op) => (op.kind === 'error' ? [op.error.wireText] : []));
  };
  t.deepEqual(texts('FOO bar\r\n'), ['Unknown Protocol Operation: "FOO" (send HELP for the list of verbs)']);
  t.deepEqual(texts('SUB foo\r\nUNSUB\r\n'), [
    'Invalid SUB arguments, expected: SUB <subject> [queue-group] <sid>',
    'Invalid UNSUB arguments, expected: UNSUB <sid> [max-msgs]',
  ]);
  t.deepEqual(texts('PUB foo\r\n'), ['Invalid PUB arguments, expected: PUB <subject> [reply-to] <#bytes>']);
  t.deepEqual(texts('HPUB foo 1\r\n'), [
    'Invalid HPUB arguments, expected: HPUB <subject> [reply-to] <#header-bytes> <#total-bytes>',
  ]);
  t.deepEqual(texts('PUB foo 3\r\nabcdef\r\n'), [
    'Unknown Protocol Operation: payload is longer than its declared 3 bytes (expected CRLF after it)',
  ]);
  t.deepEqual(texts('PUB foo 65\r\n'), ['Maximum Payload Violation']);
  t.deepEqual(texts(`${'x'.repeat(40)}\r\n`), ['maximum control line exceeded']);
});

test('C1.7 empty lines between frames are ignored and raise no error', (t) => {
  const events = parseChunks([b('\r\n\r\n   \r\n\t\t\n\nSUB a 1\r\n \r\nPUB a 1\r\nx\r\n\r\n\n')]);
  t.deepEqual(events, [sub('a', undefined, '1'), pub('a', undefined, 'x')]);
});

test('C6.1 several non-fatal errors in a row each skip one line', (t) => {
  const events = parseChunks([b('FOO\r\nSUB a\r\nUNSUB\r\nBAR 1 2\nPING\r\n')]);
  t.deepEqual(events, [
    err(E.UnknownOperation, false),
    err(E.BadArguments, false),
    err(E.BadArguments, false),
    err(E.UnknownOperation, false),
    PING,
  ]);
});

test('C1.6 size > max_payload is refused from the control line, before any payload byte is sent', (t) => {
  for (const line of ['PUB foo 65\r\n', 'PUB foo r 65\n', 'HPUB foo 0 65\r\n', 'HPUB foo r 10 1000000\r\n']) {
    const { parser, rec } = newParser(SMALL_LIMITS);
    parser.feed(b(line));
    t.deepEqual(rec.events, [err(E.MaxPayload, true)], line);
    t.is(parser.state, Closed, line);
    t.is(parser.bufferedBytes, 0, line);
    parser.feed(Buffer.alloc(65, 0x61));
    parser.feed(b('\r\nPING\r\n'));
    t.is(rec.events.length, 1, line);
    t.is(parser.bufferedBytes, 0, line);
  }
  // With the default 1 MiB: one byte over is refused at once, exactly the limit is accepted.
  const over = newParser();
  over.parser.feed(b('PUB foo 1048577\r\n'));
  t.deepEqual(over.rec.events, [err(E.MaxPayload, true)]);
  t.is(over.parser.bufferedBytes, 0);
  const at = newParser();
  at.parser.feed(b('PUB foo 1048576\r\n'));
  t.deepEqual(at.rec.events, []);
  t.is(at.parser.state, Payload);
  at.parser.feed(Buffer.alloc(1048576, 0x78));
  at.parser.feed(b('\r\n'));
  t.is(at.rec.events.length, 1);
  const op = at.rec.ops[0]!;
  t.true(op.kind === 'PUB' && op.payload.length === 1048576);
});

test('C1.5 a control line of exactly max bytes is accepted, one more is refused', (t) => {
  const max = SMALL_LIMITS.maxControlLineBytes;
  const exact = `SUB ${'a'.repeat(max - 6)} 1`;
  t.is(exact.length, max);
  const over = `SUB ${'a'.repeat(max - 5)} 1`;
  for (const end of ['\r\n', '\n']) {
    const ok = b(exact + end + 'PING' + end);
    const bad = b(over + end);
    for (let i = 0; i <= ok.length; i++) {
      t.deepEqual(parseChunks(cut(ok, [i]), SMALL_LIMITS), [sub('a'.repeat(max - 6), undefined, '1'), PING]);
    }
    for (let i = 0; i <= bad.length; i++) {
      t.deepEqual(parseChunks(cut(bad, [i]), SMALL_LIMITS), [err(E.MaxControlLine, true)]);
    }
    // One byte at a time.
    t.deepEqual(
      parseChunks(
        cut(
          ok,
          Array.from({ length: ok.length }, (_, i) => i),
        ),
        SMALL_LIMITS,
      ),
      [sub('a'.repeat(max - 6), undefined, '1'), PING],
    );
    t.deepEqual(
      parseChunks(
        cut(
          bad,
          Array.from({ length: bad.length }, (_, i) => i),
        ),
        SMALL_LIMITS,
      ),
      [err(E.MaxControlLine, true)],
    );
  }
});

test('C1.5 an endless line in small chunks is refused once over the limit, buffering at most limit+2', (t) => {
  const max = SMALL_LIMITS.maxControlLineBytes;
  for (const chunkSize of [1, 2, 3, 7, 16, 31, 32, 33, 100]) {
    for (const start of ['SUB ', '', 'PUB foo 1\r\nx\r\nPUB ']) {
      const { parser, rec } = newParser(SMALL_LIMITS);
      let errorsSeen = 0;
      // Bytes of the endless line fed so far (the start may hold a complete frame first).
      let lineBytes = -(start.lastIndexOf('\n') + 1);
      const first = b(start);
      parser.feed(first);
      lineBytes += first.length;
      for (let k = 0; k < 50; k++) {
        parser.feed(Buffer.alloc(chunkSize, 0x61));
        lineBytes += chunkSize;
        const errors = rec.events.filter((e) => e.kind === 'error').length;
        t.true(errors <= 1, `chunk ${chunkSize}: one error at most`);
        t.true(parser.bufferedBytes <= max + 2, `chunk ${chunkSize}: buffered ${parser.bufferedBytes}`);
        if (errors === 1 && errorsSeen === 0) {
          errorsSeen = 1;
          t.true(lineBytes > max, `chunk ${chunkSize}: refused after ${lineBytes} bytes`);
        }
        // A line of max+1 bytes may still end in CR; past that it is over-long whatever comes.
        if (lineBytes > max + 1) t.is(errors, 1, `chunk ${chunkSize}: not refused after ${lineBytes} bytes`);
      }
      t.is(parser.state, Closed);
      t.is(parser.bufferedBytes, 0);
      t.deepEqual(rec.events.at(-1), err(E.MaxControlLine, true));
      parser.feed(b('\r\nPING\r\n'));
      t.deepEqual(rec.events.at(-1), err(E.MaxControlLine, true));
    }
  }
});

test('C1.5 a line of max bytes then CR arriving alone is still accepted', (t) => {
  const max = SMALL_LIMITS.maxControlLineBytes;
  const line = `UNSUB ${'1'.repeat(max - 6)}`;
  t.is(line.length, max);
  const { parser, rec } = newParser(SMALL_LIMITS);
  parser.feed(b(line));
  t.is(parser.bufferedBytes, max);
  parser.feed(b('\r'));
  t.is(parser.bufferedBytes, max + 1);
  t.deepEqual(rec.events, []);
  parser.feed(b('\n'));
  t.deepEqual(rec.events, [unsub('1'.repeat(max - 6), undefined)]);
  t.is(parser.bufferedBytes, 0);
});

test('C6.6 the payload terminator error names the declared size and ignores the rest', (t) => {
  const { parser, rec } = newParser();
  parser.feed(b('PUB foo 3\r\nabc'));
  t.is(parser.state, PayloadCR);
  parser.feed(b('d'));
  t.is(parser.state, Closed);
  parser.feed(b('ef\r\nPING\r\n'));
  t.deepEqual(rec.events, [err(E.PayloadTerminator, true)]);
  const op = rec.ops[0]!;
  t.true(op.kind === 'error' && op.error.wireText.includes('declared 3 bytes'));
});

test('setLimits: a larger control line limit applies to a line already partly buffered', (t) => {
  const { parser, rec } = newParser({ maxControlLineBytes: 16, maxPayloadBytes: 64 });
  parser.feed(b('SUB abcdefgh'));
  parser.setLimits({ maxControlLineBytes: 64, maxPayloadBytes: 64 });
  parser.feed(b('ijklmnopqrstuvwxyz 1\r\n'));
  t.deepEqual(rec.events, [sub('abcdefghijklmnopqrstuvwxyz', undefined, '1')]);
  parser.feed(b(`SUB ${'x'.repeat(58)} 2\r\n`));
  t.deepEqual(rec.events.at(-1), sub('x'.repeat(58), undefined, '2'));
});

test('setLimits: a smaller control line limit applies to a line already partly buffered', (t) => {
  const { parser, rec } = newParser({ maxControlLineBytes: 32, maxPayloadBytes: 64 });
  parser.feed(b('SUB abcdefgh'));
  parser.setLimits({ maxControlLineBytes: 8, maxPayloadBytes: 64 });
  parser.feed(b(' 1\r\n'));
  t.deepEqual(rec.events, [err(E.MaxControlLine, true)]);
  t.is(parser.bufferedBytes, 0);
});

test('setLimits: a smaller payload limit applies from the next control line', (t) => {
  const { parser, rec } = newParser(SMALL_LIMITS);
  parser.feed(b('PUB a 10\r\n01234'));
  parser.setLimits({ maxControlLineBytes: 32, maxPayloadBytes: 5 });
  parser.feed(b('56789\r\nPUB a 6\r\n'));
  t.deepEqual(rec.events, [pub('a', undefined, '0123456789'), err(E.MaxPayload, true)]);
});

// ---------------------------------------------------------------------------
// Payload views

test('payload of a frame in one chunk is a view into that chunk', (t) => {
  const chunk = unpooled('SUB x 1\r\nPUB foo 5\r\nhello\r\nHPUB foo 12 15\r\nNATS/1.0\r\n\r\nabc\r\n');
  const { parser, rec } = newParser();
  parser.feed(chunk);
  const [, p, h] = rec.ops;
  if (p?.kind !== 'PUB' || h?.kind !== 'HPUB') return t.fail('expected PUB and HPUB');
  t.is(p.payload.buffer, chunk.buffer);
  t.is(p.payload.byteOffset, chunk.byteOffset + chunk.indexOf('hello'));
  t.is(p.payload.toString(), 'hello');
  t.is(h.headers.buffer, chunk.buffer);
  t.is(h.payload.buffer, chunk.buffer);
  t.is(h.headers.byteOffset, chunk.byteOffset + chunk.indexOf('NATS/1.0'));
  t.is(h.payload.byteOffset, chunk.byteOffset + chunk.indexOf('abc'));
  t.is(h.headers.toString(), 'NATS/1.0\r\n\r\n');
  t.is(h.payload.toString(), 'abc');
  // Shares memory: writing the chunk shows through the view.
  chunk[chunk.indexOf('hello')] = 0x48;
  t.is(p.payload.toString(), 'Hello');
});

test('payload whose control line straddled chunks is a view into the chunk that holds it', (t) => {
  const first = unpooled('PUB fo');
  const second = unpooled('o 5\r\nhello\r\n');
  const { parser, rec } = newParser();
  parser.feed(first);
  parser.feed(second);
  const p = rec.ops[0];
  if (p?.kind !== 'PUB') return t.fail('expected PUB');
  t.is(p.subject, 'foo');
  t.is(p.payload.buffer, second.buffer);
  t.is(p.payload.toString(), 'hello');
});

test('payload that straddles chunks is a correct copy', (t) => {
  const frame = 'PUB foo 5\r\nhello\r\nHPUB foo 12 15\r\nNATS/1.0\r\n\r\nabc\r\n';
  const hpubAt = frame.indexOf('NATS');
  for (const at of [11, 12, 14, 15, 16, hpubAt + 1, hpubAt + 11, hpubAt + 12, hpubAt + 14]) {
    const chunks = [unpooled(frame.slice(0, at)), unpooled(frame.slice(at))];
    const { parser, rec } = newParser();
    for (const c of chunks) parser.feed(c);
    // Overwrite the chunks: what the sink got must not change if it was copied.
    const p = rec.ops[0];
    const h = rec.ops[1];
    if (p?.kind !== 'PUB' || h?.kind !== 'HPUB') return t.fail('expected PUB and HPUB');
    const pubStraddles = at > 11 && at < 16;
    const hpubStraddles = at > hpubAt && at < hpubAt + 15;
    for (const c of chunks) c.fill(0x7e);
    if (pubStraddles) {
      t.true(p.payload.buffer !== chunks[0]!.buffer && p.payload.buffer !== chunks[1]!.buffer, `at ${at}`);
      t.is(p.payload.toString(), 'hello', `at ${at}`);
    } else {
      t.is(p.payload.buffer, chunks[at <= 11 ? 1 : 0]!.buffer, `at ${at}`);
    }
    if (hpubStraddles) {
      for (const part of [h.headers, h.payload]) {
        t.true(part.buffer !== chunks[0]!.buffer && part.buffer !== chunks[1]!.buffer, `at ${at}`);
      }
      t.is(h.headers.toString(), 'NATS/1.0\r\n\r\n', `at ${at}`);
      t.is(h.payload.toString(), 'abc', `at ${at}`);
    } else {
      t.is(h.payload.buffer, chunks[at <= hpubAt ? 1 : 0]!.buffer, `at ${at}`);
    }
  }
});

test('a payload fed one byte at a time is assembled correctly', (t) => {
  const payload = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37) & 0xff));
  const frame = Buffer.concat([b('PUB p 300\r\n'), payload, b('\r\n')]);
  const events = parseChunks(
    cut(
      frame,
      Array.from({ length: frame.length }, (_, i) => i),
    ),
  );
  t.deepEqual(events, [{ kind: 'PUB', subject: 'p', reply: undefined, payload: payload.toString('hex') }]);
});

// ---------------------------------------------------------------------------
// Seeded random frames and splits

function randomFrames(rand: () => number, count: number): { bytes: Buffer; events: Event[] } {
  const int = (n: number): number => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const tokenChars = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_$*>';
  const token = (): string => Array.from({ length: 1 + int(8) }, () => pick([...tokenChars])).join('');
  const subject = (): string => Array.from({ length: 1 + int(4) }, token).join('.');
  const ws = (): string => Array.from({ length: 1 + int(3) }, () => pick([' ', ' ', ' ', '\t'])).join('');
  const eol = (): string => (rand() < 0.8 ? '\r\n' : '\n');
  const verb = (v: string): string => [...v].map((ch) => (rand() < 0.3 ? ch.toLowerCase() : ch)).join('');
  const payloadBytes = (n: number): string =>
    Array.from({ length: n }, () => (rand() < 0.2 ? pick(['\r', '\n']) : String.fromCharCode(int(256)))).join(
      '',
    );

  const parts: Buffer[] = [];
  const events: Event[] = [];
  for (let k = 0; k < count; k++) {
    const kind = int(9);
    if (kind <= 2) {
      const s = subject();
      const reply = rand() < 0.5 ? subject() : undefined;
      const payload = payloadBytes(rand() < 0.1 ? 0 : int(80));
      const line = `${verb('PUB')}${ws()}${s}${reply === undefined ? '' : ws() + reply}${ws()}${payload.length}`;
      parts.push(b(`${line}${eol()}${payload}${eol()}`));
      events.push(pub(s, reply, payload));
    } else if (kind <= 4) {
      const s = subject();
      const reply = rand() < 0.5 ? subject() : undefined;
      const headers = `NATS/1.0\r\nK${int(100)}: ${token()}\r\n\r\n`;
      const payload = payloadBytes(int(60));
      const total = headers.length + payload.length;
      const line = `${verb('HPUB')}${ws()}${s}${reply === undefined ? '' : ws() + reply}${ws()}${headers.length}${ws()}${total}`;
      parts.push(b(`${line}${eol()}${headers}${payload}${eol()}`));
      events.push(hpub(s, reply, headers, payload));
    } else if (kind === 5) {
      const s = subject();
      const queue = rand() < 0.4 ? token() : undefined;
      const sid = String(int(100000));
      parts.push(
        b(`${verb('SUB')}${ws()}${s}${queue === undefined ? '' : ws() + queue}${ws()}${sid}${eol()}`),
      );
      events.push(sub(s, queue, sid));
    } else if (kind === 6) {
      const sid = String(int(100000));
      const max = rand() < 0.5 ? int(1000) : undefined;
      parts.push(b(`${verb('UNSUB')}${ws()}${sid}${max === undefined ? '' : ws() + max}${eol()}`));
      events.push(unsub(sid, max));
    } else if (kind === 7) {
      const v = pick(['PING', 'PONG']);
      parts.push(b(`${verb(v)}${eol()}`));
      events.push(v === 'PING' ? PING : PONG);
    } else {
      // Empty lines (C1.7) or a CONNECT.
      if (rand() < 0.5) {
        parts.push(b(`${rand() < 0.5 ? ws() : ''}${eol()}`));
      } else {
        const json = `{"name":"${token()}","verbose":${rand() < 0.5}}`;
        parts.push(b(`${verb('CONNECT')}${ws()}${json}${eol()}`));
        events.push({ kind: 'CONNECT', json });
      }
    }
  }
  return { bytes: Buffer.concat(parts), events };
}

test('C1.4 seeded random frames split at random points give the one-chunk events', (t) => {
  for (const seed of [1, 42, 0xdecafbad]) {
    const rand = prng(seed);
    const { bytes, events } = randomFrames(rand, 300);
    const whole = parseChunks([bytes]);
    t.deepEqual(whole, events, `seed ${seed}: one chunk`);
    for (let round = 0; round < 60; round++) {
      const cuts = new Set<number>();
      const n = 1 + Math.floor(rand() * (round % 3 === 0 ? 400 : 20));
      for (let i = 0; i < n; i++) cuts.add(Math.floor(rand() * (bytes.length + 1)));
      const at = [...cuts].sort((x, y) => x - y);
      const got = parseChunks(cut(bytes, at));
      if (JSON.stringify(got) !== JSON.stringify(whole)) {
        t.deepEqual(got, whole, `seed ${seed}, round ${round}, cuts ${JSON.stringify(at)}`);
        return;
      }
    }
    // And one byte at a time.
    t.deepEqual(
      parseChunks(
        cut(
          bytes,
          Array.from({ length: bytes.length }, (_, i) => i),
        ),
      ),
      whole,
    );
  }
});

// ---------------------------------------------------------------------------
// parseSize

test('C3.2 parseSize accepts up to 10 decimal digits and nothing else', (t) => {
  const good: [string, number][] = [
    ['0', 0],
    ['5', 5],
    ['0005', 5],
    ['1048576', 1048576],
    ['4294967296', 4294967296],
    ['9999999999', 9999999999],
    ['0000000000', 0],
  ];
  for (const [s, n] of good) t.is(parseSize(s), n, s);
  const bad = [
    '',
    '12345678901',
    '00000000000',
    '-1',
    '+1',
    '1.0',
    '1e3',
    '0x10',
    ' 1',
    '1 ',
    'a',
    '/',
    ':',
    '1/',
    '9:',
    '\uff11', // fullwidth digit one
    '٣', // Arabic-Indic digit three
  ];
  for (const s of bad) t.is(parseSize(s), -1, JSON.stringify(s));
});
