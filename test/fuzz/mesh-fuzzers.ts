/**
 * Fuzzers of what a node decodes from the mesh, below the services: the
 * frame decoder (M4.1), the channel that matches answers to requests (M4.4)
 * and every message checker of src/mesh/schema.ts (M4.6; the cases are in
 * schema-cases.ts), each fed mutated forms of the messages the protocols
 * build (samples.ts).
 */
import { encodeFrame, FrameDecoder, FrameError, FrameKind, type Frame } from '../../src/mesh/codec.js';
import { Channel, MalformedMessage, type ChannelHandlers } from '../../src/mesh/channel.js';
import type { Stream } from '@libp2p/interface';
import * as C from './contracts.js';
import { silentLog, type Sample } from './fakes.js';
import { mutateBytes, mutateJson, nested, randomSplits, type Rand } from './mutate.js';
import { fuzz, type FuzzSummary, type Outcome } from './runner.js';
import { samples } from './samples.js';
import { schemaCases } from './schema-cases.js';

type Head = Record<string, unknown>;

/** Every sample as a frame would carry it. */
async function allFrames(): Promise<Sample[]> {
  const s = await samples();
  return [
    ...s.route,
    ...s.replica,
    ...[...s.durable, ...s.handoff].flatMap((e) => [
      e.request,
      { method: '', head: e.answer.head ?? {}, data: e.answer.data ?? Buffer.alloc(0) },
    ]),
  ];
}

// ---- frames (M4.1) ------------------------------------------------------------

/** A frame whose head is the given JSON text (encodeFrame cannot make one deeper than JSON.stringify goes). */
function rawFrame(kind: number, id: number, headText: string, data: Buffer): Buffer {
  const json = Buffer.from(headText);
  const out = Buffer.alloc(13 + json.length + data.length);
  out.writeUInt32BE(out.length - 4, 0);
  out[4] = kind;
  out.writeUInt32BE(id, 5);
  out.writeUInt32BE(json.length, 9);
  json.copy(out, 13);
  data.copy(out, 13 + json.length);
  return out;
}

/** 1-4 frames the protocols build, mutated as bytes, pushed in random chunks into a decoder with a random limit. */
export async function frames(seed: number, count: number, first = 0): Promise<FuzzSummary> {
  const pool = await allFrames();
  return fuzz('frames', seed, count, first, ({ rand, input }) => {
    const limit = rand.pick([64, 512, 4096, 64 * 1024, 1024 * 1024]);
    const parts = Array.from({ length: 1 + rand.int(4) }, () => {
      const s = rand.pick(pool);
      const kind = 1 + rand.int(4);
      if (rand.chance(0.02)) {
        const depth = 1 + rand.int(50_000);
        return rawFrame(kind, 1, `{"m":"${s.method}","x":${'['.repeat(depth)}${']'.repeat(depth)}}`, s.data);
      }
      const head = rand.chance(0.3) ? mutateJson(s.head, rand) : s.head;
      return encodeFrame(kind as FrameKind, rand.int(2 ** 32), head, s.data);
    });
    const whole = Buffer.concat(parts);
    const bytes = rand.chance(0.8) ? mutateBytes(whole, rand) : whole;
    input({ limit, bytes });
    const d = new FrameDecoder(limit);
    const got: Frame[] = [];
    try {
      for (const chunk of randomSplits(bytes, rand)) {
        d.push(chunk, (f) => got.push(f));
        C.check(
          d.bufferedBytes <= 4 + limit,
          `decoder holds ${d.bufferedBytes} bytes past a ${limit}-byte limit`,
        );
      }
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      C.check(d.bufferedBytes === 0, 'a refusing decoder still holds bytes');
      return 'refused';
    }
    for (const f of got) {
      C.check(f.kind >= 1 && f.kind <= 4 && f.data.length <= limit, 'a frame out of its limits');
      C.check(
        typeof f.head === 'object' && f.head !== null && !Array.isArray(f.head),
        'a head that is not an object',
      );
    }
    if (bytes === whole && parts.every((p) => p.length - 4 <= limit)) {
      C.check(got.length === parts.length && d.bufferedBytes === 0, 'valid frames not all decoded');
    }
    return 'accepted';
  });
}

// ---- channel (M4.4) -------------------------------------------------------------

