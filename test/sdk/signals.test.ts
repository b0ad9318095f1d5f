/** callSignal (src/sdk/signals.ts): the per-call signal the SDK uses instead of AbortSignal.any. */
import { getEventListeners } from 'node:events';
import test from 'ava';
import { callSignal } from '../../src/sdk/signals.js';
import { waitFor } from '../helpers/wire.js';

test('a released call leaves nothing on its long-lived parent', (t) => {
  const life = new AbortController();
  for (let i = 0; i < 10_000; i++) callSignal([life.signal, undefined], 60_000).release();
  t.is(getEventListeners(life.signal, 'abort').length, 0);
});

test("a parent's abort reaches the call with the parent's reason, and detaches from the others", (t) => {
  const a = new AbortController();
  const b = new AbortController();
  const call = callSignal([a.signal, b.signal]);
  const why = new Error('closing');
  b.abort(why);
  t.true(call.signal.aborted);
  t.is(call.signal.reason, why);
  t.is(getEventListeners(a.signal, 'abort').length, 0);
  t.true(callSignal([b.signal]).signal.aborted, 'an aborted parent gives an aborted call');
});

test('the timeout aborts with a TimeoutError', async (t) => {
  const call = callSignal([], 20);
  await waitFor(() => call.signal.aborted, 'the timeout');
  t.is((call.signal.reason as Error).name, 'TimeoutError');
});
