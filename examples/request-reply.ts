/**
 * Request/reply with a stock NATS client: a service answers on `time`, a
 * client asks three times. Run a node (`npx swarmmq start`), then
 * `node dist/examples/request-reply.js` (SWARMMQ_URL overrides localhost:4222).
 */
import { connect } from '@nats-io/transport-node';

const servers = (process.env.SWARMMQ_URL ?? 'localhost:4222').split(',');
const service = await connect({ servers, name: 'time-service' });
service.subscribe('time', {
  callback: (_err, m) => {
    m.respond(new Date().toISOString());
  },
});
await service.flush();

const client = await connect({ servers, name: 'time-client' });
for (let i = 0; i < 3; i++) {
  const reply = await client.request('time', '', { timeout: 2000 });
  console.log(`the time is ${reply.string()}`);
}
await client.close();
await service.close();
