/**
 * `swarmmq status [--monitor host:port] [--json]`: the cluster at a glance
 * from any one node's monitoring port (protocol/MONITORING.md section 9).
 * It reads that node's /meshz with `stats=1`, which holds the members, the
 * ring and every destination's owner and replicas with the depth and group
 * lag the owner reports, so no other node's monitoring address is needed;
 * a standalone node is read from /varz and /destz instead. Exit codes: 0
 * ok, 1 the monitor cannot be reached or answers an error, 2 usage.
 */
import http from 'node:http';
import type { Command } from 'commander';
import Table from 'cli-table3';

/** Where a node's monitoring port is with the defaults (client port 4222 + 4000). */
const DEFAULT_MONITOR = '127.0.0.1:8222';
/** One request's deadline: /meshz?stats=1 waits for each member's answer (a link request: at most 5 s). */
const REQUEST_TIMEOUT_MS = 10_000;
/** Most bytes of one answer: a page of 1000 destinations with their groups is far smaller. */
const MAX_ANSWER_BYTES = 64 * 1024 * 1024;
/** Destinations asked per page (the endpoints' largest page, MON1.4). */
const PAGE_LIMIT = 1000;
/** Pages read at most: past 10,000 destinations the report says how many it left out. */
const MAX_PAGES = 10;
/** Groups shown in one table cell; the rest are counted. */
const MAX_GROUPS_SHOWN = 4;

const EXIT_UNREACHABLE = 1;
const EXIT_USAGE = 2;

/** One member as the report shows it. */
export interface StatusMember {
  peer_id: string | null;
  name: string;
  self: boolean;
  client: string;
  status: string;
  ring_share: number;
  connections: number;
  destinations: number;
  heartbeat_age_ms: number;
}

/** One destination: where it lives and what its owner reports (null: the owner did not answer). */
export interface StatusDestination {
  name: string;
  owner: string | null;
  owner_name: string | null;
  replicas: string[];
  replica_names: string[];
  depth: number | null;
  bytes: number | null;
  groups: { name: string; lag: number; in_flight: number; acked: number }[] | null;
}

export interface StatusReport {
  monitor: string;
  node: string;
  cluster: string | null;
  replication_factor: number | null;
  members: StatusMember[];
  destinations: StatusDestination[];
  /** Destinations the node knows of; more than listed when past MAX_PAGES pages. */
  destinations_total: number;
}

/** Why status gave up: one line for stderr and the exit code. */
export class StatusFailure extends Error {
  override readonly name = 'StatusFailure';
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description("show the cluster's members and destinations, read from any node's monitoring port")
    .option(
      '--monitor <host:port>',
      `a node's monitoring address (env SWARMMQ_MONITOR_ADDRESS; default ${DEFAULT_MONITOR})`,
    )
    .option('--json', 'print the combined data as JSON instead of tables')
    .action(async (flags: { monitor?: string; json?: boolean }) => {
      try {
        const address = monitorAddress(flags.monitor, process.env.SWARMMQ_MONITOR_ADDRESS);
        const report = await collect(address);
        process.stdout.write(flags.json === true ? `${JSON.stringify(report, null, 2)}\n` : render(report));
      } catch (err) {
        if (!(err instanceof StatusFailure)) throw err;
        console.error(`swarmmq: ${err.message}`);
        process.exit(err.exitCode);
      }
    });
}

