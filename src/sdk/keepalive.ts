/**
 * Liveness of the SDK's connections. A node that is frozen or cut off
 * without a reset keeps its TCP connection open, and the calls on it would
 * wait for their whole deadline; so each connection the SDK opens sends a
 * PING every `intervalMs` and is dropped when one is not answered within
 * `timeoutMs` (CLIENT.md C2.6, C2.7 from the client's side). The drop fails
 * the calls on it as a lost connection, which the SDK retries elsewhere.
 */
import type { Client } from './wire/connection.js';
import { ClientErrorCode, type ClientError } from './wire/errors.js';
import type { Dial } from './links.js';

/** A dialler whose connections are pinged, and dropped when a PING goes unanswered. */
export function withKeepalive(dial: Dial, intervalMs: number, timeoutMs: number): Dial {
  return async (address, signal) => {
    const c = await dial(address, signal);
    watch(c, intervalMs, timeoutMs);
    return c;
  };
}

function watch(c: Client, intervalMs: number, timeoutMs: number): void {
  let waiting = false;
  const timer = setInterval(() => {
    if (waiting) return;
    waiting = true;
    c.ping(AbortSignal.timeout(timeoutMs)).then(
      () => (waiting = false),
      (err: ClientError) => {
        waiting = false;
        if (err.code === ClientErrorCode.Timeout) c.destroy();
      },
    );
  }, intervalMs);
  timer.unref();
  void c.closed.then(() => clearInterval(timer));
}
