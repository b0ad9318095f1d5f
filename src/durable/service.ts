/**
 * What a client connection needs from durable destinations: the engine on a
 * standalone node, the mesh's router in a cluster (protocol/MESH.md M4.5),
 * which sends each call to the destination's owner. Calls that are
 * synchronous on the engine may be asynchronous through the mesh.
 */
import type { DestinationSettings } from './model.js';
import type { Delivery, DestinationInfo, PullRequest, SendRequest, SendResult } from './types.js';

export type SettleKind = 'ack' | 'nak' | 'wip' | 'term';

export interface DurableService {
  /** Whether `name` is a destination anywhere in the cluster (for a PUB, D3.7). */
  isDestination(name: string): boolean;
  send(req: SendRequest): Promise<SendResult>;
  pull(req: PullRequest): Promise<Delivery[]>;
  /** D4.2-D4.5; `delayMs` for NAK. */
  settle(kind: SettleKind, handle: string, delayMs?: number): void | Promise<void>;
  ensureDestination(name: string, settings: Partial<DestinationSettings>): Promise<boolean>;
  dropGroup(destination: string, group: string): void | Promise<void>;
  list(): DestinationInfo[] | Promise<DestinationInfo[]>;
  /** In a mesh: the nodes that hold a destination, owner first (protocol/MESH.md M3.3). */
  placement?(destination: string): NodePlace[];
}

/** A node as OWNER names it: its peer id and client address. */
export interface NodePlace {
  id: string;
  client: string;
}
