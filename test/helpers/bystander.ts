/**
 * A well-behaved client for attack tests: while an attack runs against a
 * node, it keeps doing rounds of one confirmed durable SEND (+STORED,
 * protocol/DURABLE.md D3.1) and one core request/reply through a stock NATS
 * client (CLIENT.md C5.6), one after the other. Tests wait for it to make
 * progress while the attack goes on (`advance`), and at the end `finish`
 * pulls every confirmed message back and compares ids and payloads: other
 * clients' throughput and every confirmed message survive the attack.
 */
import { randomBytes } from 'node:crypto';
import type { ExecutionContext } from 'ava';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { DurableClient, pullAll } from './durable-client.js';
import { waitFor } from './wire.js';

/** Most rounds one bystander runs, so its loop is bounded whatever the test does. */
const MAX_ROUNDS = 100_000;
/** How long one request may wait for its reply: a loaded machine is slow, not broken. */
const REQUEST_TIMEOUT_MS = 10_000;
/** How long `advance` waits by default for the rounds it asks for. */
const ADVANCE_TIMEOUT_MS = 15_000;
const ECHO_SUBJECT = 'bystander.echo';

const te = new TextEncoder();

export class Bystander {
  /** Rounds completed: each one SEND confirmed and one request answered with its own payload. */
  rounds = 0;
  /** Why the loop stopped early (empty while all is well). */
  readonly failures: string[] = [];
  /** Confirmed messages: id -> payload. */
  private readonly confirmed = new Map<string, string>();
  private running = true;
  private readonly loop: Promise<void>;

  private constructor(
    private readonly port: number,
    readonly destination: string,
    private readonly durable: DurableClient,
    private readonly nc: NatsConnection,
  ) {
    this.loop = this.run();
  }

  /** Connects (from 127.0.0.1: two connections), starts the echo responder and the loop. */
  static async start(
    t: ExecutionContext,
    port: number,
    destination = 'bystander.orders',
  ): Promise<Bystander> {
    const durable = await DurableClient.connect(port, '127.0.0.1', 'bystander');
    t.teardown(() => durable.close());
    const nc = await connect({ servers: `127.0.0.1:${port}`, reconnect: false, name: 'bystander' });
    t.teardown(async () => {
      if (!nc.isClosed()) await nc.close();
    });
    nc.subscribe(ECHO_SUBJECT, { callback: (_err, m) => void m.respond(m.data) });
    await nc.flush();
    const b = new Bystander(port, destination, durable, nc);
    t.teardown(() => {
      b.running = false;
    });
    return b;
  }

  /** Throws if a round failed, or if the bystander was stopped (it will make no more progress). */
  check(): void {
    if (this.failures.length > 0) throw new Error(`the bystander failed: ${this.failures.join('; ')}`);
    if (!this.running) throw new Error('the bystander was stopped');
  }

  /**
   * Waits until `n` more rounds are done; rejects as soon as one fails or the
   * bystander is stopped. A test may start it, run the attack, and await it
   * after: if the test fails before that, the rejection is not unhandled and
   * ends at the teardown, not at the timeout.
   */
  advance(n: number, what: string, timeoutMs = ADVANCE_TIMEOUT_MS): Promise<void> {
    const target = this.rounds + n;
    const done = waitFor(
      () => {
        if (this.rounds >= target) return true;
        this.check();
        return false;
      },
      `${n} bystander rounds ${what}`,
      timeoutMs,
    ).then(() => undefined);
    done.catch(() => undefined);
    return done;
  }

  /**
   * Stops the loop and checks: no round failed, both connections are still
   * open, and a new consumer group pulls back exactly the confirmed messages.
   */
  async finish(t: ExecutionContext): Promise<void> {
    this.running = false;
    await this.loop;
    t.deepEqual(this.failures, [], 'every bystander round succeeded');
    t.false(this.durable.closed, 'the bystander durable connection is still open');
    t.false(this.nc.isClosed(), 'the bystander NATS connection is still open');
    const auditor = await DurableClient.connect(this.port, '127.0.0.1', 'auditor');
    try {
      const got = await pullAll(auditor, this.destination, 'audit', { ack: true });
      const pulled = new Map(got.map((m) => [m.id, m.payload.toString()]));
      t.is(pulled.size, got.length, 'no message pulled twice');
      const wrong = [...this.confirmed].filter(([id, payload]) => pulled.get(id) !== payload);
      t.deepEqual(wrong.slice(0, 10), [], 'every confirmed message is pulled back with its payload');
      t.is(got.length, this.confirmed.size, 'nothing but the confirmed messages is pulled');
      t.true(this.confirmed.size === this.rounds && this.rounds > 0);
    } finally {
      auditor.close();
      this.durable.close();
      await this.nc.close();
    }
  }

  private async run(): Promise<void> {
    const tag = randomBytes(4).toString('hex');
    for (let i = 0; this.running && i < MAX_ROUNDS; i++) {
      const payload = `bystander ${tag} ${i}`;
      try {
        const stored = await this.durable.send(this.destination, payload);
        if (!stored.ok) throw new Error(`SEND refused: ${stored.error}`);
        this.confirmed.set(stored.id, payload);
        const reply = await this.nc.request(ECHO_SUBJECT, te.encode(payload), {
          timeout: REQUEST_TIMEOUT_MS,
        });
        if (reply.string() !== payload) throw new Error(`reply ${JSON.stringify(reply.string())}`);
      } catch (err) {
        // After `finish` or teardown stopped the loop, a closed connection is not a failure.
        if (this.running) this.failures.push(`round ${i}: ${(err as Error).message}`);
        return;
      }
      this.rounds++;
    }
  }
}