/** The flag, else SWARMMQ_MONITOR_ADDRESS, else the default; checked. */
export function monitorAddress(flag: string | undefined, env: string | undefined): string {
  const fromEnv = env !== undefined && env.trim() !== '' ? env : undefined;
  const raw = (flag ?? fromEnv ?? DEFAULT_MONITOR)
    .trim()
    .replace(/^https?:\/\//, '')
    .replace(/\/$/, '');
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/.exec(raw);
  if (m === null || Number(m[2]) < 1 || Number(m[2]) > 65535) {
    const source =
      flag !== undefined ? '--monitor' : fromEnv !== undefined ? 'SWARMMQ_MONITOR_ADDRESS' : 'the default';
    throw new StatusFailure(
      EXIT_USAGE,
      `${source} must be host:port, got ${JSON.stringify(raw.slice(0, 100))}`,
    );
  }
  return raw;
}

/** Reads the node's view of the cluster (or of itself, standalone) into one report. */
async function collect(address: string): Promise<StatusReport> {
  const first = await getJson(address, `/meshz?stats=1&limit=${PAGE_LIMIT}`);
  if (first.mesh_enabled !== true) return standalone(address, first);
  const pages = [first];
  const total = num(first.total);
  for (let p = 1; p < MAX_PAGES && p * PAGE_LIMIT < total; p++) {
    pages.push(await getJson(address, `/meshz?stats=1&limit=${PAGE_LIMIT}&offset=${p * PAGE_LIMIT}`));
  }
  const members = list(first.members).map((m): StatusMember => ({
    peer_id: str(m.peer_id),
    name: str(m.name),
    self: m.self === true,
    client: str(m.client),
    status: str(m.status),
    ring_share: num(m.ring_share),
    connections: num(obj(m.load).connections),
    destinations: num(obj(m.load).destinations),
    heartbeat_age_ms: num(m.heartbeat_age_ms),
  }));
  const nameOf = new Map(members.map((m) => [m.peer_id, m.name]));
  const named = (id: string): string => nameOf.get(id) ?? id.slice(-8);
  const destinations = pages.flatMap((page) =>
    list(page.destinations).map((d): StatusDestination => {
      const stats = d.stats === null || d.stats === undefined ? undefined : obj(d.stats);
      const owner = d.owner === null ? null : str(d.owner);
      const replicas = Array.isArray(d.replicas) ? d.replicas.map(String) : [];
      return {
        name: str(d.name),
        owner,
        owner_name: owner === null ? null : named(owner),
        replicas,
        replica_names: replicas.map(named),
        depth: stats === undefined ? null : num(stats.depth),
        bytes: stats === undefined ? null : num(stats.bytes),
        groups: stats === undefined ? null : list(stats.groups).map(group),
      };
    }),
  );
  return {
    monitor: address,
    node: str(first.name),
    cluster: str(first.cluster),
    replication_factor: num(first.replication_factor),
    members,
    destinations,
    destinations_total: total,
  };
}

/** A node without the mesh: itself as the only member, its /destz as the destinations. */
async function standalone(address: string, meshz: Record<string, unknown>): Promise<StatusReport> {
  const varz = await getJson(address, '/varz');
  const name = str(meshz.name);
  const pages = [await getJson(address, `/destz?limit=${PAGE_LIMIT}`)];
  const total = num(pages[0]!.total);
  for (let p = 1; p < MAX_PAGES && p * PAGE_LIMIT < total; p++) {
    pages.push(await getJson(address, `/destz?limit=${PAGE_LIMIT}&offset=${p * PAGE_LIMIT}`));
  }
  return {
    monitor: address,
    node: name,
    cluster: null,
    replication_factor: null,
    members: [
      {
        peer_id: null,
        name,
        self: true,
        client: `${str(varz.host)}:${num(varz.port)}`,
        status: 'standalone',
        ring_share: 1,
        connections: num(varz.connections),
        destinations: total,
        heartbeat_age_ms: 0,
      },
    ],
    destinations: pages.flatMap((page) =>
      list(page.destinations).map((d) => ({
        name: str(d.name),
        owner: null,
        owner_name: name,
        replicas: [],
        replica_names: [],
        depth: num(d.depth),
        bytes: num(d.bytes),
        groups: list(d.groups).map(group),
      })),
    ),
    destinations_total: total,
  };
}

function group(g: Record<string, unknown>): { name: string; lag: number; in_flight: number; acked: number } {
  return { name: str(g.name), lag: num(g.lag), in_flight: num(g.in_flight), acked: num(g.acked) };
}

/** GET one endpoint; every way it can fail becomes one line and exit code 1. */
async function getJson(address: string, path: string): Promise<Record<string, unknown>> {
  let res: { status: number; text: string };
  try {
    res = await httpGet(address, path);
  } catch (err) {
    throw new StatusFailure(EXIT_UNREACHABLE, `cannot reach monitor at ${address} (${why(err)})`);
  }
  let body: unknown;
  try {
    body = JSON.parse(res.text);
  } catch {
    throw new StatusFailure(EXIT_UNREACHABLE, `${address} answered ${path} with something that is not JSON`);
  }
  if (res.status !== 200) {
    const error = typeof obj(body).error === 'string' ? `: ${String(obj(body).error)}` : '';
    throw new StatusFailure(
      EXIT_UNREACHABLE,
      `monitor at ${address} answered ${res.status} for ${path}${error}`,
    );
  }
  return obj(body);
}

/**
 * node:http rather than fetch: fetch refuses some ports outright (6000,
 * 6665-6669, ...), and a monitoring port may be any. The whole exchange
 * has a deadline and the answer a size limit.
 */
function httpGet(address: string, path: string): Promise<{ status: number; text: string }> {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port: Number(address.slice(at + 1)), path }, (res) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > MAX_ANSWER_BYTES) req.destroy(coded('TOO_LARGE', 'answer too large'));
        else chunks.push(chunk);
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', fail);
    });
    const fail = (err: Error): void => {
      clearTimeout(timer);
      reject(err);
    };
    const timer = setTimeout(() => req.destroy(coded('TIMEOUT', 'timeout')), REQUEST_TIMEOUT_MS);
    req.on('error', fail);
  });
}

