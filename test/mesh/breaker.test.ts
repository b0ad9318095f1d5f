/** Circuit breakers per peer (protocol/MESH.md M5.6), on a fake clock. */
import test from 'ava';
import { Breakers } from '../../src/mesh/breaker.js';
import { BREAKER_FAILURES, BREAKER_MAX_OPEN_MS, BREAKER_OPEN_MS } from '../../src/config/defaults.js';

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

test('M5.6 a peer opens after BREAKER_FAILURES timeouts in a row, and is tried again once the open time passes', (t) => {
  const c = clock();
  const b = new Breakers(c.now);
  for (let i = 1; i < BREAKER_FAILURES; i++) t.is(b.failed('p', 'Timeout'), undefined);
  t.false(b.isOpen('p'));
  t.is(b.failed('p', 'Timeout'), BREAKER_OPEN_MS);
  t.true(b.isOpen('p'));
  t.false(b.isOpen('q'), 'other peers are not affected');
  c.advance(BREAKER_OPEN_MS - 1);
  t.true(b.isOpen('p'));
  c.advance(1);
  t.false(b.isOpen('p'), 'half-open: the next request goes through');
});

test('M5.6 while a peer keeps failing its open time doubles up to the maximum; a success closes it', (t) => {
  const c = clock();
  const b = new Breakers(c.now);
  const opened: number[] = [];
  for (let round = 0; round < 8; round++) {
    for (let i = 0; i < BREAKER_FAILURES; i++) {
      const ms = b.failed('p', 'Unreachable');
      if (ms !== undefined) opened.push(ms);
    }
    c.advance(BREAKER_MAX_OPEN_MS);
  }
  t.is(opened[0], BREAKER_OPEN_MS);
  t.is(opened[1], 2 * BREAKER_OPEN_MS);
  t.is(opened.at(-1), BREAKER_MAX_OPEN_MS);
  t.true(opened.every((ms, i) => i === 0 || ms >= opened[i - 1]!));
  t.true(b.succeeded('p'), 'a success after an opening is reported (logged as recovered)');
  t.is(b.failed('p', 'Timeout'), undefined, 'counting starts over');
  t.false(b.isOpen('p'));
});

test('M5.6 a closed link or an error answer never opens a circuit; forgetting a peer closes it', (t) => {
  const b = new Breakers(clock().now);
  for (let i = 0; i < 10 * BREAKER_FAILURES; i++) {
    b.failed('p', 'LinkClosed');
    b.failed('p', 'DurableError');
    b.failed('p', undefined);
  }
  t.false(b.isOpen('p'));
  for (let i = 0; i < BREAKER_FAILURES; i++) b.failed('p', 'LinkFull');
  t.true(b.isOpen('p'));
  t.true(b.forget('p'));
  t.false(b.isOpen('p'), 'a member back in the view is tried at once');
  t.false(b.succeeded('p'));
});
