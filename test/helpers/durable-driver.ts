/**
 * A client for the durable verbs (protocol/DURABLE.md sections 3-4) run as a
 * process of its own INSIDE a lab host (test/helpers/netns.ts), so the test
 * process never connects to a lab address (shared/notes/NETNS.md). It
 * prints one JSON line per outcome on stdout for the test to collect:
 *
 *   send  <host> <port> <dest> <idPrefix> <count> [maxSeconds]
 *       ids `<idPrefix>-0` .. `<idPrefix>-<count-1>`, at most 32 outstanding;
 *       `{"confirmed":id}` per +STORED, `{"refused":id,"err":..,"attempt":n,
 *       "final":bool}` per -ERR or unanswered send; a refused or unanswered
 *       id is sent again (same id, D3.4 de-duplicates) a few times; a dropped
 *       connection is reopened (bounded). Ends `{"done":true,"confirmed":n}`.
 *   drain <host> <port> <dest> <group> [idleRounds] [maxSeconds]
 *       PULLs (batch 500, wait 1000 ms) and ACKs until `idleRounds` pulls in
 *       a row are empty; `{"got":id,"deliveries":n}` per delivery,
 *       `{"pullErr":..}` per refused pull; ends `{"done":true,"got":n}`.
 *   owner <host> <port> <dest> [dest...]
 *       `{"dest":..,"owner":..,"client":..,"replicas":[..]}` per destination
 *       (M3.3), asked on one connection.
 *
 * Exit 0 when done, 1 on a bad command line or a deadline, 2 when the hard
 * deadline fires. Everything is bounded: connects, sends, reconnects, time.
 */
import process from 'node:process';
import { DurableClient } from './durable-client.js';

/** At most this many sends await their answer at once (a pipelined producer). */
const MAX_OUTSTANDING = 32;
/** A refused or unanswered id is sent at most this many times in all. */
const MAX_ATTEMPTS = 5;
/** Connects (TCP plus the CONNECT/PING handshake) that take longer have failed. */
const CONNECT_TIMEOUT_MS = 5_000;
/** A connection that dies is reopened at most this many times per command. */
const MAX_RECONNECTS = 20;
/** Pause before a reconnect or a resend after a refusal: the cluster may be failing over. */
const RETRY_PAUSE_MS = 250;
/**
 * An answer later than this means the connection is stuck; it is closed and
 * reopened. A forwarded call may wait 15 s for an owner (M4.5) plus the 5 s
 * request timeout (M4.4), so this is above both.
 */
const SEND_ANSWER_TIMEOUT_MS = 30_000;
/** PULL batch and wait for `drain`. */
const DRAIN_BATCH = 500;
const DRAIN_WAIT_MS = 1_000;
/** Default deadlines of `send` and `drain`, in seconds. */
const DEFAULT_SEND_SECONDS = 60;
const DEFAULT_DRAIN_SECONDS = 60;
/** The hard deadline is the command's own plus this: nothing outlives it. */
const HARD_DEADLINE_SLACK_MS = 30_000;

