/**
 * Helpers for tests of the monitoring endpoints and `swarmmq status`
 * (protocol/MONITORING.md): GET a JSON endpoint, find a cluster node's
 * monitoring address and name in its `node started` line, ask OWNER, and
 * run a shared cluster from a `before` hook.
 */
import type { ExecutionContext } from 'ava';
import type { ClusterNode } from './cluster.js';
import { RawClient } from './wire.js';

export interface JsonAnswer {
  status: number;
  body: Record<string, unknown>;
  text: string;
}

/** GETs `path` from a monitoring address (`host:port`) or port and parses the JSON. */
export async function getJson(monitor: string | number, path: string): Promise<JsonAnswer> {
  const address = typeof monitor === 'number' ? `127.0.0.1:${monitor}` : monitor;
  const res = await fetch(`http://${address}${path}`, { signal: AbortSignal.timeout(15_000) });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as Record<string, unknown>, text };
}

/** GETs `path` and returns the body as text, whatever its type (e.g. /metrics). */
export async function getText(monitor: string, path: string): Promise<string> {
  const res = await fetch(`http://${monitor}${path}`, { signal: AbortSignal.timeout(15_000) });
  return res.text();
}

/** The `node started` line of the node's current process. */
function startedLine(node: ClusterNode): Record<string, unknown> {
  const lines = node.proc.stdout;
  for (let i = lines.length - 1; i >= 0; i--) {
    if (lines[i]!.includes('"node started"')) return JSON.parse(lines[i]!) as Record<string, unknown>;
  }
  throw new Error(`node${node.index} has not logged "node started"`);
}

/** host:port of the node's monitoring port, as it logged it. */
export function monitorOf(node: ClusterNode): string {
  return String(startedLine(node).monitor);
}

/** The node's server name (hostname:port unless --name was given). */
export function nameOf(node: ClusterNode): string {
  return String(startedLine(node).name);
}

export interface OwnerAnswer {
  owner: string;
  client: string;
  replicas: string[];
}

/** INFO lines a node re-sends on membership changes (CLIENT.md), skipped before an answer. */
const INFOS = '(?:INFO [^\\r\\n]*\\r\\n)*';

/** OWNER for each destination (protocol/MESH.md M3.3), pipelined on one raw connection to `port`. */
export async function owners(t: ExecutionContext, port: number, dests: string[]): Promise<OwnerAnswer[]> {
  const [c] = await RawClient.open(t, port);
  c.send(dests.map((d) => `OWNER ${d}\r\n`).join(''));
  const out: OwnerAnswer[] = [];
  for (const d of dests) {
    const m = await c.expect(
      new RegExp(`^${INFOS}\\+OWNER ${d.replace(/\./g, '\\.')} (\\S+) (\\S+) (\\S+)\\r\\n`),
      15_000,
    );
    out.push({ owner: m[1]!, client: m[2]!, replicas: m[3] === '-' ? [] : m[3]!.split(',') });
  }
  c.socket.destroy();
  return out;
}

/**
 * A stand-in ExecutionContext for `test.before`, where ava refuses
 * t.teardown: helpers that register teardowns (startCluster, runCli,
 * tempDir) get this one, and `cleanup` runs them, last first, from
 * `test.after.always`. Lets the tests of a file share one cluster.
 */
export function hookContext(): { t: ExecutionContext; cleanup: () => Promise<void> } {
  const teardowns: (() => unknown)[] = [];
  const t = { teardown: (fn: () => unknown) => void teardowns.push(fn) } as unknown as ExecutionContext;
  return {
    t,
    async cleanup() {
      for (const fn of teardowns.reverse()) await fn();
    },
  };
}
