/**
 * A producer with the SwarmMQ SDK: stores 200 orders in the durable
 * destination `orders`, 64 in flight at a time, each confirmed once synced
 * at its owner and replicas. The SDK learns the cluster from one address
 * and sends each message straight to the destination's owner; if a node
 * dies meanwhile it re-routes and retries with the same id, so nothing is
 * stored twice. Run a cluster (`npx swarmmq cluster --nodes 3`), then
 * `node dist/examples/sdk-producer.js` (SWARMMQ_URL overrides
 * localhost:4222; COUNT the number of orders).
 */
import { connect } from 'swarmmq';

const servers = (process.env.SWARMMQ_URL ?? 'localhost:4222').split(',');
const count = Number(process.env.COUNT ?? 200);
const client = await connect({ servers, name: 'order-producer' });
console.log(`connected; the cluster has ${client.view?.members.length ?? 1} node(s)`);
console.log(`orders is owned by ${client.ownerOf('orders')?.client ?? 'the node itself'}`);

let confirmed = 0;
const inFlight = new Set<Promise<void>>();
for (let i = 0; i < count; i++) {
  const order = { order: i, sku: `sku-${i % 7}`, quantity: 1 + (i % 3) };
  // An id of our own: if this process retried the same order, the store would keep one copy.
  const p = client
    .send('orders', JSON.stringify(order), { id: `order-${i}`, priority: i % 10 === 0 ? 9 : 5 })
    .then(() => {
      confirmed++;
      inFlight.delete(p);
    });
  inFlight.add(p);
  if (inFlight.size >= 64) await Promise.race(inFlight);
}
await Promise.all(inFlight);
console.log(`sent ${count} orders, ${confirmed} confirmed`);
await client.close();
