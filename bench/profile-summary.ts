/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): where the time went.
 *
 *   node dist/bench/profile-summary.js <file.cpuprofile | dir> [--top N]
 *
 * Given a directory, reads its newest .cpuprofile. Prints:
 *   - the top N functions by self time (default 20), with % of all sampled
 *     time and % of busy time (all time minus "(idle)");
 *   - self time rolled up by script (SwarmMQ file, node: module, package);
 *   - the SwarmMQ functions with the most inclusive time (self + callees).
 * SwarmMQ locations are mapped back to src/*.ts through the emitted source
 * maps when they are there.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { SourceMap } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

interface FnStat {
  label: string;
  script: string;
  own: boolean;
  self: number;
  total: number;
}

function usage(err?: string): never {
  if (err !== undefined) console.error(`profile-summary: ${err}`);
  console.error('usage: node dist/bench/profile-summary.js <file.cpuprofile | dir> [--top N]');
  process.exit(err === undefined ? 0 : 2);
}

function parseArgs(argv: string[]): { file: string; top: number } {
  let target: string | undefined;
  let top = 20;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--top') {
      top = Number(argv[++i]);
      if (!Number.isInteger(top) || top < 1 || top > 1000) usage('--top must be 1..1000');
    } else if (a === '--help' || a === '-h') usage();
    else if (target === undefined) target = a;
    else usage(`unexpected argument ${a}`);
  }
  if (target === undefined) usage('no profile given');
  if (!existsSync(target)) usage(`${target} does not exist`);
  if (statSync(target).isDirectory()) {
    const dir = target;
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => path.join(dir, f))
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
    if (files.length === 0) usage(`no .cpuprofile in ${dir}`);
    target = files[0]!;
  }
  return { file: target, top };
}

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * A path shown relative to the SwarmMQ build it belongs to (the directory
 * holding dist/), so that a profile of a build elsewhere (SWARMMQ_MAIN) reads
 * the same; other files relative to this repository.
 */
function shortPath(file: string): string {
  const i = file.lastIndexOf(`${path.sep}dist${path.sep}`);
  if (i >= 0) return file.slice(i + 1);
  const j = file.lastIndexOf(`${path.sep}src${path.sep}`);
  if (j >= 0) return file.slice(j + 1);
  return path.relative(REPO_ROOT, file);
}
const sourceMaps = new Map<string, SourceMap | null>();

/** Maps a dist/ location back to its .ts source when a source map is there. */
function originalLocation(url: string, line: number, column: number): string | undefined {
  if (!url.startsWith('file://')) return undefined;
  const file = fileURLToPath(url);
  let map = sourceMaps.get(file);
  if (map === undefined) {
    map = null;
    try {
      map = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')));
    } catch {
      // no map: keep the dist location
    }
    sourceMaps.set(file, map);
  }
  if (map === null) return undefined;
  const entry = map.findEntry(line, column) as { originalSource?: string; originalLine?: number };
  if (entry.originalSource === undefined || entry.originalLine === undefined) return undefined;
  const src = entry.originalSource.startsWith('file://')
    ? fileURLToPath(entry.originalSource)
    : path.resolve(path.dirname(file), entry.originalSource);
  return `${shortPath(src)}:${entry.originalLine + 1}`;
}

/** Where a frame's script belongs, for the roll-up. */
function scriptOf(cf: CallFrame): { script: string; own: boolean } {
  const url = cf.url;
  if (url === '') {
    return { script: cf.functionName.startsWith('(') ? cf.functionName : '(native / builtin)', own: false };
  }
  if (url.startsWith('node:')) return { script: url, own: false };
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    const pkg = rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
    return { script: `pkg ${pkg}`, own: false };
  }
  if (url.startsWith('file://')) {
    const rel = shortPath(fileURLToPath(url));
    return { script: rel, own: rel.startsWith('dist/src/') };
  }
  return { script: url, own: false };
}

