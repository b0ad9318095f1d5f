/**
 * Every fuzzer, by name: what the ava tests (test/mesh/decoders-fuzz.test.ts,
 * test/protocol/parser-fuzz.test.ts) run briefly and test/fuzz/run.ts runs
 * for as long as it is asked. Each takes (seed, count[, first run]) and
 * returns a summary, or throws FuzzFailure with the seed, run and input.
 */
import { engine } from './engine-fuzzer.js';
import { channel, frames, schema } from './mesh-fuzzers.js';
import { parser } from './parser-fuzzer.js';
import type { Fuzzer } from './runner.js';
import { durable, handoff, handoffSync, membership, replica, routes } from './service-fuzzers.js';

export { FuzzFailure, type Fuzzer, type FuzzSummary } from './runner.js';

export const fuzzers: Readonly<Record<string, Fuzzer>> = {
  frames,
  channel,
  schema,
  routes,
  durable,
  replica,
  handoff,
  'handoff-sync': handoffSync,
  membership,
  engine,
  parser,
};
