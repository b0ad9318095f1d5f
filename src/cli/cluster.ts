/**
 * `swarmmq cluster`: a local cluster in one command. It runs N nodes as child
 * processes of this same CLI (`swarmmq start`), reads their JSON log lines to
 * tell a person where each node is and when the mesh has formed, and stops
 * them all on Ctrl-C. Meant for trying the mesh and failover on one machine.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { resolveOptions } from '../config/options.js';
import { ConfigError } from '../errors.js';

/** Each node is a whole Node.js process with its own store; past this a laptop thrashes. */
const MAX_NODES = 32;
/** The NATS default, so node 1 is where stock clients look first. */
const DEFAULT_BASE_PORT = 4222;
const DEFAULT_DATA_DIR = './data/cluster';
/** Local discovery ticks every second; 30 s means something is wrong, not slow. */
const FORM_TIMEOUT_MS = 30_000;
/** How long nodes get to close clients and flush stores before SIGKILL. */
const STOP_TIMEOUT_MS = 10_000;
/** A node that fails to start says why on stderr; its last lines are enough. */
const MAX_STDERR_LINES = 50;
/** pino's number for `error`: such lines are shown even without --logs. */
const PINO_LEVEL_ERROR = 50;
/** The cluster reads the nodes' `info` lines (node started, cluster view changed). */
const READABLE_LOG_LEVELS = ['info', 'debug', 'trace'];
/** This package's compiled CLI entry; it sits beside this file in dist/src/cli. */
const MAIN_JS = fileURLToPath(new URL('./main.js', import.meta.url));

interface ClusterFlags {
  nodes: string;
  basePort?: string;
  dataDir: string;
  cluster?: string;
  replicationFactor?: string;
  logLevel?: string;
  logs?: boolean;
}

interface ChildNode {
  readonly index: number;
  readonly dataDir: string;
  readonly child: ChildProcess;
  /** host:port, once the node has logged "node started". */
  client?: string;
  /** Members in the node's latest view; a node logs no view until it has company, so 1 at first. */
  members: number;
  exited: boolean;
  /** Resolves when the process has exited and its output is read. */
  readonly closed: Promise<void>;
  readonly stderr: string[];
}

export function registerCluster(program: Command): void {
  program
    .command('cluster')
    .description('run a local cluster of N nodes (child processes) on this host until Ctrl-C')
    .requiredOption('-n, --nodes <count>', `number of nodes, 1-${MAX_NODES}`)
    .option(
      '--base-port <port>',
      `client port of node 1, node i gets base+i-1 (default ${DEFAULT_BASE_PORT})`,
    )
    .option(
      '--data-dir <dir>',
      'parent directory: node i keeps its state in <dir>/node-<i>',
      DEFAULT_DATA_DIR,
    )
    .option('--cluster <name>', 'cluster name (default $SWARMMQ_CLUSTER, else local-<6 random hex>)')
    .option('--replication-factor <n>', 'copies of each destination, passed to every node')
    .option('--log-level <level>', `nodes' log level: ${READABLE_LOG_LEVELS.join(', ')} (default info)`)
    .option('--logs', "echo every node's log lines, prefixed [node i] (error lines are always shown)")
    .addHelpText(
      'after',
      `
Node i runs \`swarmmq start --port <base+i-1> --data-dir <dir>/node-<i> --cluster <name>\`;
its mesh port is its client port + 2000. With --base-port 0 every node picks free
ports, read from its log. Nodes find each other through local discovery. A fresh
random cluster name keeps two clusters on one host apart; pass --cluster to run
the same one again on its data. Every other node option comes from SWARMMQ_* in
the environment, which the nodes inherit (--base-port and --data-dir win).

Prints one line per node as it starts, then "cluster <name> formed" with the
client URLs once every node sees all N members (a warning if not within ${FORM_TIMEOUT_MS / 1000} s).
A node that dies is reported and the others keep running (try failover); the
command exits 1 when none is left. A node that fails to start stops them all.
Ctrl-C or SIGTERM stops every node (SIGKILL after ${STOP_TIMEOUT_MS / 1000} s) and exits 0; a second
signal kills them at once and exits 1. Bad usage exits 2.`,
    )
    .action((flags: ClusterFlags) => runCluster(flags));
}

