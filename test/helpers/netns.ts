/**
 * A network-namespace lab for multi-host tests: one namespace per host, each
 * with a veth pair into a bridge that lives in a namespace of its own, and
 * addresses in a private /24 that exists only inside the lab.
 *
 * The rule (shared/notes/NETNS.md): nothing may leave the machine. The host
 * namespace has a default route out, so nothing in the lab is ever created
 * in the host namespace (veth pairs are created directly inside the lab's
 * namespaces) and the test driver must never connect to a lab address; run
 * every client inside a lab host with `lab.spawn`. `createLab` checks with
 * `ip route get` (which sends nothing) that every host reaches the others
 * through its veth and has no route anywhere else, and refuses otherwise.
 *
 * Needs root and iproute2 (CI has both); see `netnsAvailable`.
 */
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import type { ExecutionContext } from 'ava';

const execFileAsync = promisify(execFile);

/** An `ip` command that takes longer than this is stuck, not slow (they take ~2 ms here). */
const IP_TIMEOUT_MS = 5_000;
/** How long a spawned process gets between SIGTERM and SIGKILL in `destroy`. */
const TERM_GRACE_MS = 1_500;
/** How long a SIGKILLed process may take to be reaped before `destroy` gives up. */
const KILL_REAP_MS = 2_000;
/** Multicast (mDNS is 224.0.0.251) needs a route; a link going admin-down deletes it. */
const MULTICAST_ROUTE = '224.0.0.0/4';
/** Host suffixes are `h0`..`h99`; link names are prefix (9) + 3 chars <= 15 (IFNAMSIZ - 1). */
const MAX_HOSTS = 100;
/** An address that must be unreachable from every host: TEST-NET-2 (RFC 5737), never routed. */
const OUTSIDE_ADDRESS = '198.51.100.1';
/**
 * Namespace names: `<prefix>-<creator pid>-<br|hN>`. The creator pid lets a
 * later run delete what a crashed run left behind (see `reapStaleLabs`).
 */
const NS_NAME_RE = /^smq[0-9a-f]{6}-(\d+)-(?:br|h\d+)$/;

export interface NetnsHost {
  /** `A`, `B`, `C`, ... in creation order. */
  readonly name: string;
  /** The host's namespace, for `ip -n` / `ip netns exec`. */
  readonly ns: string;
  /** The host's veth inside its namespace. */
  readonly link: string;
  /** The host's address, `10.<a>.<b>.<n>`; reachable only from inside the lab. */
  readonly address: string;
}

/** A process running inside a lab host; its output is always drained, so it never blocks on a full pipe. */
export interface NetnsProcess {
  readonly child: ChildProcess;
  /** The process's own pid (`ip netns exec` execs, so it is not a wrapper's). */
  readonly pid: number;
  readonly host: NetnsHost;
  /** Complete stdout lines so far. */
  readonly lines: readonly string[];
  /** Everything written to stderr so far. */
  readonly stderr: () => string;
  /** Resolves with the exit code, or the signal name, once the process has ended and been reaped. */
  readonly exited: Promise<number | string>;
  /** Resolves with the first stdout line `match` accepts; rejects on deadline or exit. */
  waitForLine(match: (line: string) => boolean, timeoutMs?: number): Promise<string>;
}

export interface NetnsLab {
  /** Unique per lab: `smq` + 6 random hex digits. */
  readonly prefix: string;
  /** One per requested host, named `A`, `B`, ... */
  readonly hosts: readonly NetnsHost[];
  /** The lab's /24, e.g. `10.17.203.0/24`. */
  readonly subnet: string;
  /** Runs `cmd args` inside `host` (via `ip netns exec`); killed by `destroy`. */
  spawn(host: NetnsHost, cmd: string, args: string[], opts?: { env?: Record<string, string> }): NetnsProcess;
  /**
   * Cuts `host` off by setting its port on the bridge down: like a pulled
   * cable, the host's own veth stays up with NO-CARRIER and its routes stay
   * (marked linkdown), so its processes see silence, not an interface event.
   */
  cut(host: NetnsHost): Promise<void>;
  /** Undoes `cut`; (re)installs the multicast route too, in case the host's veth went admin-down. */
  heal(host: NetnsHost): Promise<void>;
  /**
   * Stops every spawned process (SIGCONT, SIGTERM, bounded wait, SIGKILL,
   * reap), kills anything else left in the lab's namespaces, deletes the
   * namespaces and checks `ip netns list` has none of them. Idempotent.
   */
  destroy(): Promise<void>;
}

