/**
 * Helpers for attack tests (test/security/attacks.test.ts): a node in a
 * process of its own whose memory is read from /proc, attacking connections
 * from loopback addresses of their own, a bounded writer that streams until
 * the node cuts it off, and `underAttack`, which repeats an attack until a
 * Bystander has made progress under it.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import type { ExecutionContext } from 'ava';
import type { Bystander } from './bystander.js';
import { runStandalone, type CliProcess } from './process.js';
import { RawClient } from './wire.js';

export const MiB = 1024 * 1024;
/** How much an attack may make the node's resident memory grow: far below the 1 GB it asks for. */
export const MAX_RSS_GROWTH_BYTES = 100 * MiB;
/** Longest an attack is repeated while waiting for the bystander to make progress under it. */
export const ATTACK_WINDOW_MS = 15_000;
/** Bystander rounds that must complete while an attack goes on. */
export const ROUNDS_UNDER_ATTACK = 20;

let attackers = 0;

/** A loopback address of its own for each attacking connection (127.1.0.1, 127.1.0.2, ...). */
export function attackerAddress(): string {
  const n = attackers++;
  return `127.1.${Math.floor(n / 250)}.${(n % 250) + 1}`;
}

export interface ChildNode {
  p: CliProcess;
  port: number;
  pid: number;
}

/** A standalone node in a process of its own, so its memory can be read from /proc. */
export async function startChildNode(t: ExecutionContext, args: string[] = []): Promise<ChildNode> {
  const p = runStandalone(t, args);
  const line = await p.waitForLog((l) => l.msg === 'node started');
  return { p, port: line.port as number, pid: p.child.pid! };
}

/** The node survived the attack: it still runs, and stops cleanly on SIGTERM. */
export async function stopCleanly(t: ExecutionContext, node: ChildNode): Promise<void> {
  t.is(node.p.child.exitCode, null, 'the node is still running');
  node.p.child.kill('SIGTERM');
  t.is(await node.p.exited, 0, 'the node stops cleanly');
}

/** Resident memory now and its peak so far (VmHWM), in bytes. */
export function memoryBytes(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const kib = (field: string): number => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    if (m === null) throw new Error(`no ${field} in /proc/${pid}/status`);
    return Number(m[1]) * 1024;
  };
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

/** Checks that the node's peak resident memory since `before` grew by less than the bound. */
export function assertMemoryBounded(t: ExecutionContext, node: ChildNode, before: { rss: number }): void {
  const after = memoryBytes(node.pid);
  const growth = after.peak - before.rss;
  t.log(`node RSS before ${mib(before.rss)}, peak ${mib(after.peak)}, now ${mib(after.rss)} MiB`);
  t.true(growth < MAX_RSS_GROWTH_BYTES, `peak RSS grew by ${mib(growth)} MiB`);
}

export function mib(bytes: number): string {
  return (bytes / MiB).toFixed(1);
}

/** How many of the node's JSON log lines match. */
export function countLogs(p: CliProcess, match: (l: Record<string, unknown>) => boolean): number {
  let n = 0;
  for (const line of p.stdout) {
    try {
      if (match(JSON.parse(line) as Record<string, unknown>)) n++;
    } catch {
      // not a JSON line
    }
  }
  return n;
}

export const closedFor =
  (reason: string) =>
  (l: Record<string, unknown>): boolean =>
    l.msg === 'connection closed' && l.reason === reason;

/**
 * Writes `chunk` again and again until the socket stops being writable (the
 * node cut it off), `maxBytes` are written or `timeoutMs` passes; yields after
 * every chunk and waits for 'drain' when the socket buffer is full.
 */
export async function streamUntilClosed(
  socket: net.Socket,
  chunk: Buffer,
  maxBytes: number,
  timeoutMs = 10_000,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let written = 0;
  while (written < maxBytes && socket.writable && Date.now() < deadline) {
    written += chunk.length;
    if (socket.write(chunk)) {
      await new Promise((r) => setImmediate(r));
      continue;
    }
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        socket.off('drain', done);
        socket.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
      socket.once('drain', done);
      socket.once('close', done);
    });
  }
  return written;
}

/**
 * Repeats `attack` (at least `minTimes`, at most `maxTimes` times, within
 * ATTACK_WINDOW_MS) until `done()` holds and the bystander has completed
 * `rounds` rounds since the first attack began: its progress is measured while
 * the attack goes on, not after it. Returns how often the attack ran.
 */
export async function underAttack(
  b: Bystander,
  opts: { minTimes: number; maxTimes: number; rounds?: number; done?: () => boolean },
  attack: (i: number) => Promise<void>,
): Promise<number> {
  const target = b.rounds + (opts.rounds ?? ROUNDS_UNDER_ATTACK);
  const deadline = Date.now() + ATTACK_WINDOW_MS;
  let i = 0;
  while (i < opts.minTimes || b.rounds < target || (opts.done !== undefined && !opts.done())) {
    b.check();
    if (i >= opts.maxTimes || Date.now() > deadline) {
      throw new Error(
        `after ${i} attacks: bystander rounds ${b.rounds} of ${target}, done ${opts.done?.() ?? true}`,
      );
    }
    await attack(i++);
  }
  return i;
}

/** Opens an attacking connection, sends `head`, streams `filler` after it, and expects `-ERR '<text>'` and the close. */
export async function expectRefused(
  t: ExecutionContext,
  port: number,
  head: string,
  filler: Buffer,
  maxBytes: number,
  text: string,
  connect?: Record<string, unknown>,
): Promise<void> {
  const [c] = await RawClient.open(t, port, connect, attackerAddress());
  c.send(head);
  const streaming = streamUntilClosed(c.socket, filler, maxBytes);
  await c.expect(new RegExp(`^-ERR '${text}'\\r\\n$`), 10_000);
  await c.waitClosed(10_000);
  await streaming;
  c.socket.destroy();
}

/** A connection that never sends and never reads: paused before it connects, so not a byte is read. */
export async function openMute(
  t: ExecutionContext,
  port: number,
): Promise<{ socket: net.Socket; closed: () => boolean }> {
  const socket = net.connect({ host: '127.0.0.1', port, localAddress: attackerAddress() });
  socket.pause();
  let closed = false;
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  t.teardown(() => {
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, closed: () => closed };
}
