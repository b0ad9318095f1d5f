/**
 * Runs the real `swarmmq` command once, to its end, with a given stdin:
 * for the client subcommands (pub, sub, send, pull, bench), whose output is
 * what a test checks. (helpers/process.ts runCli is for long-lived nodes.)
 */
import { spawn } from 'node:child_process';
import type { ExecutionContext } from 'ava';
import { CLI } from './process.js';

export interface CliRun {
  /** The exit code, or the signal name. */
  code: number | string;
  stdout: string;
  stderr: string;
}

/** `input` goes to stdin, which is closed either way; `env` is all the environment it gets, besides PATH. */
export async function cliOnce(
  t: ExecutionContext,
  args: string[],
  opts: { input?: string; env?: Record<string, string> } = {},
): Promise<CliRun> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? '', ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(opts.input ?? '');
  // 'close', not 'exit': by then stdout and stderr are read to the end.
  const code = await new Promise<number | string>((resolve) =>
    child.once('close', (c, signal) => resolve(c ?? signal ?? 'unknown')),
  );
  return { code, stdout, stderr };
}

/** Runs several independent commands, a few at a time (each is a whole Node.js process). */
export async function cliEach(t: ExecutionContext, argsList: string[][], atOnce = 4): Promise<CliRun[]> {
  const out: CliRun[] = [];
  for (let i = 0; i < argsList.length; i += atOnce) {
    out.push(...(await Promise.all(argsList.slice(i, i + atOnce).map((args) => cliOnce(t, args)))));
  }
  return out;
}
