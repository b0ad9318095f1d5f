/**
 * The fuzzers of fuzzers.ts for as long as asked (the ava tests run each
 * briefly). Prints progress every few seconds and a summary; exits 1 on the
 * first failure with the fuzzer, seed, run and input.
 *
 *   npm run build && npm run fuzz -- --seconds 300 --seed 42
 *   node dist/test/fuzz/run.js --only schema,engine --seconds 60
 *   node dist/test/fuzz/run.js --only routes --seed 42 --run 1234   (one run again)
 *
 * Each batch is `--count` runs of one fuzzer, continuing that fuzzer's run
 * numbers, so a seed and a run number name one input. A few fuzzers keep
 * state across the runs of a batch (the routes' subject index, the engine's
 * store): replaying one run alone starts from empty state.
 */
import { parseArgs } from 'node:util';
import { FuzzFailure, fuzzers, type FuzzSummary } from './fuzzers.js';

const PROGRESS_EVERY_MS = 5000;

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    seed: { type: 'string' },
    count: { type: 'string', default: '500' },
    only: { type: 'string' },
    run: { type: 'string' },
  },
});

const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);
const seconds = Number(values.seconds);
const count = Number(values.count);
const names = values.only === undefined ? Object.keys(fuzzers) : values.only.split(',');
for (const n of names) {
  if (fuzzers[n] === undefined) {
    console.error(`unknown fuzzer ${n}; known: ${Object.keys(fuzzers).join(', ')}`);
    process.exit(2);
  }
}
if (![seed, seconds, count].every(Number.isSafeInteger) || count < 1) {
  console.error('--seed, --seconds and --count take whole numbers');
  process.exit(2);
}

let current = '';
// A throw from a timer (the engine's, a channel's) is a failure of the fuzzer that was running.
process.on('uncaughtException', (err) => {
  console.error(
    `\nFAILED: uncaught exception while ${current} ran (seed ${seed}):\n${err.stack ?? String(err)}`,
  );
  process.exit(1);
});

const totals = new Map<string, FuzzSummary>(
  names.map((n) => [n, { fuzzer: n, seed, runs: 0, accepted: 0, refused: 0, ms: 0 }]),
);

function line(): string {
  const mb = Math.round(process.memoryUsage().rss / 1024 / 1024);
  return `${[...totals.values()].map((t) => `${t.fuzzer} ${t.runs}`).join(', ')}; rss ${mb} MB`;
}

async function main(): Promise<void> {
  console.log(
    `fuzzing ${names.join(', ')} with seed ${seed}${values.run === undefined ? ` for ${seconds} s` : ''}`,
  );
  if (values.run !== undefined) {
    current = names[0]!;
    const s = await fuzzers[current]!(seed, 1, Number(values.run));
    console.log(`run ${values.run} of ${current}: ${s.accepted === 1 ? 'accepted' : 'refused'}, no failure`);
    return;
  }
  const started = Date.now();
  let lastProgress = started;
  // At least one batch of each (--seconds 0: exactly one).
  for (let batch = 0; batch === 0 || Date.now() - started < seconds * 1000; batch++) {
    for (const n of names) {
      current = n;
      const s = await fuzzers[n]!(seed, count, batch * count);
      const t = totals.get(n)!;
      t.runs += s.runs;
      t.accepted += s.accepted;
      t.refused += s.refused;
      t.ms += s.ms;
      if (Date.now() - lastProgress >= PROGRESS_EVERY_MS) {
        lastProgress = Date.now();
        console.log(`${Math.round((lastProgress - started) / 1000)} s: ${line()}`);
      }
      if (batch > 0 && Date.now() - started >= seconds * 1000) break;
    }
  }
  console.log(`\nno failure in ${Math.round((Date.now() - started) / 1000)} s (seed ${seed}):`);
  for (const t of totals.values()) {
    console.log(
      `  ${t.fuzzer.padEnd(13)} ${String(t.runs).padStart(9)} runs, ${t.accepted} accepted, ${t.refused} refused, ${t.ms} ms`,
    );
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    if (err instanceof FuzzFailure) console.error(`\nFAILED: ${err.message}`);
    else console.error(`\nFAILED: ${current} (seed ${seed}) threw:\n${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
