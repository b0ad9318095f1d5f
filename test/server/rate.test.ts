/** The per-address connection rate (protocol/SECURITY.md SEC5.2) on a fake clock. */
import test from 'ava';
import { ConnectionRate } from '../../src/server/rate.js';

test('a burst of one second, then the rate', (t) => {
  let now = 0;
  const r = new ConnectionRate(10, () => now);
  let admitted = 0;
  for (let i = 0; i < 25; i++) if (r.admit('10.0.0.1')) admitted++;
  t.is(admitted, 10);
  t.true(r.admit('10.0.0.2'), 'another address has its own bucket');
  now += 500;
  admitted = 0;
  for (let i = 0; i < 25; i++) if (r.admit('10.0.0.1')) admitted++;
  t.is(admitted, 5, 'half a second refills half the bucket');
  now += 60_000;
  admitted = 0;
  for (let i = 0; i < 25; i++) if (r.admit('10.0.0.1')) admitted++;
  t.is(admitted, 10, 'never more than the burst');
});

test('0 turns the limit off', (t) => {
  const r = new ConnectionRate(0, () => 0);
  for (let i = 0; i < 1000; i++) t.true(r.admit('a'));
  t.is(r.trackedAddresses, 0);
});

test('the address table stays bounded and forgets the least recently seen', (t) => {
  const r = new ConnectionRate(1, () => 0, 100);
  t.true(r.admit('keep'));
  for (let i = 0; i < 99; i++) r.admit(`a${i}`);
  t.false(r.admit('keep'), 'seen again: moves to the end, still empty');
  for (let i = 0; i < 10_000; i++) r.admit(`b${i}`);
  t.is(r.trackedAddresses, 100);
  t.true(r.admit('keep'), 'forgotten, so it starts with a full bucket');
});
