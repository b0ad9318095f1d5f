/**
 * Unit tests of the parser's durable verbs (protocol/DURABLE.md D3.1, D4.1,
 * D4.2-D4.5, D7.1, D7.2 with the framing of protocol/CLIENT.md section 1):
 * SEND with its options and payload, and the payload-less verbs, whole and
 * split at every byte. A recording sink, no sockets.
 */
import test from 'ava';
import { ProtocolErrorCode } from '../../src/errors.js';
import { Recorder, type Event } from '../helpers/parser-recorder.js';
import { Parser, ParserState, type ParserLimits } from '../../src/protocol/parser.js';

const LIMITS: ParserLimits = { maxControlLineBytes: 4096, maxPayloadBytes: 1024 * 1024 };
const SMALL: ParserLimits = { maxControlLineBytes: 64, maxPayloadBytes: 16 };

function parse(
  chunks: readonly Buffer[],
  limits = LIMITS,
): { events: Event[]; parser: Parser; rec: Recorder } {
  const rec = new Recorder();
  const parser = new Parser(rec, limits);
  for (const c of chunks) parser.feed(c);
  return { events: rec.events, parser, rec };
}

/** The wire texts of the errors a sink saw. */
function errorTexts(rec: Recorder): string[] {
  return rec.ops.flatMap((op) => (op.kind === 'error' ? [op.error.wireText] : []));
}

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const hex = (s: string): string => Buffer.from(s, 'latin1').toString('hex');
const send = (destination: string, options: string[], payload: string): Event => ({
  kind: 'SEND',
  destination,
  options,
  payload: hex(payload),
});
const verb = (v: string, ...args: string[]): Event => ({ kind: 'DURABLE', verb: v, args });

/** Frames and the events each gives on its own. */
const frames: { frame: string; events: Event[] }[] = [
  { frame: 'SEND q 5\r\nhello\r\n', events: [send('q', [], 'hello')] },
  { frame: 'SEND orders.eu 0\r\n\r\n', events: [send('orders.eu', [], '')] },
  {
    frame: 'SEND orders id=a-1 priority=9 ttl=5s delay=250ms 3\r\nabc\r\n',
    events: [send('orders', ['id=a-1', 'priority=9', 'ttl=5s', 'delay=250ms'], 'abc')],
  },
  { frame: 'send\tq \t id=x\t 4\nab\r\n\n', events: [send('q', ['id=x'], 'ab\r\n')] },
  { frame: 'SeNd bin 4\r\n\u0000\u00ff\r\n\r\n', events: [send('bin', [], '\u0000\u00ff\r\n')] },
  { frame: 'SEND q 13\r\nSEND q 1\r\nx\r\n\r\n', events: [send('q', [], 'SEND q 1\r\nx\r\n')] },
  { frame: 'PULL orders billing 10 5s\r\n', events: [verb('PULL', 'orders', 'billing', '10', '5s')] },
  { frame: 'pull q g\n', events: [verb('PULL', 'q', 'g')] },
  {
    frame: 'PULL q g 1 0 ack_timeout=30s\r\n',
    events: [verb('PULL', 'q', 'g', '1', '0', 'ack_timeout=30s')],
  },
  { frame: 'ACK 1/1/billing/orders\r\n', events: [verb('ACK', '1/1/billing/orders')] },
  { frame: 'nak 2/3/g/q 5s\r\n', events: [verb('NAK', '2/3/g/q', '5s')] },
  { frame: 'WIP 2/3/g/q\r\n', events: [verb('WIP', '2/3/g/q')] },
  { frame: 'Term\t2/3/g/q\r\n', events: [verb('TERM', '2/3/g/q')] },
  {
    frame:
      'CREATE q ttl=1h max_msgs=10 max_bytes=1000 max_deliveries=3 ack_timeout=2s dead_letter_expired=true\r\n',
    events: [
      verb(
        'CREATE',
        'q',
        'ttl=1h',
        'max_msgs=10',
        'max_bytes=1000',
        'max_deliveries=3',
        'ack_timeout=2s',
        'dead_letter_expired=true',
      ),
    ],
  },
  { frame: 'DESTS\r\n', events: [verb('DESTS')] },
  { frame: '  dests  \r\n', events: [verb('DESTS')] },
  { frame: 'ACK\r\n', events: [verb('ACK')] },
  {
    frame: 'PUB core 2\r\nhi\r\n',
    events: [{ kind: 'PUB', subject: 'core', reply: undefined, payload: hex('hi') }],
  },
  { frame: '\r\n', events: [] },
];

