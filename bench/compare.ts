/**
 * What the durable benchmarks (durable.ts, cluster.ts) share when they put
 * SwarmMQ beside JetStream: the SwarmMQ CLI they start, stamped payloads,
 * number formats, the comparison table and the run's environment.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { machineInfo, packageVersion, REPO_ROOT, tryExec, withTimeout } from './lib.js';

/** The SwarmMQ CLI the benchmarks start (SWARMMQ_CLI points at another build). */
export const SWARM_MAIN =
  process.env.SWARMMQ_CLI ?? fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

export const fMs = (n: number): string => (Number.isFinite(n) ? (n < 10 ? n.toFixed(2) : n.toFixed(1)) : '-');
export const fMiB = (kb: number): string => (Number.isFinite(kb) ? (kb / 1024).toFixed(1) : '-');
export const fRatio = (a: number, b: number): string =>
  Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? (a / b).toFixed(2) : '-';

/** A payload of `bytes` carrying its send time (performance.now(), f64) and its index (u32). */
export function stampedPayload(i: number, bytes: number): Buffer {
  const b = Buffer.allocUnsafe(bytes);
  b.writeDoubleLE(performance.now(), 0);
  b.writeUInt32LE(i, 8);
  b.fill(0x61, 12);
  return b;
}

/** A stock-client connection to a server on loopback, without reconnects, bounded in time. */
export function natsConnect(
  port: number,
  name: string,
  label = `127.0.0.1:${port}`,
): Promise<NatsConnection> {
  return withTimeout(
    connect({ servers: `127.0.0.1:${port}`, name, reconnect: false, timeout: 10_000 }),
    15_000,
    `connect to ${label}`,
  );
}

/** One line of a SwarmMQ / JetStream table; a text value is shown as it is. */
export interface CompareRow {
  metric: string;
  s: number | string;
  j: number | string;
  fmt: (n: number) => string;
  /** Whether the ratio S/J is shown. */
  ratio: boolean;
}

/** A markdown table: the metric left-aligned, values right-aligned, and the ratio. */
export function renderComparison(head: string[], rows: CompareRow[]): string {
  const cell = (v: number | string, fmt: (n: number) => string): string =>
    typeof v === 'string' ? v : fmt(v);
  const body = rows.map((r) => [
    r.metric,
    cell(r.s, r.fmt),
    cell(r.j, r.fmt),
    r.ratio && typeof r.s === 'number' && typeof r.j === 'number' ? fRatio(r.s, r.j) : '',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [
    line(head),
    `|${widths.map((w, i) => (i === 0 ? `-${'-'.repeat(w)}-` : `-${'-'.repeat(w)}:`)).join('|')}|`,
    ...body.map(line),
  ].join('\n');
}

/** Machine, clients, the SwarmMQ build and commit (with a hash of uncommitted src/ changes), date. */
export function environment(): Record<string, string | number> {
  const commit = tryExec('git', ['rev-parse', '--short', 'HEAD'], REPO_ROOT);
  const srcDirty = tryExec('git', ['status', '--porcelain', '--', 'src'], REPO_ROOT);
  return {
    ...machineInfo(),
    natsClient: `@nats-io/transport-node ${packageVersion('@nats-io/transport-node')}, @nats-io/jetstream ${packageVersion('@nats-io/jetstream')}`,
    swarmmq: SWARM_MAIN,
    commit:
      srcDirty !== '' && srcDirty !== 'unknown'
        ? `${commit} + uncommitted src/ changes (diff sha1 ${createHash('sha1')
            .update(tryExec('git', ['diff', 'HEAD', '--', 'src'], REPO_ROOT))
            .digest('hex')
            .slice(0, 10)})`
        : commit,
    date: new Date().toISOString(),
  };
}
