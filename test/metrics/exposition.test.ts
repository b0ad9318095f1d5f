/**
 * The exposition parser the metrics tests rely on (exposition.ts): it must
 * read what Prometheus reads and refuse what Prometheus refuses, or the
 * scrape tests could pass on a broken /metrics.
 */
import test from 'ava';
import { parseExposition, value } from './exposition.js';

test('reads families, labels with escapes, histograms and special values', (t) => {
  const text = [
    '# HELP a_total Things.\\nMore.',
    '# TYPE a_total counter',
    'a_total{k="x \\"q\\" \\\\ \\n",z="1",} 3',
    'a_total{k="y"} 4 1700000000000',
    '# TYPE h_seconds histogram',
    'h_seconds_bucket{le="0.5"} 1',
    'h_seconds_bucket{le="+Inf"} 2',
    'h_seconds_sum 0.75',
    'h_seconds_count 2',
    '# TYPE g gauge',
    'g -Inf',
    'g2 NaN',
  ];
  // g2 has no TYPE of its own: it must be refused as outside its family.
  t.throws(() => parseExposition(text.join('\n')), { message: /line 12 .*outside its family/ });
  const s = parseExposition(text.slice(0, -1).join('\n'));
  t.is(s.get('a_total')?.help, 'Things.\nMore.');
  t.is(value(s, 'a_total', { k: 'x "q" \\ \n' }), 3);
  t.is(value(s, 'a_total', { k: 'y' }), 4);
  t.is(value(s, 'h_seconds_bucket', { le: '+Inf' }), 2);
  t.is(value(s, 'h_seconds_count'), 2);
  t.is(value(s, 'g'), -Infinity);
  t.is(s.get('h_seconds')?.samples.length, 4);
});

const malformed: [string, string][] = [
  ['x{a="1"', 'unterminated labels'],
  ['x{a=1} 1', 'unquoted label value'],
  ['x{a="1" b="2"} 1', 'no comma between labels'],
  ['x{a="\\t"} 1', 'unknown escape'],
  ['x{a="1",a="2"} 1', 'a label twice'],
  ['x 1 2 3', 'too many fields'],
  ['x one', 'not a number'],
  ['x', 'no value'],
  ['{a="1"} 1', 'no name'],
  ['# TYPE x countr', 'unknown type'],
];

for (const [line, what] of malformed) {
  test(`refuses a malformed line: ${what}`, (t) => {
    t.throws(() => parseExposition(`# TYPE x gauge\n${line}\n`));
  });
}