test('D3.1/D4.1 each durable frame gives its event', (t) => {
  for (const f of frames) t.deepEqual(parse([b(f.frame)]).events, f.events, JSON.stringify(f.frame));
});

test('C1.4 durable frames split at every index give the same events', (t) => {
  const all = b(frames.map((f) => f.frame).join(''));
  const want = frames.flatMap((f) => f.events);
  t.deepEqual(parse([all]).events, want);
  for (let i = 0; i <= all.length; i++) {
    t.deepEqual(parse([all.subarray(0, i), all.subarray(i)]).events, want, `split at ${i}`);
  }
  // And one byte at a time.
  const bytes = Array.from({ length: all.length }, (_, i) => all.subarray(i, i + 1));
  t.deepEqual(parse(bytes).events, want);
});

test('C1.4 each SEND frame split at every pair of indexes gives its event', (t) => {
  for (const f of frames.filter((x) => x.frame.toUpperCase().startsWith('SEND'))) {
    const buf = b(f.frame);
    for (let i = 0; i <= buf.length; i++) {
      for (let j = i; j <= buf.length; j++) {
        const chunks = [buf.subarray(0, i), buf.subarray(i, j), buf.subarray(j)];
        t.deepEqual(parse(chunks).events, f.events, `${JSON.stringify(f.frame)} at ${i},${j}`);
      }
    }
  }
});

test('D3.1 a SEND payload is emitted at its line ending, not before', (t) => {
  const rec = new Recorder();
  const parser = new Parser(rec, LIMITS);
  const frame = b('SEND q id=1 3\r\nabc\r\n');
  for (let i = 0; i < frame.length - 1; i++) {
    parser.feed(frame.subarray(i, i + 1));
    t.is(rec.events.length, 0, `after byte ${i}`);
  }
  parser.feed(frame.subarray(frame.length - 1));
  t.deepEqual(rec.events, [send('q', ['id=1'], 'abc')]);
  t.is(parser.state, ParserState.OpLine);
});

test('D3.1 a SEND whose payload is in one chunk hands on a view into that chunk', (t) => {
  const chunk = Buffer.from('SEND q 5\r\nhello\r\n', 'latin1');
  const { rec } = parse([chunk]);
  const op = rec.ops[0]!;
  t.is(op.kind, 'SEND');
  if (op.kind !== 'SEND') return;
  t.is(op.payload.buffer, chunk.buffer);
  t.deepEqual(op.payload, Buffer.from('hello'));
});

interface BadCase {
  input: string;
  code: ProtocolErrorCode;
  fatal: boolean;
  limits?: ParserLimits;
}

const E = ProtocolErrorCode;
const badSend: BadCase[] = [
  { input: 'SEND q abc\r\nabc\r\n', code: E.BadPayloadArguments, fatal: true },
  { input: 'SEND q -1\r\n', code: E.BadPayloadArguments, fatal: true },
  { input: 'SEND q 1.5\r\n', code: E.BadPayloadArguments, fatal: true },
  { input: 'SEND q 12345678901\r\n', code: E.BadPayloadArguments, fatal: true },
  { input: 'SEND q id=1\r\n', code: E.BadPayloadArguments, fatal: true },
  { input: 'SEND 5\r\nhello\r\n', code: E.BadPayloadArguments, fatal: true },
  { input: 'SEND\r\n', code: E.BadPayloadArguments, fatal: true },
  { input: 'SEND q 17\r\n', code: E.MaxPayload, fatal: true, limits: SMALL },
  { input: 'SEND q 3\r\nabcd\r\n', code: E.PayloadTerminator, fatal: true },
  { input: `SEND q ${'x'.repeat(70)} 1\r\n`, code: E.MaxControlLine, fatal: true, limits: SMALL },
  // Dest, seven options and a size: nine arguments, more than any SEND takes.
  { input: 'SEND q a=1 b=2 c=3 d=4 e=5 f=6 g=7 1\r\nx\r\n', code: E.BadPayloadArguments, fatal: true },
  { input: 'SEND q a b c d e f g h i j k l 1\r\nx\r\n', code: E.BadPayloadArguments, fatal: true },
];

