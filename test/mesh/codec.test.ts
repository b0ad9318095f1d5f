/**
 * The mesh frame codec (protocol/MESH.md M4.1): round trips, frames split at
 * every byte, and refusals of bad or oversized frames before buffering them,
 * plus seeded random mutations of valid frames (never a crash other than
 * FrameError, never a frame longer than the limit).
 */
import test from 'ava';
import { encodeFrame, FrameDecoder, FrameError, FrameKind, type Frame } from '../../src/mesh/codec.js';
import { prng } from '../helpers/prng.js';

const LIMIT = 64 * 1024;

function decodeAll(chunks: Buffer[], limit = LIMIT): Frame[] {
  const d = new FrameDecoder(limit);
  const out: Frame[] = [];
  for (const c of chunks) d.push(c, (f) => out.push(f));
  return out;
}

test('M4.1 a frame round-trips: kind, id, head and data', (t) => {
  const data = Buffer.from([0, 1, 2, 255]);
  const [f] = decodeAll([encodeFrame(FrameKind.Request, 0xfffffffe, { m: 'send', x: [1, 'a'] }, data)]);
  t.is(f!.kind, FrameKind.Request);
  t.is(f!.id, 0xfffffffe);
  t.deepEqual(f!.head, { m: 'send', x: [1, 'a'] });
  t.deepEqual([...f!.data], [...data]);
});

test('M4.1 several frames split at every byte decode the same', (t) => {
  const frames = [
    encodeFrame(FrameKind.Event, 0, { m: 'msg', s: 'a.b' }, Buffer.from('hello')),
    encodeFrame(FrameKind.Reply, 7, {}),
    encodeFrame(FrameKind.Failure, 8, { name: 'DurableError', message: 'x' }, Buffer.alloc(300, 1)),
  ];
  const all = Buffer.concat(frames);
  const whole = decodeAll([all]);
  t.is(whole.length, 3);
  for (let i = 0; i <= all.length; i++) {
    const split = decodeAll([all.subarray(0, i), all.subarray(i)]);
    t.deepEqual(
      split.map((f) => [f.kind, f.id, f.head, f.data.toString('hex')]),
      whole.map((f) => [f.kind, f.id, f.head, f.data.toString('hex')]),
    );
  }
  // One byte at a time.
  t.is(decodeAll([...all].map((b) => Buffer.from([b]))).length, 3);
});

test('M4.1 a length over the limit is refused from its first four bytes', (t) => {
  const d = new FrameDecoder(LIMIT);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(1024 * 1024 * 1024, 0); // a gigabyte announced
  const err = t.throws(() => d.push(head, () => t.fail()));
  t.true(err instanceof FrameError);
  t.regex(err.message, /outside/);
});

test('M4.1 unknown kinds, heads beyond the frame and non-object heads are refused', (t) => {
  const bad: Buffer[] = [];
  const kind = encodeFrame(FrameKind.Event, 0, {});
  kind[4] = 9;
  bad.push(kind);
  const headLen = encodeFrame(FrameKind.Event, 0, {});
  headLen.writeUInt32BE(1000, 9);
  bad.push(headLen);
  const notJson = encodeFrame(FrameKind.Event, 0, { a: 1 });
  notJson[13] = 0x7b + 1; // '|' instead of '{'
  bad.push(notJson);
  const arr = Buffer.concat([encodeFrame(FrameKind.Event, 0, {})]);
  const arrHead = Buffer.from('[1]');
  const arrFrame = Buffer.alloc(13 + arrHead.length);
  arrFrame.writeUInt32BE(arrFrame.length - 4, 0);
  arrFrame[4] = FrameKind.Event;
  arrFrame.writeUInt32BE(arrHead.length, 9);
  arrHead.copy(arrFrame, 13);
  bad.push(arrFrame);
  void arr;
  for (const b of bad) t.throws(() => decodeAll([b]), { instanceOf: FrameError });
});

test('M4.1 seeded mutations of valid frames: only FrameError, never an oversized frame', (t) => {
  const seed = Number(process.env.SWARMMQ_FUZZ_SEED ?? 4242);
  const rounds = Number(process.env.SWARMMQ_FUZZ_ROUNDS ?? 3000);
  const rand = prng(seed);
  t.log(`seed ${seed}, ${rounds} rounds (SWARMMQ_FUZZ_SEED / SWARMMQ_FUZZ_ROUNDS for a longer run)`);
  let refused = 0;
  let decoded = 0;
  for (let r = 0; r < rounds; r++) {
    const valid = encodeFrame(
      (1 + Math.floor(rand() * 4)) as FrameKind,
      Math.floor(rand() * 2 ** 32),
      { m: 'msg', s: `s.${r}`, n: r },
      Buffer.alloc(Math.floor(rand() * 200), r & 0xff),
    );
    const b = Buffer.from(valid);
    const flips = 1 + Math.floor(rand() * 4);
    for (let i = 0; i < flips; i++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
    const cut = Math.floor(rand() * b.length);
    try {
      for (const f of decodeAll([b.subarray(0, cut), b.subarray(cut)], 4096)) {
        decoded++;
        if (f.data.length > 4096) t.fail('a frame beyond the limit was decoded');
      }
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      refused++;
    }
  }
  t.log(`${decoded} frames decoded, ${refused} inputs refused`);
  t.true(refused > 0);
});
