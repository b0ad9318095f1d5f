/**
 * Client-side metrics (MT2.1), read at scrape time from the counters the
 * client server keeps anyway (ClientServer.stats(): one pass over the
 * connections per scrape).
 */
import type { Registry } from 'prom-client';
import type { ClientServer } from '../server/server.js';
import { counterFrom, gaugeFrom, labelledCounterFrom, PerScrape, type Scrape } from './collect.js';

export function registerServerMetrics(registry: Registry, scrape: Scrape, server: ClientServer): void {
  const stats = new PerScrape(scrape, () => server.stats());
  gaugeFrom(
    registry,
    'swarmmq_server_connections',
    'Client connections open now.',
    () => stats.get().connections,
  );
  counterFrom(
    registry,
    'swarmmq_server_connections_total',
    'Client connections accepted, refused ones included.',
    () => stats.get().totalConnections,
  );
  gaugeFrom(
    registry,
    'swarmmq_server_subscriptions',
    'Client subscriptions on this node now.',
    () => stats.get().subscriptions,
  );
  counterFrom(
    registry,
    'swarmmq_server_messages_in_total',
    'Messages received from clients: PUB, HPUB and SEND.',
    () => stats.get().msgsIn,
  );
  counterFrom(
    registry,
    'swarmmq_server_messages_out_total',
    'Messages written to clients: MSG, HMSG and DMSG.',
    () => stats.get().msgsOut,
  );
  counterFrom(
    registry,
    'swarmmq_server_received_bytes_total',
    'Bytes read from client sockets.',
    () => stats.get().bytesIn,
  );
  counterFrom(
    registry,
    'swarmmq_server_sent_bytes_total',
    'Bytes written to client sockets.',
    () => stats.get().bytesOut,
  );
  labelledCounterFrom(
    registry,
    'swarmmq_server_closes_total',
    'Client connections closed, by reason (the closed list of src/errors.ts CloseReason).',
    'reason',
    () => stats.get().closes,
  );
  labelledCounterFrom(
    registry,
    'swarmmq_server_errors_total',
    'Operations refused with an -ERR (or a stored PUB that failed), by kind: the error code, lower case (src/errors.ts).',
    'kind',
    () => lowerKeys(stats.get().errors),
  );
}

/** Codes are UPPER_SNAKE in the catalogue; Prometheus label values read better in lower case. */
function lowerKeys(counts: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(counts)) out[k.toLowerCase()] = n;
  return out;
}
