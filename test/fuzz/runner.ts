/**
 * How every fuzzer runs: `count` runs from `first`, each with a PRNG of its
 * own seeded from (seed, run), so one failing run replays alone. A run
 * returns whether its input was accepted or refused; anything it throws is
 * a FuzzFailure carrying the fuzzer, seed, run and the input it was given.
 */
import { Rand, runSeed, show } from './mutate.js';

export interface FuzzSummary {
  fuzzer: string;
  seed: number;
  runs: number;
  /** Inputs the code under test took (decoded, applied). */
  accepted: number;
  /** Inputs it refused as it should (FrameError, MalformedMessage, a ProtocolError event...). */
  refused: number;
  ms: number;
}

/** (seed, count[, first run]) -> summary; throws FuzzFailure. */
export type Fuzzer = (seed: number, count: number, first?: number) => Promise<FuzzSummary>;

export class FuzzFailure extends Error {
  override name = 'FuzzFailure';
  constructor(
    readonly fuzzer: string,
    readonly seed: number,
    readonly run: number,
    readonly input: string,
    readonly reason: unknown,
  ) {
    const why = reason instanceof Error ? (reason.stack ?? reason.message) : String(reason);
    super(
      `${fuzzer} failed at seed ${seed}, run ${run} (replay it alone: --only ${fuzzer} --seed ${seed} --run ${run}; ` +
        `with the runs before it: --only ${fuzzer} --seed ${seed} --count ${run + 1} --seconds 0)\n${why}\ninput: ${input}`,
    );
  }
}

export interface Run {
  rand: Rand;
  run: number;
  /** Records the input (shown only if the run fails). */
  input(v: unknown): void;
}

export type Outcome = 'accepted' | 'refused';

/** Runs `one` for each run; `after` checks what must hold once all ran (state bounded, nothing pending). */
export async function fuzz(
  fuzzer: string,
  seed: number,
  count: number,
  first: number,
  one: (r: Run) => Outcome | Promise<Outcome>,
  after?: () => void | Promise<void>,
): Promise<FuzzSummary> {
  const started = Date.now();
  const summary: FuzzSummary = { fuzzer, seed, runs: 0, accepted: 0, refused: 0, ms: 0 };
  let input: unknown;
  for (let run = first; run < first + count; run++) {
    input = undefined;
    try {
      const outcome = await one({ rand: new Rand(runSeed(seed, run)), run, input: (v) => (input = v) });
      summary[outcome]++;
      summary.runs++;
    } catch (err) {
      throw new FuzzFailure(fuzzer, seed, run, show(input), err);
    }
  }
  try {
    await after?.();
  } catch (err) {
    throw new FuzzFailure(fuzzer, seed, first + count - 1, '(after all runs)', err);
  }
  summary.ms = Date.now() - started;
  return summary;
}
