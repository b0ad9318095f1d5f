/**
 * A queue group: three workers share the `jobs` subject, each job goes to
 * exactly one of them. Run a node (`npx swarmmq start`) or a cluster
 * (`npx swarmmq cluster --nodes 3`), then `node dist/examples/queue-workers.js`
 * (SWARMMQ_URL, comma-separated, overrides localhost:4222). With several
 * URLs the workers connect to different nodes: the group spans the cluster
 * and still gets each job once.
 */
import { connect } from '@nats-io/transport-node';

const servers = (process.env.SWARMMQ_URL ?? 'localhost:4222').split(',');
const jobs = 30;
const counts = [0, 0, 0];
let done = 0;
let finish: () => void = () => undefined;
const allDone = new Promise<void>((resolve) => (finish = resolve));

const workers = await Promise.all(
  counts.map((_, i) => connect({ servers: servers[i % servers.length]!, name: `worker-${i}` })),
);
workers.forEach((nc, i) => {
  nc.subscribe('jobs', {
    queue: 'workers',
    callback: () => {
      counts[i]!++;
      if (++done === jobs) finish();
    },
  });
  // Answered once this worker's subscriptions are known where the producer is.
  nc.subscribe(`ready.${i}`, {
    callback: (_err, m) => {
      m.respond();
    },
  });
});
await Promise.all(workers.map((w) => w.flush()));

const producer = await connect({ servers: servers[0]!, name: 'producer' });
// In a cluster, interest reaches the other nodes a moment later: wait until every worker answers.
for (let i = 0; i < workers.length; i++) {
  for (let attempt = 0; ; attempt++) {
    try {
      await producer.request(`ready.${i}`, '', { timeout: 500 });
      break;
    } catch (err) {
      if (attempt >= 40) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
for (let i = 0; i < jobs; i++) producer.publish('jobs', `job ${i}`);
await producer.flush();
await allDone;
counts.forEach((n, i) => console.log(`worker-${i} handled ${n} jobs`));
console.log(`${done} jobs, each handled once`);
await producer.close();
await Promise.all(workers.map((w) => w.close()));
