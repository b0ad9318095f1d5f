/**
 * A strict parser of Prometheus' text exposition format (0.0.4), for tests
 * that scrape a live node's /metrics. prom-client writes the format but has
 * no parser; this one throws on any line it cannot read, so a malformed
 * scrape fails the test instead of being skipped.
 */

export interface Sample {
  /** The sample's own name: `x_bucket`, `x_sum`, `x_count` for a histogram `x`. */
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  type: string;
  help: string;
  readonly samples: Sample[];
}

export type Scrape = ReadonlyMap<string, Family>;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*/;
/** Suffixes a sample of each family type may add to the family's name. */
const SUFFIXES: Record<string, readonly string[]> = {
  histogram: ['_bucket', '_sum', '_count'],
  summary: ['', '_sum', '_count'],
};

/** Parses an exposition; throws with the line number on anything malformed. */
export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  let current: Family | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') continue;
    try {
      if (line.startsWith('#')) {
        const m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) ?(.*)$/.exec(line);
        if (m === null) continue; // a plain comment
        const [, kind, name, rest] = m as unknown as [string, string, string, string];
        let f = families.get(name);
        if (f === undefined) {
          f = { name, type: 'untyped', help: '', samples: [] };
          families.set(name, f);
        }
        if (kind === 'HELP') f.help = rest.replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
        else {
          if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) {
            throw new Error(`unknown type ${rest}`);
          }
          f.type = rest;
        }
        current = f;
        continue;
      }
      const sample = parseSample(line);
      const owner = current !== undefined && belongsTo(sample.name, current) ? current : undefined;
      if (owner === undefined) throw new Error(`sample ${sample.name} outside its family`);
      owner.samples.push(sample);
    } catch (err) {
      throw new Error(
        `exposition line ${i + 1} (${JSON.stringify(line.slice(0, 120))}): ${(err as Error).message}`,
      );
    }
  }
  return families;
}

function belongsTo(sample: string, f: Family): boolean {
  return (SUFFIXES[f.type] ?? ['']).some((s) => sample === f.name + s);
}

function parseSample(line: string): Sample {
  const name = NAME.exec(line)?.[0];
  if (name === undefined) throw new Error('no metric name');
  let pos = name.length;
  const labels: Record<string, string> = {};
  if (line[pos] === '{') {
    pos++;
    while (line[pos] !== '}') {
      const label = LABEL.exec(line.slice(pos))?.[0];
      if (label === undefined || line[pos + label.length] !== '=' || line[pos + label.length + 1] !== '"') {
        throw new Error(`bad label at column ${pos}`);
      }
      pos += label.length + 2;
      let value = '';
      for (;;) {
        const c = line[pos++];
        if (c === undefined) throw new Error('unterminated label value');
        if (c === '"') break;
        if (c === '\\') {
          const e = line[pos++];
          if (e === 'n') value += '\n';
          else if (e === '\\' || e === '"') value += e;
          else throw new Error(`bad escape \\${e ?? ''}`);
        } else value += c;
      }
      if (label in labels) throw new Error(`label ${label} twice`);
      labels[label] = value;
      if (line[pos] === ',') pos++;
      else if (line[pos] !== '}') throw new Error(`expected , or } at column ${pos}`);
    }
    pos++;
  }
  const rest = line.slice(pos).split(' ');
  if (rest[0] !== '' || rest.length < 2 || rest.length > 3) throw new Error('expected " value [timestamp]"');
  return { name, labels, value: parseValue(rest[1]!) };
}

/** As Prometheus reads a value (Go's ParseFloat): Inf and NaN in any case (prom-client writes `Nan`). */
function parseValue(s: string): number {
  const special = s.toLowerCase();
  if (special === '+inf' || special === 'inf') return Infinity;
  if (special === '-inf') return -Infinity;
  if (special === 'nan') return NaN;
  if (!/^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw new Error(`bad value ${s}`);
  return Number(s);
}

/** The samples named `name` whose labels include `labels`. */
export function samples(scrape: Scrape, name: string, labels: Record<string, string> = {}): Sample[] {
  const out: Sample[] = [];
  for (const f of scrape.values()) {
    for (const s of f.samples) {
      if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) out.push(s);
    }
  }
  return out;
}

/** The value of the one sample named `name` with these labels; undefined when there is none; throws on several. */
export function value(scrape: Scrape, name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples(scrape, name, labels);
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

/** GETs /metrics of a node's monitoring port and parses it; checks the content type. */
export async function scrape(monitorPort: number, host = '127.0.0.1'): Promise<Scrape> {
  const res = await fetch(`http://${host}:${monitorPort}/metrics`, { signal: AbortSignal.timeout(5000) });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  const type = res.headers.get('content-type') ?? '';
  if (!type.startsWith('text/plain; version=0.0.4')) throw new Error(`/metrics content-type ${type}`);
  return parseExposition(await res.text());
}