function emit(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Rejects with `what` if `p` has not settled within `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function connect(host: string, port: number): Promise<DurableClient> {
  let timedOut = false;
  const attempt = DurableClient.connect(port, host, 'durable-driver');
  // A connect that loses the race must not leak its socket.
  attempt.then(
    (c) => timedOut && c.close(),
    () => undefined,
  );
  try {
    return await within(attempt, CONNECT_TIMEOUT_MS, `connect to ${host}:${port}`);
  } catch (err) {
    timedOut = true;
    throw err;
  }
}

/** Opens a connection, retrying (paced, bounded) until `deadlineMs`. */
async function connectRetrying(host: string, port: number, deadlineMs: number): Promise<DurableClient> {
  for (let i = 0; ; i++) {
    try {
      return await connect(host, port);
    } catch (err) {
      emit({ connectErr: (err as Error).message });
      if (i >= MAX_RECONNECTS || Date.now() + RETRY_PAUSE_MS > deadlineMs) throw err;
      await pause(RETRY_PAUSE_MS);
    }
  }
}

async function send(
  host: string,
  port: number,
  dest: string,
  idPrefix: string,
  count: number,
  maxSeconds: number,
): Promise<boolean> {
  const deadlineMs = Date.now() + maxSeconds * 1000;
  const queue = Array.from({ length: count }, (_, i) => `${idPrefix}-${i}`);
  const attempts = new Map<string, number>();
  const confirmed = new Set<string>();
  let reconnects = 0;

  /** Records a failed attempt; true if the id goes back into the queue. */
  const failed = (id: string, err: string): boolean => {
    const n = (attempts.get(id) ?? 0) + 1;
    attempts.set(id, n);
    const final = n >= MAX_ATTEMPTS;
    emit({ refused: id, err, attempt: n, final });
    // Retried next, before new ids: a retry must not wait behind the rest of the count.
    if (!final) queue.unshift(id);
    return !final;
  };

  while (queue.length > 0 && Date.now() < deadlineMs) {
    const c = await connectRetrying(host, port, deadlineMs);
    const worker = async (): Promise<void> => {
      while (!c.closed && Date.now() < deadlineMs) {
        const id = queue.shift();
        if (id === undefined) return;
        try {
          const r = await within(c.send(dest, `payload-${id}`, { id }), SEND_ANSWER_TIMEOUT_MS, `SEND ${id}`);
          if (r.ok) {
            if (!confirmed.has(id)) emit({ confirmed: id, seq: r.seq, duplicate: r.duplicate });
            confirmed.add(id);
          } else if (failed(id, r.error ?? '')) {
            await pause(RETRY_PAUSE_MS);
          }
        } catch (err) {
          // Unanswered: the connection died or is stuck; answers come in order (D3.5), so reopen it.
          failed(id, (err as Error).message);
          c.close();
        }
      }
    };
    await Promise.all(Array.from({ length: MAX_OUTSTANDING }, worker));
    c.close();
    if (queue.length > 0 && Date.now() < deadlineMs) {
      if (++reconnects > MAX_RECONNECTS) {
        emit({ gaveUp: `connection lost ${reconnects} times` });
        break;
      }
      await pause(RETRY_PAUSE_MS);
    }
  }
  for (const id of queue) emit({ refused: id, err: 'not sent before the deadline', final: true });
  emit({ done: true, confirmed: confirmed.size, unsent: queue.length });
  return true;
}

async function drain(
  host: string,
  port: number,
  dest: string,
  group: string,
  idleRounds: number,
  maxSeconds: number,
): Promise<boolean> {
  const deadlineMs = Date.now() + maxSeconds * 1000;
  let got = 0;
  let empty = 0;
  let reconnects = 0;
  let c = await connectRetrying(host, port, deadlineMs);
  while (empty < idleRounds) {
    if (Date.now() > deadlineMs) {
      emit({ done: false, got, why: `still not empty after ${maxSeconds} s` });
      c.close();
      return false;
    }
    if (c.closed) {
      if (++reconnects > MAX_RECONNECTS) {
        emit({ done: false, got, why: `connection lost ${reconnects} times` });
        return false;
      }
      c = await connectRetrying(host, port, deadlineMs);
    }
    try {
      // The wait plus the forwarding timeouts (M4.4), with margin.
      const batch = await within(
        c.pull(dest, group, DRAIN_BATCH, String(DRAIN_WAIT_MS)),
        DRAIN_WAIT_MS + SEND_ANSWER_TIMEOUT_MS,
        `PULL ${dest} ${group}`,
      );
      empty = batch.length === 0 ? empty + 1 : 0;
      for (const m of batch) emit({ got: m.id, deliveries: m.deliveries });
      got += batch.length;
      c.ack(...batch.map((m) => m.handle));
    } catch (err) {
      emit({ pullErr: (err as Error).message });
      if (!c.closed && (err as Error).message.includes('no answer within')) c.close();
      await pause(RETRY_PAUSE_MS);
    }
  }
  // Everything written (the last ACKs) has been read and handled by the node once PONG comes.
  await c.ping(CONNECT_TIMEOUT_MS).catch((err: Error) => emit({ pingErr: err.message }));
  for (const e of c.errors) emit({ ackErr: e });
  c.close();
  emit({ done: true, got });
  return true;
}

async function owner(host: string, port: number, dests: string[]): Promise<boolean> {
  const c = await connect(host, port);
  try {
    c.write(dests.map((d) => `OWNER ${d}\r\n`).join(''));
    // OWNER is answered in order, so before the PONG (a -ERR lands in `errors`).
    await c.ping(CONNECT_TIMEOUT_MS);
    let ok = true;
    for (const dest of dests) {
      const line = c.other.find((l) => l.startsWith(`+OWNER ${dest} `));
      if (line === undefined) {
        emit({ dest, err: c.errors.join('; ') || 'no +OWNER answer' });
        ok = false;
        continue;
      }
      const [, , id, client, replicas] = line.split(' ');
      const replicaIds = replicas === '-' || replicas === undefined ? [] : replicas.split(',');
      emit({ dest, owner: id, client, replicas: replicaIds });
    }
    return ok;
  } finally {
    c.close();
  }
}

function usage(): never {
  process.stderr.write(
    'usage: durable-driver send <host> <port> <dest> <idPrefix> <count> [maxSeconds]\n' +
      '       durable-driver drain <host> <port> <dest> <group> [idleRounds] [maxSeconds]\n' +
      '       durable-driver owner <host> <port> <dest> [dest...]\n',
  );
  process.exit(1);
}

/** A positive integer argument, or the usage text. */
function int(v: string | undefined, fallback?: number): number {
  if (v === undefined && fallback !== undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) usage();
  return n;
}

async function main(argv: string[]): Promise<boolean> {
  const [cmd, host, portText, dest, a, b, c] = argv;
  if (host === undefined || dest === undefined) usage();
  const port = int(portText);
  let seconds: number;
  let run: () => Promise<boolean>;
  switch (cmd) {
    case 'send':
      if (a === undefined) usage();
      seconds = int(c, DEFAULT_SEND_SECONDS);
      run = () => send(host, port, dest, a, int(b), seconds);
      break;
    case 'drain':
      if (a === undefined) usage();
      seconds = int(c, DEFAULT_DRAIN_SECONDS);
      run = () => drain(host, port, dest, a, int(b, 3), seconds);
      break;
    case 'owner':
      seconds = CONNECT_TIMEOUT_MS / 1000;
      run = () => owner(host, port, argv.slice(3));
      break;
    default:
      usage();
  }
  setTimeout(
    () => {
      emit({ done: false, why: 'hard deadline' });
      process.exit(2);
    },
    seconds * 1000 + HARD_DEADLINE_SLACK_MS,
  ).unref();
  return run();
}

main(process.argv.slice(2)).then(
  (ok) => process.exit(ok ? 0 : 1),
  (err: unknown) => {
    emit({ done: false, why: (err as Error).message });
    process.exit(1);
  },
);
