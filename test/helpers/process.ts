/**
 * Helpers for tests that run the real `swarmmq` command in a child process:
 * spawn it, read its JSON log lines, wait for one, and make sure it is gone
 * when the test ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';

/** The compiled CLI entry (tests run from dist/test). */
export const CLI = path.resolve(import.meta.dirname, '../../src/cli/main.js');

export interface CliProcess {
  child: ChildProcess;
  stdout: string[];
  stderr: string;
  /** Resolves with the exit code (or the signal name) when the process ends. */
  exited: Promise<number | string>;
  /** Waits for a JSON log line for which `match` is true and returns it. */
  waitForLog(
    match: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
}

export function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'swarmmq-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A standalone node (`--mesh false`) through the real CLI, on port 0 and a
 * data dir of its own unless `dataDir` is given, with `args` after those.
 */
export function runStandalone(
  t: ExecutionContext,
  args: string[] = [],
  opts: { dataDir?: string; env?: Record<string, string> } = {},
): CliProcess {
  const dataDir = opts.dataDir ?? tempDir(t);
  return runCli(t, ['start', '--port', '0', '--data-dir', dataDir, '--mesh', 'false', ...args], opts.env);
}

export function runCli(t: ExecutionContext, args: string[], env: Record<string, string> = {}): CliProcess {
  const child = spawn(process.execPath, [CLI, ...args], {
    // A cluster name of its own, so nodes of concurrent tests never find each other (MESH.md M1.3).
    // and a registry directory of its own, removed with the test, so nothing is left in the OS temp dir.
    env: {
      PATH: process.env.PATH ?? '',
      SWARMMQ_CLUSTER: `test-${randomBytes(4).toString('hex')}`,
      SWARMMQ_REGISTRY_DIR: tempDir(t),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc: CliProcess = {
    child,
    stdout: [],
    stderr: '',
    exited: new Promise((resolve) =>
      // 'close', not 'exit': by then stdout and stderr are read to the end.
      child.once('close', (code, signal) => resolve(code ?? signal ?? 'unknown')),
    ),
    waitForLog: (match, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const check = (): boolean => {
          for (const l of proc.stdout) {
            try {
              const j = JSON.parse(l) as Record<string, unknown>;
              if (match(j)) {
                resolve(j);
                return true;
              }
            } catch {
              // not a JSON line
            }
          }
          return false;
        };
        if (check()) return;
        const timer = setTimeout(() => {
          child.stdout?.off('data', onData);
          reject(
            new Error(
              `timed out waiting for a log line; stdout: ${proc.stdout.join('\n')} stderr: ${proc.stderr}`,
            ),
          );
        }, timeoutMs);
        const onData = (): void => {
          if (check()) {
            clearTimeout(timer);
            child.stdout?.off('data', onData);
          }
        };
        child.stdout?.on('data', onData);
        void proc.exited.then(() => {
          if (!check()) {
            clearTimeout(timer);
            reject(new Error(`process exited; stdout: ${proc.stdout.join('\n')} stderr: ${proc.stderr}`));
          }
        });
      }),
  };
  let partial = '';
  // Registered before waitForLog's listener, so lines are split before they are checked.
  child.stdout!.on('data', (d: Buffer) => {
    partial += d.toString();
    const lines = partial.split('\n');
    partial = lines.pop()!;
    proc.stdout.push(...lines.filter((l) => l.length > 0));
  });
  child.stderr!.on('data', (d: Buffer) => {
    proc.stderr += d.toString();
  });
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await proc.exited;
    }
  });
  return proc;
}