test('D3.1/C6.3 a SEND whose payload cannot be found is fatal; later input is ignored', (t) => {
  for (const c of badSend) {
    const input = `${c.input}PING\r\nSEND q 1\r\nx\r\n`;
    const { events, parser } = parse([b(input)], c.limits ?? LIMITS);
    t.is(events.length, 1, c.input);
    const e = events[0] as { kind: string; code: ProtocolErrorCode; fatal: boolean };
    t.is(e.kind, 'error', c.input);
    t.is(e.code, c.code, c.input);
    t.is(e.fatal, c.fatal, c.input);
    t.is(parser.state, ParserState.Closed, c.input);
  }
});

test('C7.3 the SEND argument error says what was expected', (t) => {
  const { events, rec } = parse([b('SEND q x\r\n')]);
  t.deepEqual(events, [{ kind: 'error', code: E.BadPayloadArguments, fatal: true }]);
  t.deepEqual(errorTexts(rec), [
    'Invalid SEND arguments, expected: SEND <destination> [id=<id>] [priority=<1-10>] [ttl=<dur>] [delay=<dur>] <#bytes>',
  ]);
});

test('D3.1 eight SEND arguments (destination, six options, size) are accepted', (t) => {
  const { events } = parse([b('SEND q a=1 b=2 c=3 d=4 e=5 f=6 1\r\nx\r\n')]);
  t.deepEqual(events, [send('q', ['a=1', 'b=2', 'c=3', 'd=4', 'e=5', 'f=6'], 'x')]);
});

test('D7.1 a durable verb with too many arguments passes one more than any verb takes (the session refuses it)', (t) => {
  const line = 'CREATE q a=1 b=2 c=3 d=4 e=5 f=6 g=7 h=8 i=9 j=10\r\n';
  const { events, parser } = parse([b(`${line}DESTS\r\n`)]);
  t.deepEqual(events, [
    verb('CREATE', 'q', 'a=1', 'b=2', 'c=3', 'd=4', 'e=5', 'f=6', 'g=7', 'h=8'),
    verb('DESTS'),
  ]);
  // Not fatal: the line is complete, so the next operation is found.
  t.is(parser.state, ParserState.OpLine);
  // Nine arguments exactly are passed as they are.
  t.deepEqual(parse([b('PULL 1 2 3 4 5 6 7 8 9\r\n')]).events, [
    verb('PULL', '1', '2', '3', '4', '5', '6', '7', '8', '9'),
  ]);
});

test('D4.1 durable verbs obey the control line limit', (t) => {
  const { events, parser, rec } = parse([b(`PULL ${'q'.repeat(80)} g\r\n`)], SMALL);
  t.deepEqual(events, [{ kind: 'error', code: E.MaxControlLine, fatal: true }]);
  t.deepEqual(errorTexts(rec), ['maximum control line exceeded']);
  t.is(parser.state, ParserState.Closed);
});

test('a verb that only starts like a durable one is unknown, not fatal', (t) => {
  const { events, parser } = parse([b('PULLS q g\r\nSENDX q 1\r\nACKS\r\nDESTS\r\n')]);
  t.deepEqual(
    events.map((e) => ('code' in e ? e.code : e.kind)),
    [E.UnknownOperation, E.UnknownOperation, E.UnknownOperation, 'DURABLE'],
  );
  t.is(parser.state, ParserState.OpLine);
});

// ---- HSEND (D3.9) -----------------------------------------------------------

const hsend = (destination: string, options: string[], headers: string, payload: string): Event => ({
  kind: 'HSEND',
  destination,
  options,
  headers: hex(headers),
  payload: hex(payload),
});
const HDR = 'NATS/1.0\r\nNats-Msg-Id: a-1\r\n\r\n';