/** Whether this machine can run namespace tests: root and `ip` (iproute2) present. */
export function netnsAvailable(): { ok: boolean; why?: string } {
  if (process.getuid?.() !== 0)
    return { ok: false, why: 'network-namespace tests need root (CI runs as root)' };
  const r = spawnSync('ip', ['-V'], { timeout: IP_TIMEOUT_MS, stdio: 'ignore' });
  if (r.error !== undefined || r.status !== 0) {
    return { ok: false, why: 'network-namespace tests need `ip` (apt-get install iproute2; .ci/run does)' };
  }
  return { ok: true };
}

/**
 * Runs `ip <command>`, split on spaces (every word is a name or address this
 * file made, none has a space); rejects with the command and its stderr.
 */
async function ip(command: string): Promise<string> {
  const args = command.split(' ');
  try {
    const { stdout } = await execFileAsync('ip', args, { timeout: IP_TIMEOUT_MS, killSignal: 'SIGKILL' });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${command} failed: ${(e.stderr ?? '').trim() || e.message}`);
  }
}

/** Names from `ip netns list` (lines look like `name (id: 3)` or `name`). */
async function listNamespaces(): Promise<string[]> {
  const out = await ip(`netns list`);
  return out
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.length > 0);
}

/** Pids of the processes inside namespace `ns` (empty if it is gone). */
async function pidsIn(ns: string): Promise<number[]> {
  const out = await ip(`netns pids ${ns}`).catch(() => '');
  return out
    .split('\n')
    .filter((l) => /^\d+$/.test(l))
    .map(Number);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but is not ours; only ESRCH means gone.
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Deletes namespaces left by labs whose creating process is dead (a worker
 * that crashed or was killed before its teardown ran), after killing what
 * still runs in them: a namespace with a live process outlives `ip netns del`.
 * Assumes /run/netns is shared only by processes in our pid namespace.
 */
async function reapStaleLabs(): Promise<void> {
  for (const ns of await listNamespaces()) {
    const creator = NS_NAME_RE.exec(ns)?.[1];
    if (creator === undefined || isAlive(Number(creator))) continue;
    await killAllIn(ns).catch(() => undefined);
    // Another run may be reaping the same namespace.
    await ip(`netns del ${ns}`).catch(() => undefined);
  }
}

/** Labs not yet destroyed, for the last-chance cleanup when the worker exits. */
const liveLabs = new Set<{ namespaces: string[]; processes: NetnsProcess[] }>();
let exitHookInstalled = false;

/**
 * If the worker exits before a teardown ran (a timeout, an uncaught error),
 * kill what the labs spawned and delete their namespaces, synchronously:
 * nothing async runs in an 'exit' handler.
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const lab of liveLabs) {
      for (const p of lab.processes) p.child.kill('SIGKILL');
      for (const ns of lab.namespaces) {
        try {
          execFileSync('ip', ['netns', 'del', ns], { timeout: IP_TIMEOUT_MS, stdio: 'ignore' });
        } catch {
          // best effort; the next run's reapStaleLabs retries
        }
      }
    }
  });
}

function track(child: ChildProcess, host: NetnsHost): NetnsProcess {
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  let ended = false;
  const exited = new Promise<number | string>((resolve) => {
    // 'exit' comes after Node has reaped the child, or right away if spawn failed.
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
    child.once('error', () => resolve('spawn-error'));
  });
  void exited.then(() => (ended = true));
  const listeners = new Set<() => void>();
  child.stdout!.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    for (const l of listeners) l();
  });
  child.stderr!.on('data', (d: Buffer) => {
    if (stderr.length < 64_000) stderr += d.toString();
  });
  const proc: NetnsProcess = {
    child,
    pid: child.pid ?? -1,
    host,
    lines,
    stderr: () => stderr,
    exited,
    waitForLine: (match, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const done = (): void => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        const check = (): void => {
          const hit = lines.find(match);
          if (hit !== undefined) {
            done();
            resolve(hit);
          } else if (ended) {
            done();
            reject(
              new Error(`process in ${host.name} exited; stdout: ${lines.join('\n')} stderr: ${stderr}`),
            );
          }
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(
            new Error(
              `timed out after ${timeoutMs} ms waiting for a line from ${host.name}; stdout: ${lines.join('\n')} stderr: ${stderr}`,
            ),
          );
        }, timeoutMs);
        listeners.add(check);
        void exited.then(check);
        check();
      }),
  };
  return proc;
}

/** Resolves true if `p` ended within `ms`. */
async function endsWithin(p: NetnsProcess, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  const ended = await Promise.race([p.exited.then(() => true), timeout]);
  clearTimeout(timer);
  return ended;
}

async function stopProcess(p: NetnsProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  // A SIGSTOPped process would not act on SIGTERM until continued.
  p.child.kill('SIGCONT');
  p.child.kill('SIGTERM');
  if (await endsWithin(p, TERM_GRACE_MS)) return;
  p.child.kill('SIGKILL');
  if (!(await endsWithin(p, KILL_REAP_MS))) {
    throw new Error(`pid ${p.pid} in ${p.host.name} survived SIGKILL for ${KILL_REAP_MS} ms`);
  }
}

/**
 * Creates a lab of `hostCount` hosts and registers its destroy as a teardown
 * of `t`. If creation fails half way, whatever was made is removed before the
 * error is rethrown.
 */
export async function createLab(t: ExecutionContext, hostCount: number): Promise<NetnsLab> {
  if (!Number.isInteger(hostCount) || hostCount < 1 || hostCount > MAX_HOSTS) {
    throw new RangeError(`hostCount must be 1..${MAX_HOSTS}, got ${hostCount}`);
  }
  await reapStaleLabs();

  const rand = randomBytes(3);
  const prefix = `smq${rand.toString('hex')}`;
  const net = `10.${rand[0]}.${rand[1]}`;
  const nsBase = `${prefix}-${process.pid}`;
  const bridgeNs = `${nsBase}-br`;
  const bridge = `${prefix}br`;
  const hosts: NetnsHost[] = Array.from({ length: hostCount }, (_, i) => ({
    name: i < 26 ? String.fromCharCode(65 + i) : `H${i}`,
    ns: `${nsBase}-h${i}`,
    link: `${prefix}h${i}`,
    address: `${net}.${i + 1}`,
  }));
  const bridgePort = (h: NetnsHost): string => `${prefix}b${hosts.indexOf(h)}`;

  const state = { namespaces: [] as string[], processes: [] as NetnsProcess[] };
  liveLabs.add(state);
  installExitHook();
  let destroying: Promise<void> | undefined;
  const destroy = (): Promise<void> => (destroying ??= teardown());

  /** Goes through every step even when one fails, so one stuck process does not leak the namespaces. */
  async function teardown(): Promise<void> {
    const errors: unknown[] = [];
    const attempt = async (step: Promise<unknown>): Promise<void> => {
      await step.catch((err: unknown) => errors.push(err));
    };
    await Promise.all(state.processes.map((p) => attempt(stopProcess(p))));
    // Anything else in our namespaces (a spawned process's own children) is ours too.
    for (const ns of state.namespaces) await attempt(killAllIn(ns));
    for (const ns of state.namespaces) await attempt(ip(`netns del ${ns}`));
    liveLabs.delete(state);
    const remaining = (await listNamespaces()).filter((n) => n.startsWith(`${prefix}-`));
    if (remaining.length > 0)
      errors.push(new Error(`namespaces left after destroy: ${remaining.join(', ')}`));
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `destroying lab ${prefix} failed`);
  }

  t.teardown(destroy);
  try {
    await ip(`netns add ${bridgeNs}`);
    state.namespaces.push(bridgeNs);
    // Snooping off: after a cut and heal the bridge would otherwise forward a
    // group only to ports it saw an IGMP report on, and nothing re-reports
    // without a querier, so mDNS would silently stop reaching a healed host.
    await ip(`-n ${bridgeNs} link add ${bridge} type bridge mcast_snooping 0 forward_delay 0`);
    await ip(`-n ${bridgeNs} link set ${bridge} up`);
    await allOrFirstError(
      hosts.map(async (h) => {
        await ip(`netns add ${h.ns}`);
        state.namespaces.push(h.ns);
        // Both ends are created inside the lab: nothing appears in the host namespace.
        await ip(`-n ${bridgeNs} link add ${bridgePort(h)} type veth peer name ${h.link} netns ${h.ns}`);
        await ip(`-n ${bridgeNs} link set ${bridgePort(h)} master ${bridge} up`);
        await ip(`-n ${h.ns} link set lo up`);
        await ip(`-n ${h.ns} addr add ${h.address}/24 dev ${h.link}`);
        await ip(`-n ${h.ns} link set ${h.link} up`);
        await ip(`-n ${h.ns} route add ${MULTICAST_ROUTE} dev ${h.link}`);
      }),
    );
    await allOrFirstError(hosts.map((h) => checkContained(h, hosts)));
  } catch (err) {
    await destroy().catch(() => undefined);
    throw err;
  }

  return {
    prefix,
    hosts,
    subnet: `${net}.0/24`,
    spawn(host, cmd, args, opts = {}) {
      if (destroying !== undefined) throw new Error('lab is destroyed');
      const child = spawn('ip', ['netns', 'exec', host.ns, cmd, ...args], {
        env: { PATH: process.env.PATH ?? '', ...opts.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const p = track(child, host);
      state.processes.push(p);
      return p;
    },
    async cut(host) {
      await ip(`-n ${bridgeNs} link set ${bridgePort(host)} down`);
    },
    async heal(host) {
      await ip(`-n ${bridgeNs} link set ${bridgePort(host)} up`);
      await ip(`-n ${host.ns} link set ${host.link} up`);
      await ip(`-n ${host.ns} route replace ${MULTICAST_ROUTE} dev ${host.link}`);
    },
    destroy,
  };
}

/**
 * Refuses a lab from which a packet could leave: every host must reach every
 * other host, and multicast, through its own veth, and have no default route
 * and no route to an outside address. `ip route get` only looks up.
 */
async function checkContained(h: NetnsHost, hosts: readonly NetnsHost[]): Promise<void> {
  const defaults = (await ip(`-n ${h.ns} route show default`)).trim();
  if (defaults !== '') throw new Error(`lab host ${h.ns} has a default route: ${defaults}`);
  const targets = [...hosts.filter((o) => o !== h).map((o) => o.address), '224.0.0.251'];
  for (const addr of targets) {
    const route = await ip(`-n ${h.ns} route get ${addr}`);
    const first = route.split('\n')[0] ?? '';
    if (!first.includes(` dev ${h.link} `) || first.includes(' via ')) {
      throw new Error(`lab host ${h.ns} would not reach ${addr} directly via ${h.link}: ${first}`);
    }
  }
  const outside = await ip(`-n ${h.ns} route get ${OUTSIDE_ADDRESS}`).then(
    (r) => r,
    () => undefined,
  );
  if (outside !== undefined) throw new Error(`lab host ${h.ns} has a route out: ${outside.trim()}`);
}

/** Like Promise.all, but waits for every promise to settle first, so nothing is still running during cleanup. */
async function allOrFirstError(promises: Promise<void>[]): Promise<void> {
  const failed = (await Promise.allSettled(promises)).find((r) => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}

/**
 * SIGKILLs whatever still runs in `ns` until nothing does (bounded). A dead
 * process leaves the namespace at once, even before it is reaped.
 */
async function killAllIn(ns: string): Promise<void> {
  const deadline = Date.now() + KILL_REAP_MS;
  for (;;) {
    const left = await pidsIn(ns);
    if (left.length === 0) return;
    if (Date.now() > deadline) throw new Error(`processes ${left.join(', ')} still in ${ns} after SIGKILL`);
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // exited meanwhile
      }
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}