function coded(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** A request failure in a few words: the socket error's code where there is one. */
function why(err: unknown): string {
  const e = err as { code?: string; message?: string };
  const words: Record<string, string> = {
    TIMEOUT: `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`,
    TOO_LARGE: `answer over ${MAX_ANSWER_BYTES / 1024 / 1024} MiB`,
    ECONNREFUSED: 'connection refused',
    ECONNRESET: 'connection reset; is this a monitoring port?',
    ENOTFOUND: 'host not found',
    EAI_AGAIN: 'host not found',
    EHOSTUNREACH: 'host unreachable',
    ENETUNREACH: 'network unreachable',
    ETIMEDOUT: 'connection timed out',
    HPE_INVALID_CONSTANT: 'not an HTTP answer; is this a monitoring port?',
  };
  return (e.code !== undefined ? words[e.code] : undefined) ?? e.code ?? e.message ?? String(err);
}

/** The report as two tables for a terminal. */
function render(r: StatusReport): string {
  const plain = { style: { head: [], border: [] } };
  const where =
    r.cluster === null
      ? 'standalone node'
      : `cluster ${r.cluster}: ${r.members.length} members, replication factor ${r.replication_factor}`;
  const members = new Table({
    ...plain,
    head: ['name', 'peer id', 'client', 'status', 'ring share', 'connections', 'destinations'],
    colAligns: ['left', 'left', 'left', 'left', 'right', 'right', 'right'],
  });
  for (const m of r.members) {
    members.push([
      m.self ? `${m.name} *` : m.name,
      m.peer_id === null ? '-' : m.peer_id.slice(-8),
      m.client,
      m.status,
      `${(m.ring_share * 100).toFixed(1)}%`,
      m.connections,
      m.destinations,
    ]);
  }
  const dests = new Table({
    ...plain,
    head: ['name', 'owner', 'replicas', 'depth', 'groups', 'lag'],
    colAligns: ['left', 'left', 'left', 'right', 'left', 'right'],
  });
  for (const d of r.destinations) {
    const groups = d.groups ?? [];
    const shown = groups.slice(0, MAX_GROUPS_SHOWN);
    const more = groups.length > shown.length ? ` +${groups.length - shown.length}` : '';
    dests.push([
      d.name,
      d.owner_name ?? '-',
      d.replica_names.length === 0 ? '-' : d.replica_names.join(', '),
      d.depth ?? '?',
      d.groups === null ? '?' : shown.length === 0 ? '-' : `${shown.map((g) => g.name).join(', ')}${more}`,
      d.groups === null ? '?' : shown.length === 0 ? '-' : `${shown.map((g) => g.lag).join(', ')}${more}`,
    ]);
  }
  const left = r.destinations_total - r.destinations.length;
  const lines = [
    `SwarmMQ ${where}; asked ${r.node} at ${r.monitor} (marked *)`,
    '',
    'Members',
    members.toString(),
    '',
    `Destinations (${r.destinations_total})`,
    r.destinations.length === 0 ? '(none)' : dests.toString(),
  ];
  if (left > 0) lines.push(`... and ${left} more (see /meshz?offset=${r.destinations.length})`);
  if (r.destinations.some((d) => d.depth === null)) lines.push('?: the owner did not answer in time');
  return `${lines.join('\n')}\n`;
}

function obj(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function list(v: unknown): Record<string, unknown>[] {
  return Array.isArray(v) ? v.map(obj) : [];
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v);
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}