/** HSEND frames and the events each gives on its own. */
const hsendFrames: { frame: string; events: Event[] }[] = [
  {
    frame: `HSEND q ${HDR.length} ${HDR.length + 5}\r\n${HDR}hello\r\n`,
    events: [hsend('q', [], HDR, 'hello')],
  },
  {
    frame: 'HSEND orders id=x priority=9 ttl=5s delay=1s 12 14\r\nNATS/1.0\r\n\r\nhi\r\n',
    events: [hsend('orders', ['id=x', 'priority=9', 'ttl=5s', 'delay=1s'], 'NATS/1.0\r\n\r\n', 'hi')],
  },
  // An empty payload, an LF-only ending, tabs and any case (C1.1, C1.2, C1.3).
  { frame: 'hsend\tq \t12\t 12\nNATS/1.0\r\n\r\n\n', events: [hsend('q', [], 'NATS/1.0\r\n\r\n', '')] },
  // Header bytes 0: the whole body is payload, which may look like a frame.
  { frame: 'HSend q 0 10\r\nSEND q 1\r\n\r\n', events: [hsend('q', [], '', 'SEND q 1\r\n')] },
  { frame: 'HSEND bin 0 3\r\n\u0000\u00ff\n\r\n', events: [hsend('bin', [], '', '\u0000\u00ff\n')] },
];

test('D3.9 each HSEND frame gives its event', (t) => {
  for (const f of hsendFrames) t.deepEqual(parse([b(f.frame)]).events, f.events, JSON.stringify(f.frame));
});

test('D3.9/C1.4 HSEND frames split at every index, and one byte at a time, give the same events', (t) => {
  const all = b(hsendFrames.map((f) => f.frame).join('') + 'PING\r\n');
  const want = [...hsendFrames.flatMap((f) => f.events), { kind: 'PING' } as Event];
  t.deepEqual(parse([all]).events, want);
  for (let i = 0; i <= all.length; i++) {
    t.deepEqual(parse([all.subarray(0, i), all.subarray(i)]).events, want, `split at ${i}`);
  }
  const bytes = Array.from({ length: all.length }, (_, i) => all.subarray(i, i + 1));
  t.deepEqual(parse(bytes).events, want);
});

test('D3.9/C1.4 each HSEND frame split at every pair of indexes gives its event', (t) => {
  for (const f of hsendFrames) {
    const buf = b(f.frame);
    for (let i = 0; i <= buf.length; i++) {
      for (let j = i; j <= buf.length; j++) {
        const chunks = [buf.subarray(0, i), buf.subarray(i, j), buf.subarray(j)];
        t.deepEqual(parse(chunks).events, f.events, `${JSON.stringify(f.frame)} at ${i},${j}`);
      }
    }
  }
});

test('D3.9/C1.3 state after every byte of an HSEND: emitted at its line ending, never before', (t) => {
  const line = 'HSEND q id=1 12 15\r\n';
  const frame = b(`${line}NATS/1.0\r\n\r\nabc\r\n`);
  const { OpLine, Payload, PayloadCR, PayloadLF } = ParserState;
  const expected = [
    ...Array<ParserState>(line.length - 1).fill(OpLine),
    ...Array<ParserState>(15).fill(Payload), // the control line's LF, then 14 body bytes
    PayloadCR, // the 15th body byte: the body is complete
    PayloadLF,
    OpLine,
  ];
  t.is(expected.length, frame.length);
  const rec = new Recorder();
  const parser = new Parser(rec, LIMITS);
  for (let i = 0; i < frame.length; i++) {
    parser.feed(frame.subarray(i, i + 1));
    t.is(parser.state, expected[i]!, `state after byte ${i}`);
    t.is(rec.events.length, i === frame.length - 1 ? 1 : 0, `events after byte ${i}`);
  }
  t.deepEqual(rec.events, [hsend('q', ['id=1'], 'NATS/1.0\r\n\r\n', 'abc')]);
  t.is(parser.bufferedBytes, 0);
});

