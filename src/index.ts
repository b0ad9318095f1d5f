/**
 * The swarmmq package's public entry: the client SDK. Every export is named
 * here; nothing else is public. Running a node in-process is `swarmmq/node`
 * (src/node-entry.ts).
 *
 * @example
 * ```ts
 * import { connect } from 'swarmmq';
 * const client = await connect({ servers: ['127.0.0.1:4222'] });
 * await client.send('orders', JSON.stringify({ sku: 42 }));
 * for await (const m of client.consume('orders', { group: 'billing' })) {
 *   m.ack();
 * }
 * ```
 */
export { connect, SwarmClient } from './sdk/client.js';
export type {
  ClientEvents,
  ClientStats,
  ConnectEvent,
  DisconnectEvent,
  ReconnectingEvent,
  RetryEvent,
  SlowConsumerEvent,
  CallbackErrorEvent,
} from './sdk/events.js';
export type { ConnectOptions, ReconnectOptions, TlsOptions, Libp2pOptions } from './sdk/options.js';
export type { SendOptions, SendResult } from './sdk/sender.js';
export { Consumer, type ConsumeOptions } from './sdk/consumer.js';
export { Subscription, type SubscribeOptions } from './sdk/subscription.js';
export { Msg, ConsumedMessage, type Headers, type HeadersInit, type Payload } from './sdk/messages.js';
export type { ClusterView, ViewMember } from './sdk/view.js';
export {
  SwarmError,
  SwarmErrorCode,
  NotFoundError,
  NoRespondersError,
  ForbiddenError,
  TimeoutError,
  AbortError,
  DisconnectedError,
  RefusedError,
  InvalidArgumentError,
} from './sdk/errors.js';
export { VERSION } from './version.js';
