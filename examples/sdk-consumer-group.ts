/**
 * A consumer group with the SwarmMQ SDK: three workers in the group
 * `billing` share the durable destination `invoices`; each invoice is
 * handled by one of them and acked. It sends 60 invoices first, so it runs
 * on its own. Run a cluster (`npx swarmmq cluster --nodes 3`), then
 * `node dist/examples/sdk-consumer-group.js` (SWARMMQ_URL overrides
 * localhost:4222).
 */
import { connect, type ConsumedMessage } from 'swarmmq';

const servers = (process.env.SWARMMQ_URL ?? 'localhost:4222').split(',');
const invoices = 60;
const client = await connect({ servers, name: 'billing' });
const run = Date.now().toString(36);
await Promise.all(
  Array.from({ length: invoices }, (_, i) =>
    client.send('invoices', JSON.stringify({ run, invoice: i }), { id: `${run}-${i}` }),
  ),
);

const handled = new Map<number, number>();
const perWorker = [0, 0, 0];
const stop = new AbortController();

async function worker(n: number): Promise<void> {
  // Each worker is its own consumer; the group shares the messages between them (DURABLE.md D2.4).
  for await (const m of client.consume('invoices', { group: 'billing', batch: 5, signal: stop.signal })) {
    await handle(n, m);
  }
}

async function handle(n: number, m: ConsumedMessage): Promise<void> {
  const body = m.json<{ run: string; invoice: number }>();
  if (body.run !== run) return m.ack(); // left over from an earlier run
  await new Promise((resolve) => setTimeout(resolve, 5)); // the work
  handled.set(body.invoice, (handled.get(body.invoice) ?? 0) + 1);
  perWorker[n]!++;
  m.ack();
  if (handled.size === invoices) stop.abort();
}

await Promise.all([0, 1, 2].map(worker));
const twice = [...handled.values()].filter((c) => c > 1).length;
console.log(`workers handled ${perWorker.join(' + ')} = ${handled.size} invoices, ${twice} twice`);
await client.close();
