/**
 * Request/reply with the SwarmMQ SDK: a service answers on `math.double`,
 * a client asks five times. Run a node or a cluster (`npx swarmmq cluster
 * --nodes 3`), then `node dist/examples/sdk-request-reply.js` (SWARMMQ_URL
 * overrides localhost:4222).
 */
import { connect, NoRespondersError } from 'swarmmq';

const servers = (process.env.SWARMMQ_URL ?? 'localhost:4222').split(',');
const service = await connect({ servers, name: 'math-service' });
service.subscribe('math.double', {
  callback: (m) => m.respond(String(2 * Number(m.string()))),
});
await service.flush();

const client = await connect({ servers: servers.slice(-1), name: 'math-client' });
for (let i = 1; i <= 5; i++) {
  const reply = await client.request('math.double', String(i), { timeoutMs: 2000 });
  console.log(`${i} doubled is ${reply.string()}`);
}
try {
  await client.request('math.triple', '1');
} catch (err) {
  if (!(err instanceof NoRespondersError)) throw err;
  console.log('nobody answers math.triple (no responders)');
}
await client.close();
await service.close();
