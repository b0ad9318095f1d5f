/**
 * Clusters of real `swarmmq start` processes on this host for mesh tests:
 * every node on port 0 with its own data dir, all sharing a unique cluster
 * name and a registry directory of their own, so they find each other with
 * no other configuration and never meet the nodes of a concurrent test
 * (protocol/MESH.md M1.3). Everything is killed and removed at teardown.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { runCli, tempDir, type CliProcess } from './process.js';
import { waitFor } from './wire.js';

/** How long a node may take to log `node started` (2 cores, other test files running). */
const NODE_START_TIMEOUT_MS = 30_000;
/** How long a fresh cluster may take until every node sees all the others. */
const FORM_TIMEOUT_MS = 30_000;

export interface ClusterNode {
  readonly index: number;
  readonly dataDir: string;
  /** The current process; replaced by restart(). */
  proc: CliProcess;
  /** Client port of the current process. */
  port: number;
  peerId: string;
  /** Sends `signal` (default SIGKILL) and waits for the process to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Kills the process if it still runs, then starts it again on the same data dir. */
  restart(): Promise<void>;
}

export interface Cluster {
  nodes: ClusterNode[];
  /** Starts one more node of the cluster (it does not wait for the view: see waitForView). */
  add(): Promise<ClusterNode>;
  registryDir: string;
  name: string;
  /** Wall time from the last spawn until every node had logged a complete view (from the nodes' log times). */
  formedInMs: number;
}

export interface ClusterOptions {
  /** Extra `start` flags for every node. */
  flags?: string[];
  /** Deadline for the whole cluster to form. */
  timeoutMs?: number;
  /** Environment for every node (secrets such as SWARMMQ_CLUSTER_KEY go here, not in flags). */
  env?: Record<string, string>;
}

type LogLine = Record<string, unknown>;

/** Starts `n` nodes at once and waits until each has logged a view of `n` members. */
export async function startCluster(
  t: ExecutionContext,
  n: number,
  opts: ClusterOptions = {},
): Promise<Cluster> {
  const root = tempDir(t);
  const registryDir = path.join(root, 'registry');
  const name = `ct-${randomBytes(4).toString('hex')}`;
  const nodes: ClusterNode[] = [];

  const spawnNode = (index: number): { node: ClusterNode; ready: Promise<void> } => {
    const dataDir = path.join(root, `node${index}`);
    mkdirSync(dataDir, { recursive: true });
    const args = ['start', '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir];
    args.push('--cluster', name, '--registry-dir', registryDir, '--log-level', 'info', ...(opts.flags ?? []));
    const launch = async (): Promise<void> => {
      node.proc = runCli(t, args, opts.env);
      const mesh = await node.proc.waitForLog((l) => l.msg === 'mesh started', NODE_START_TIMEOUT_MS);
      const started = await node.proc.waitForLog((l) => l.msg === 'node started', NODE_START_TIMEOUT_MS);
      node.peerId = String(mesh.peerId);
      node.port = Number(started.port);
    };
    const node: ClusterNode = {
      index,
      dataDir,
      proc: undefined as unknown as CliProcess,
      port: 0,
      peerId: '',
      async kill(signal: NodeJS.Signals = 'SIGKILL') {
        if (node.proc.child.exitCode === null && node.proc.child.signalCode === null)
          node.proc.child.kill(signal);
        await node.proc.exited;
      },
      async restart() {
        await node.kill();
        await launch();
      },
    };
    return { node, ready: launch() };
  };

  const spawned = Array.from({ length: n }, (_, i) => spawnNode(i));
  const lastSpawnMs = Date.now();
  nodes.push(...spawned.map((s) => s.node));
  await Promise.all(spawned.map((s) => s.ready));
  await waitForView(nodes, n, opts.timeoutMs ?? FORM_TIMEOUT_MS);
  const formedAtMs = Math.max(...nodes.map((node) => Number(firstView(node, n)?.time ?? Date.now())));

  return {
    nodes,
    registryDir,
    name,
    formedInMs: formedAtMs - lastSpawnMs,
    async add() {
      const { node, ready } = spawnNode(nodes.length);
      nodes.push(node);
      await ready;
      return node;
    },
  };
}

/** The members count of the node's latest `cluster view changed` line (0 before the first). */
export function viewSize(node: ClusterNode): number {
  const lines = node.proc.stdout;
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i]!;
    if (!l.includes('"cluster view changed"')) continue;
    return Number((JSON.parse(l) as LogLine).members);
  }
  return 0;
}

/** Waits until every node's latest view has `n` members. */
export async function waitForView(
  nodes: readonly ClusterNode[],
  n: number,
  timeoutMs = FORM_TIMEOUT_MS,
): Promise<void> {
  try {
    await waitFor(
      () => nodes.every((node) => viewSize(node) === n),
      `a view of ${n} members on every node`,
      timeoutMs,
    );
  } catch (err) {
    const sizes = nodes.map((node) => `node${node.index}:${viewSize(node)}`).join(' ');
    throw new Error(`${(err as Error).message} (latest views: ${sizes})`);
  }
}

function firstView(node: ClusterNode, n: number): LogLine | undefined {
  for (const l of node.proc.stdout) {
    if (!l.includes('"cluster view changed"')) continue;
    const j = JSON.parse(l) as LogLine;
    if (j.members === n) return j;
  }
  return undefined;
}

/** A stock NATS client on one node, kept there (no failover to connect_urls), closed with the test. */
export async function natsClient(t: ExecutionContext, node: ClusterNode): Promise<NatsConnection> {
  const nc = await connect({
    servers: `127.0.0.1:${node.port}`,
    reconnect: false,
    ignoreClusterUpdates: true,
  });
  t.teardown(async () => {
    if (!nc.isClosed()) await nc.close();
  });
  return nc;
}