function summarise(profile: CpuProfile): {
  fns: FnStat[];
  scripts: Map<string, number>;
  total: number;
  idle: number;
} {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  // One entry per function (name + script + position), whatever the call path.
  const keyOf = new Map<number, string>();
  const fns = new Map<string, FnStat>();
  for (const n of profile.nodes) {
    const cf = n.callFrame;
    const key = `${cf.functionName}|${cf.url}|${cf.lineNumber}|${cf.columnNumber}`;
    keyOf.set(n.id, key);
    if (fns.has(key)) continue;
    const { script, own } = scriptOf(cf);
    const name = cf.functionName === '' ? '(anonymous)' : cf.functionName;
    let where = '';
    if (cf.url !== '') {
      where =
        originalLocation(cf.url, cf.lineNumber, cf.columnNumber) ??
        `${script.startsWith('pkg ') ? script.slice(4) : script}:${cf.lineNumber + 1}`;
    }
    fns.set(key, { label: where === '' ? name : `${name}  ${where}`, script, own, self: 0, total: 0 });
  }
  // Sample i lasts until sample i+1 (as Chrome DevTools counts it).
  const { samples, timeDeltas } = profile;
  const stamps: number[] = new Array<number>(samples.length);
  let t = profile.startTime;
  for (let i = 0; i < samples.length; i++) {
    t += timeDeltas[i] ?? 0;
    stamps[i] = t;
  }
  const scripts = new Map<string, number>();
  let total = 0;
  let idle = 0;
  const seen = new Set<string>();
  for (let i = 0; i < samples.length; i++) {
    const next = i + 1 < samples.length ? stamps[i + 1]! : profile.endTime;
    const dur = Math.max(0, next - stamps[i]!);
    const id = samples[i]!;
    const fn = fns.get(keyOf.get(id)!)!;
    fn.self += dur;
    total += dur;
    if (fn.label === '(idle)') idle += dur;
    scripts.set(fn.script, (scripts.get(fn.script) ?? 0) + dur);
    // Inclusive: every distinct function on the stack once (recursion counted once).
    seen.clear();
    for (let cur: number | undefined = id, depth = 0; cur !== undefined && depth < 10_000; depth++) {
      const key = keyOf.get(cur)!;
      if (!seen.has(key)) {
        seen.add(key);
        fns.get(key)!.total += dur;
      }
      cur = parent.get(cur);
    }
  }
  return { fns: [...fns.values()], scripts, total, idle };
}

function main(): void {
  const { file, top } = parseArgs(process.argv.slice(2));
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const { fns, scripts, total, idle } = summarise(profile);
  const busy = total - idle;
  const ms = (us: number): string => (us / 1000).toFixed(1);
  const pct = (us: number, of: number): string => (of > 0 ? ((us / of) * 100).toFixed(1) : '0.0');
  const out: string[] = [];
  out.push(`profile: ${file}`);
  out.push(
    `sampled ${ms(total)} ms in ${profile.samples.length} samples; busy (not idle) ${ms(busy)} ms (${pct(busy, total)}%)`,
  );
  const table = (title: string, rows: [string, number][], extra?: (label: string) => string): void => {
    out.push('', title);
    out.push(`${'self ms'.padStart(9)}  ${'% all'.padStart(6)}  ${'% busy'.padStart(6)}  function / script`);
    for (const [label, us] of rows) {
      const busyPct = label.startsWith('(idle)') ? '' : pct(us, busy);
      out.push(
        `${ms(us).padStart(9)}  ${pct(us, total).padStart(6)}  ${busyPct.padStart(6)}  ${label}${extra?.(label) ?? ''}`,
      );
    }
  };
  const bySelf = [...fns].sort((a, b) => b.self - a.self).slice(0, top);
  table(
    `top ${top} functions by self time`,
    bySelf.map((f) => [f.label, f.self]),
  );
  const byScript = [...scripts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15);
  table('self time by script', byScript);
  const own = fns
    .filter((f) => f.own)
    .sort((a, b) => b.total - a.total)
    .slice(0, 15);
  out.push('', 'SwarmMQ functions by inclusive time (self + everything they call)');
  out.push(`${'total ms'.padStart(9)}  ${'% busy'.padStart(6)}  ${'self ms'.padStart(8)}  function`);
  for (const f of own) {
    out.push(
      `${ms(f.total).padStart(9)}  ${pct(f.total, busy).padStart(6)}  ${ms(f.self).padStart(8)}  ${f.label}`,
    );
  }
  console.log(out.join('\n'));
}

main();