test('D3.9 an HSEND whose body is in one chunk hands on views into that chunk', (t) => {
  const chunk = Buffer.from(`HSEND q ${HDR.length} ${HDR.length + 5}\r\n${HDR}hello\r\n`, 'latin1');
  const { rec } = parse([chunk]);
  const op = rec.ops[0]!;
  if (op.kind !== 'HSEND') return t.fail(`expected HSEND, got ${op.kind}`);
  t.is(op.headers.buffer, chunk.buffer);
  t.is(op.payload.buffer, chunk.buffer);
  t.deepEqual(op.headers, Buffer.from(HDR));
  t.deepEqual(op.payload, Buffer.from('hello'));
});

const badHsend: BadCase[] = [
  { input: 'HSEND\r\n', code: E.BadPayloadArguments, fatal: true },
  { input: 'HSEND q\r\n', code: E.BadPayloadArguments, fatal: true },
  // One size only: where the header block ends is unknown (C3.2).
  { input: 'HSEND q 5\r\nhello\r\n', code: E.BadPayloadArguments, fatal: true },
  { input: 'HSEND q id=1 5\r\nhello\r\n', code: E.BadPayloadArguments, fatal: true },
  { input: 'HSEND q 6 5\r\n', code: E.BadPayloadArguments, fatal: true },
  { input: 'HSEND q x 5\r\n', code: E.BadPayloadArguments, fatal: true },
  { input: 'HSEND q 0 -1\r\n', code: E.BadPayloadArguments, fatal: true },
  { input: 'HSEND q 1.5 2\r\n', code: E.BadPayloadArguments, fatal: true },
  { input: 'HSEND q 0 12345678901\r\n', code: E.BadPayloadArguments, fatal: true },
  // Destination, seven options and two sizes: ten arguments, more than any HSEND takes.
  { input: 'HSEND q a=1 b=2 c=3 d=4 e=5 f=6 g=7 0 1\r\nx\r\n', code: E.BadPayloadArguments, fatal: true },
  // C1.6: the total, headers included, against max_payload, from the control line.
  { input: 'HSEND q 12 17\r\n', code: E.MaxPayload, fatal: true, limits: SMALL },
  { input: 'HSEND q 0 17\r\n', code: E.MaxPayload, fatal: true, limits: SMALL },
  { input: 'HSEND q 12 12\r\nNATS/1.0\r\n\r\nx\r\n', code: E.PayloadTerminator, fatal: true },
  { input: `HSEND q ${'x'.repeat(70)} 0 1\r\n`, code: E.MaxControlLine, fatal: true, limits: SMALL },
];

test('D3.9/C6.3 an HSEND whose body cannot be found is fatal; later input is ignored', (t) => {
  for (const c of badHsend) {
    const input = `${c.input}PING\r\nHSEND q 0 1\r\nx\r\n`;
    const { events, parser } = parse([b(input)], c.limits ?? LIMITS);
    t.deepEqual(events, [{ kind: 'error', code: c.code, fatal: c.fatal }], c.input);
    t.is(parser.state, ParserState.Closed, c.input);
  }
});

test('D3.9/C1.6 an HSEND total of exactly max_payload is accepted, headers counted', (t) => {
  const { events } = parse([b('HSEND q 12 16\r\nNATS/1.0\r\n\r\nabcd\r\n')], SMALL);
  t.deepEqual(events, [hsend('q', [], 'NATS/1.0\r\n\r\n', 'abcd')]);
});

test('D3.9/C7.3 the HSEND argument error says what was expected', (t) => {
  const { rec } = parse([b('HSEND q 5\r\n')]);
  t.deepEqual(errorTexts(rec), [
    'Invalid HSEND arguments, expected: HSEND <destination> [id=<id>] [priority=<1-10>] [ttl=<dur>] [delay=<dur>] <#header-bytes> <#total-bytes>',
  ]);
});

test('D3.9 nine HSEND arguments (destination, six options, two sizes) are accepted', (t) => {
  const { events } = parse([b('HSEND q a=1 b=2 c=3 d=4 e=5 f=6 0 1\r\nx\r\n')]);
  t.deepEqual(events, [hsend('q', ['a=1', 'b=2', 'c=3', 'd=4', 'e=5', 'f=6'], '', 'x')]);
});
