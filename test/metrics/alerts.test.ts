/**
 * The Prometheus alert rules (configs/prometheus/alerts.yaml,
 * protocol/METRICS.md section 4): promtool accepts them, their unit tests
 * (alerts.test.yaml) pass, every rule is shaped as MT4.1 asks and has a
 * test, and every metric they read is exported by a live node, so the
 * rules cannot drift from the code.
 */
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { parse } from 'yaml';
import { QUIET, RawClient, startTestNode } from '../helpers/wire.js';
import { samples, scrape } from './exposition.js';

const run = promisify(execFile);
const dir = path.resolve(import.meta.dirname, '../../../configs/prometheus');
const rulesFile = path.join(dir, 'alerts.yaml');
const testsFile = path.join(dir, 'alerts.test.yaml');

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const rules = (parse(readFileSync(rulesFile, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap(
  (g) => g.rules,
);

/** CI installs Debian's `prometheus` package, which brings promtool; a machine without it skips, saying so. */
const hasPromtool = spawnSync('promtool', ['--version']).status === 0;
const withPromtool = hasPromtool ? test : test.skip;
const missing = hasPromtool ? '' : ' (SKIPPED: promtool is not installed; apt-get install prometheus)';

async function promtool(...args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run('promtool', args, { cwd: dir, timeout: 60_000 });
    return stdout + stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`promtool ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? e.message}`);
  }
}

withPromtool(`promtool check rules accepts alerts.yaml${missing}`, async (t) => {
  t.regex(await promtool('check', 'rules', rulesFile), new RegExp(`SUCCESS: ${rules.length} rules found`));
});

withPromtool(
  `promtool test rules: each alert fires above its threshold and not below${missing}`,
  async (t) => {
    t.regex(await promtool('test', 'rules', testsFile), /SUCCESS/);
  },
);

test('MT4.1: the architecture thresholds, each rule with for:, a severity, a summary and a description', (t) => {
  t.deepEqual(rules.map((r) => r.alert).sort(), [
    'SwarmMQDeliveryLatencyHigh',
    'SwarmMQDiskHigh',
    'SwarmMQErrorRateHigh',
    'SwarmMQMemoryHigh',
    'SwarmMQQueueDepthHigh',
    'SwarmMQSendConfirmLatencyHigh',
  ]);
  for (const r of rules) {
    t.regex(r.for ?? '', /^\d+m$/, `${r.alert} has for:`);
    t.true(['warning', 'critical'].includes(r.labels?.severity ?? ''), `${r.alert} severity`);
    t.true((r.annotations?.summary ?? '').length > 10, `${r.alert} summary`);
    t.true((r.annotations?.description ?? '').length > 20, `${r.alert} description`);
  }
  const threshold = (name: string): string =>
    /(>\s*[\d.]+)\s*$/.exec(rules.find((r) => r.alert === name)!.expr.trim())![1]!;
  t.is(threshold('SwarmMQSendConfirmLatencyHigh'), '> 0.05');
  t.is(threshold('SwarmMQDeliveryLatencyHigh'), '> 0.05');
  t.is(threshold('SwarmMQErrorRateHigh'), '> 0.001');
  t.is(threshold('SwarmMQMemoryHigh'), '> 0.8');
  t.is(threshold('SwarmMQDiskHigh'), '> 0.8');
  t.is(threshold('SwarmMQQueueDepthHigh'), '> 10000');
});

test('every alert has a unit test in which it fires', (t) => {
  const doc = parse(readFileSync(testsFile, 'utf8')) as {
    rule_files: string[];
    tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
  };
  t.deepEqual(doc.rule_files, ['alerts.yaml']);
  const cases = doc.tests.flatMap((c) => c.alert_rule_test);
  for (const r of rules) {
    const mine = cases.filter((c) => c.alertname === r.alert);
    t.true(
      mine.some((c) => c.exp_alerts.length > 0),
      `${r.alert} fires in some case`,
    );
    t.true(
      mine.some((c) => c.exp_alerts.length === 0),
      `${r.alert} is quiet in some case`,
    );
  }
});

test('every metric the rules read is exported by a live node', async (t) => {
  const n = await startTestNode(t);
  // Traffic that gives every series a sample: a stored message (depth), a
  // delivery (its latency) and a refused operation (errors by kind).
  const [c] = await RawClient.open(t, n.port, QUIET);
  c.send('SUB a..b 1\r\nSEND alerts 1\r\nx\r\nPULL alerts g 1\r\n');
  await c.expect(
    /^-ERR 'Invalid Subject'\r\n\+STORED alerts 1 \S+\r\nDMSG [^\r]+\r\nx\r\n\+PULLED alerts 1\r\n/,
  );
  const m = await scrape(n.node.monitor!.port);
  const used = new Set(
    rules.flatMap((r) => r.expr.match(/\b(?:swarmmq|process|nodejs)_[a-z0-9_]+\b/g) ?? []),
  );
  t.true(used.size >= 10, [...used].join(' '));
  for (const name of used) t.true(samples(m, name).length > 0, `${name} is exported`);
});