class FakeStream extends EventTarget {
  readonly sent: Uint8Array[] = [];
  send(b: Uint8Array): boolean {
    this.sent.push(b);
    return true;
  }
  abort(err: Error): void {
    this.dispatchEvent(Object.assign(new Event('close'), { error: err }));
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * A channel with requests out gets mutated answers (replies, failures with
 * any head), events and requests: nothing escapes its listener, and every
 * request it made settles once its answer frame is decoded or the channel
 * closes: a caller is never left waiting.
 */
export async function channel(seed: number, count: number, first = 0): Promise<FuzzSummary> {
  const pool = await allFrames();
  const handlers: ChannelHandlers = {
    request: (method, head) => {
      if (method === 'throw') throw new MalformedMessage('m');
      return { head: { echo: Object.keys(head).length } };
    },
    event: (method) => {
      if (method === 'throw') throw new MalformedMessage('m');
    },
  };
  const limits = { maxFrameBytes: 64 * 1024, maxPendingBytes: 1 << 20, requestTimeoutMs: 60_000 };
  return fuzz('channel', seed, count, first, async ({ rand, input }) => {
    const stream = new FakeStream();
    const ch = new Channel(stream as unknown as Stream, handlers, limits, silentLog);
    const settled: boolean[] = [];
    const calls = Array.from({ length: 1 + rand.int(3) }, (_, i) => {
      settled[i] = false;
      return ch.request('q', {}).then(
        () => (settled[i] = true),
        () => (settled[i] = true),
      );
    });
    const answers = calls.map((_, i) => {
      const failure = rand.chance(0.6);
      const base = failure
        ? { name: 'DurableError', message: 'x', code: 'INVALID_OPTION' }
        : rand.pick(pool).head;
      const head = rand.chance(0.9) ? mutateJson(base, rand, [{ message: 'a\r\nb', name: 'n' }]) : base;
      return encodeFrame(failure ? FrameKind.Failure : FrameKind.Reply, i + 1, head);
    });
    const noise = Array.from({ length: rand.int(4) }, () => {
      const s = rand.pick(pool);
      const head = { ...s.head, m: rand.chance(0.2) ? 'throw' : s.method };
      return encodeFrame(
        rand.pick([FrameKind.Event, FrameKind.Request]),
        rand.int(100),
        mutateJson(head, rand),
        s.data,
      );
    });
    const whole = Buffer.concat([...answers, ...noise].sort(() => rand.float() - 0.5));
    const bytes = rand.chance(0.3) ? mutateBytes(whole, rand) : whole;
    input(bytes);
    for (const chunk of randomSplits(bytes, rand)) {
      stream.dispatchEvent(Object.assign(new Event('message'), { data: chunk }));
    }
    await tick();
    await tick();
    // Intact bytes: every answer frame was decoded (or a bad head closed the channel).
    if (bytes === whole) C.check(settled.every(Boolean), 'a request got its answer frame and never settled');
    const inbound = (ch as unknown as { inboundRequests: number }).inboundRequests;
    C.check(inbound === 0, `${inbound} of the peer's requests still counted as being handled`);
    ch.close();
    await Promise.all(calls);
    C.check(settled.every(Boolean), 'a request never settled after the channel closed');
    C.check((ch as unknown as { pending: Map<number, unknown> }).pending.size === 0, 'requests left pending');
    // What the channel wrote back is well formed: answers to the peer's requests.
    const out = new FrameDecoder(64 * 1024 * 1024);
    for (const b of stream.sent) {
      out.push(b, (f) => {
        if (f.kind === FrameKind.Failure)
          C.check(typeof f.head.name === 'string', 'a failure without a name');
      });
    }
    return bytes === whole ? 'accepted' : 'refused';
  });
}

// ---- schema (M4.6) ---------------------------------------------------------------

/**
 * A sample mutated as a peer could send it: the head (and sometimes the
 * data), then through JSON as on the wire. With `deep`, now and then a
 * field holds 20,000 nested arrays, which JSON.parse (the frame decoder)
 * takes and JSON.stringify or structuredClone cannot: no decoder may hand
 * such a value on.
 */
export function mutated(
  rand: Rand,
  sample: Sample,
  donors: readonly unknown[],
  deep = true,
): { head: Head; data: Buffer } {
  const head = rand.chance(0.95) ? mutateJson(sample.head, rand, donors) : sample.head;
  const data = rand.chance(0.2) ? mutateBytes(sample.data, rand) : sample.data;
  const wire = JSON.parse(JSON.stringify(head) ?? 'null') as unknown;
  // The frame decoder refuses any other head (M4.1).
  const isObject = typeof wire === 'object' && wire !== null && !Array.isArray(wire);
  const out = isObject ? (wire as Head) : {};
  if (deep && rand.chance(0.03)) {
    const holders = [
      out,
      ...Object.values(out).filter(
        (v): v is Head => typeof v === 'object' && v !== null && !Array.isArray(v),
      ),
    ];
    const holder = rand.pick(holders);
    const keys = Object.keys(holder);
    holder[keys.length > 0 && rand.chance(0.8) ? rand.pick(keys) : 'deep'] = DEEP;
  }
  return { head: out, data };
}

const DEEP = nested(20_000);

/** Each message checker, given mutated heads: refused with MalformedMessage, or accepted and fit for its consumer. */
export async function schema(seed: number, count: number, first = 0): Promise<FuzzSummary> {
  const cases = await schemaCases();
  const donors = cases.map((x) => x.sample.head);
  return fuzz('schema', seed, count, first, ({ rand, input }): Outcome => {
    const c = rand.pick(cases);
    const { head, data } = mutated(rand, c.sample, donors);
    input({ case: c.name, head, data });
    let out: unknown;
    try {
      out = c.decode(head, data);
    } catch (err) {
      if (!(err instanceof MalformedMessage)) throw err;
      return 'refused';
    }
    c.check(out, data);
    C.prototypeClean(c.name);
    return 'accepted';
  });
}