function runCluster(flags: ClusterFlags): void {
  const count = wholeNumber(flags.nodes);
  if (count === undefined || count < 1 || count > MAX_NODES) {
    usage(`--nodes must be a whole number from 1 to ${MAX_NODES}, got ${JSON.stringify(flags.nodes)}`);
  }
  const basePort = flags.basePort === undefined ? DEFAULT_BASE_PORT : wholeNumber(flags.basePort);
  if (basePort === undefined || basePort + count - 1 > 65535) {
    usage(
      `--base-port must leave room for ${count} ports below 65536, got ${JSON.stringify(flags.basePort)}`,
    );
  }
  const clusterName =
    flags.cluster ?? process.env.SWARMMQ_CLUSTER ?? `local-${randomBytes(3).toString('hex')}`;
  // Checked once here, with the environment the nodes inherit, so a bad value is
  // one line and exit 2 instead of N nodes failing to start.
  let logLevel: string;
  try {
    const o = resolveOptions({
      env: process.env,
      flags: { clusterName, replicationFactor: flags.replicationFactor, logLevel: flags.logLevel, port: 0 },
    });
    logLevel = o.logLevel;
    if (o.meshPort !== undefined && o.meshPort !== 0 && count > 1) {
      usage('a fixed mesh port (SWARMMQ_MESH_PORT or cluster.port) cannot be shared by several nodes');
    }
  } catch (err) {
    if (err instanceof ConfigError) usage(`${err.key}: ${err.reason}`);
    throw err;
  }
  if (!READABLE_LOG_LEVELS.includes(logLevel)) {
    usage(`log level must be one of ${READABLE_LOG_LEVELS.join(', ')} (the cluster reads info lines)`);
  }

  // SECURITY.md SEC1.1: the local cluster runs with a cluster key of its own (kept only in
  // the nodes' environment), so no other node on this host can join it by accident or on purpose.
  const clusterKey = process.env.SWARMMQ_CLUSTER_KEY ?? randomBytes(32).toString('hex');
  const nodes: ChildNode[] = [];
  let stopping = false;
  let formed = false;

  const formTimer = setTimeout(() => {
    const views = nodes.map((n) => `node ${n.index} sees ${n.members}`).join(', ');
    console.error(`warning: cluster ${clusterName} not formed after ${FORM_TIMEOUT_MS / 1000} s (${views})`);
  }, FORM_TIMEOUT_MS);

  const checkFormed = (): void => {
    if (formed || !nodes.every((n) => n.client !== undefined && n.members === count)) return;
    formed = true;
    clearTimeout(formTimer);
    const urls = nodes.map((n) => `nats://${n.client!}`).join(',');
    console.log(`cluster ${clusterName} formed: ${count} nodes; connect with ${urls}`);
  };

  const onLine = (node: ChildNode, line: string): void => {
    let j: Record<string, unknown> | undefined;
    try {
      j = JSON.parse(line) as Record<string, unknown>;
    } catch {
      // not a log line; shown only with --logs
    }
    if (typeof j?.level === 'number' && j.level >= PINO_LEVEL_ERROR)
      console.error(`[node ${node.index}] ${line}`);
    else if (flags.logs === true) console.log(`[node ${node.index}] ${line}`);
    if (j?.msg === 'node started' && typeof j.client === 'string') {
      node.client = j.client;
      console.log(`node ${node.index}  client ${node.client}  data ${node.dataDir}  pid ${node.child.pid}`);
      checkFormed();
    } else if (j?.msg === 'cluster view changed' && typeof j.members === 'number') {
      node.members = j.members;
      checkFormed();
    }
  };

  const onExit = (node: ChildNode, code: number | null, signal: NodeJS.Signals | null): void => {
    node.exited = true;
    if (stopping) return;
    const how = signal === null ? `code ${code}` : `signal ${signal}`;
    if (node.client === undefined) {
      // Failed to start (port taken, data dir locked, ...): its stderr says why.
      console.error(`node ${node.index} failed to start (${how}):`);
      for (const l of node.stderr) console.error(`[node ${node.index}] ${l}`);
      void stopAll(1);
      return;
    }
    console.error(`node ${node.index} exited (${how})`);
    if (nodes.every((n) => n.exited)) {
      console.error('every node has exited');
      process.exit(1);
    }
  };

  const stopAll = async (exitCode: number): Promise<void> => {
    stopping = true;
    clearTimeout(formTimer);
    const live = nodes.filter((n) => !n.exited);
    for (const n of live) n.child.kill('SIGTERM');
    const gone = await waitExited(live, STOP_TIMEOUT_MS);
    if (!gone) {
      for (const n of live.filter((x) => !x.exited)) {
        console.error(`node ${n.index} did not stop within ${STOP_TIMEOUT_MS / 1000} s; killing it`);
        n.child.kill('SIGKILL');
      }
      await waitExited(live, STOP_TIMEOUT_MS);
    }
    if (exitCode === 0) console.log('cluster stopped');
    process.exit(exitCode);
  };

  const onSignal = (sig: NodeJS.Signals): void => {
    // Already stopping (a signal, or a node that failed to start): the impatient way.
    if (stopping) {
      console.error(`second ${sig}: killing every node`);
      for (const n of nodes) if (!n.exited) n.child.kill('SIGKILL');
      process.exit(1);
    }
    console.log(`${sig}: stopping the cluster`);
    void stopAll(0);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A closed terminal: the nodes are in their own process group (below), so stop them here.
  process.on('SIGHUP', onSignal);

  for (let i = 1; i <= count; i++) {
    const dataDir = path.join(flags.dataDir, `node-${i}`);
    const port = basePort === 0 ? 0 : basePort + i - 1;
    const rf = flags.replicationFactor === undefined ? [] : ['--replication-factor', flags.replicationFactor];
    const args = ['start', '--port', String(port), '--data-dir', dataDir, '--cluster', clusterName];
    // JSON lines whatever SWARMMQ_LOG_FORMAT says: onLine reads them (--logs echoes them as they are).
    const logArgs = ['--log-level', logLevel, '--log-format', 'json'];
    const child = spawn(process.execPath, [MAIN_JS, ...args, ...logArgs, ...rf], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SWARMMQ_CLUSTER_KEY: clusterKey },
      // Own process group: Ctrl-C in a terminal signals the whole foreground
      // group, and a node that got SIGINT from the terminal and then SIGTERM
      // from us would take it as a second signal and exit at once.
      detached: true,
    });
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    const node: ChildNode = { index: i, dataDir, child, members: 1, exited: false, closed, stderr: [] };
    nodes.push(node);
    createInterface({ input: child.stdout! }).on('line', (l) => onLine(node, l));
    createInterface({ input: child.stderr! }).on('line', (l) => {
      if (node.client !== undefined) console.error(`[node ${i}] ${l}`);
      else if (node.stderr.push(l) > MAX_STDERR_LINES) node.stderr.shift();
    });
    child.on('error', (err) => console.error(`node ${i}: ${err.message}`));
    // 'close', not 'exit': by then its stdout and stderr are fully read.
    child.on('close', (code, signal) => onExit(node, code, signal));
  }
}

/** Resolves true once every node has exited, false at the deadline. */
async function waitExited(nodes: readonly ChildNode[], timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
  const all = Promise.all(nodes.map((n) => n.closed)).then(() => true as const);
  const gone = await Promise.race([all, deadline]);
  clearTimeout(timer);
  return gone;
}

function wholeNumber(s: string | undefined): number | undefined {
  return s !== undefined && /^\d{1,6}$/.test(s) ? Number(s) : undefined;
}

function usage(message: string): never {
  console.error(`swarmmq cluster: ${message}`);
  process.exit(2);
}
