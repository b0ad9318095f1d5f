/**
 * A queue group: three workers share the `jobs` subject, each job goes to
 * exactly one of them. Run a node (`npx swarmmq start`), then
 * `node dist/examples/queue-workers.js` (SWARMMQ_URL overrides localhost:4222).
 */
import { connect } from '@nats-io/transport-node';

const servers = process.env.SWARMMQ_URL ?? 'localhost:4222';
const jobs = 30;
const counts = [0, 0, 0];
let done = 0;
let finish: () => void = () => undefined;
const allDone = new Promise<void>((resolve) => (finish = resolve));

const workers = await Promise.all(counts.map((_, i) => connect({ servers, name: `worker-${i}` })));
workers.forEach((nc, i) =>
  nc.subscribe('jobs', {
    queue: 'workers',
    callback: () => {
      counts[i]!++;
      if (++done === jobs) finish();
    },
  }),
);
await Promise.all(workers.map((w) => w.flush()));

const producer = await connect({ servers, name: 'producer' });
for (let i = 0; i < jobs; i++) producer.publish('jobs', `job ${i}`);
await producer.flush();
await allDone;
counts.forEach((n, i) => console.log(`worker-${i} handled ${n} jobs`));
console.log(`${done} jobs, each handled once`);
await producer.close();
await Promise.all(workers.map((w) => w.close()));
