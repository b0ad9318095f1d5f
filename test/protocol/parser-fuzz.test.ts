/**
 * Mutation fuzzing of the client protocol parser (protocol/CLIENT.md C1.4-
 * C1.6, C6; DURABLE.md D3.1, D4.1): streams of valid frames of every verb,
 * mutated, fed whole and in random chunks with small random limits
 * (test/fuzz/parser-fuzzer.ts). No throw; never more held than a control
 * line or a declared payload; a fatal error is the last event and the
 * parser stays closed, after a non-fatal one it goes on; chunking never
 * changes the events. `npm run fuzz -- --only parser` runs it for longer.
 *
 * SWARMMQ_FUZZ_SEED and SWARMMQ_FUZZ_ROUNDS change the run.
 */
import test from 'ava';
import { fuzzers } from '../fuzz/fuzzers.js';

const SEED = Number(process.env.SWARMMQ_FUZZ_SEED ?? 4242);
const ROUNDS = Number(process.env.SWARMMQ_FUZZ_ROUNDS ?? 1500);

test('C1.4-C1.6, C6 seeded mutated streams: no throw, bounded buffers, errors stop or skip as specified', async (t) => {
  const s = await fuzzers.parser!(SEED, ROUNDS);
  t.log(
    `seed ${s.seed}: ${s.runs} streams, ${s.accepted} without errors, ${s.refused} with errors, ${s.ms} ms`,
  );
  t.true(s.accepted > 0 && s.refused > 0, 'both paths taken');
});
