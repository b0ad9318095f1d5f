/**
 * Minimal fakes of the narrow dependencies of the mesh services, for the
 * fuzzers: links that hand out a recording channel, and an engine that
 * checks every call against the consumer's contract (contracts.ts) and
 * answers with plausible results. No sockets, no disk.
 */
import { pino } from 'pino';
import type { Logger } from '../../src/log.js';
import type { Answer, ChannelHandlers } from '../../src/mesh/channel.js';
import type { Links } from '../../src/mesh/links.js';
import type {
  Delivery,
  DestinationInfo,
  Inventory,
  InventoryState,
  ReplicatedMessage,
} from '../../src/durable/types.js';
import type { DurableEngine } from '../../src/durable/engine.js';
import type { DestinationSettings } from '../../src/durable/model.js';
import { DurableRouting } from '../../src/mesh/durable-routing.js';
import * as C from './contracts.js';

export const silentLog: Logger = pino({ level: 'silent' });

/** A frame as a handler gets it: the head with its method (`m`), JSON as on the wire, and the data. */
export interface Sample {
  method: string;
  head: Record<string, unknown>;
  data: Buffer;
}

export function onWire(method: string, head: Record<string, unknown>, data?: Buffer): Sample {
  return {
    method,
    head: JSON.parse(JSON.stringify({ ...head, m: method })) as Record<string, unknown>,
    data: data ?? Buffer.alloc(0),
  };
}

/** A channel that records what is sent on it; requests are answered by `peer` (the other side's handlers). */
export class FakeChannel {
  readonly sent: Sample[] = [];
  /** Each request with the answer the peer's handler built. */
  readonly answered: { request: Sample; answer: Answer }[] = [];
  closed = false;
  constructor(public peer: ChannelHandlers = {}) {}

  event(method: string, head: Record<string, unknown>, data?: Buffer): boolean {
    this.sent.push(onWire(method, head, data));
    return true;
  }

  async request(method: string, head: Record<string, unknown>, data?: Buffer): Promise<Answer> {
    const s = onWire(method, head, data);
    this.sent.push(s);
    const a = (await this.peer.request?.(method, s.head, s.data)) ?? {};
    // The answer as the requester decodes it.
    const answer = {
      head: JSON.parse(JSON.stringify(a.head ?? {})) as Record<string, unknown>,
      data: a.data ?? Buffer.alloc(0),
    };
    this.answered.push({ request: s, answer });
    return answer;
  }

  onClosed(): void {}
}

/** Links whose channel on each protocol is `channelFor(protocol)`, and that keep the inbound handlers each protocol registers. */
export function fakeLinks(channelFor: (protocol: string) => FakeChannel): {
  links: Links;
  handlers: Map<string, (peer: string) => ChannelHandlers>;
} {
  const handlers = new Map<string, (peer: string) => ChannelHandlers>();
  const links = {
    limits: { maxFrameBytes: 8 * 1024 * 1024, maxPendingBytes: 32 * 1024 * 1024, requestTimeoutMs: 5000 },
    handle: async (protocol: string, h: (peer: string) => ChannelHandlers) => void handlers.set(protocol, h),
    channel: async (_peer: string, protocol: string) => channelFor(protocol),
    openChannel: (_peer: string, protocol: string) => channelFor(protocol),
    succeeded: () => undefined,
    failed: () => undefined,
    isOpen: () => false,
  };
  return { links: links as unknown as Links, handlers };
}

/** Destination settings without the dead-letter name, as most samples carry them. */
type WireSettings = Omit<DestinationSettings, 'deadLetter'>;

const SETTINGS: WireSettings = {
  defaultTtlMs: 0,
  maxMsgs: 1000,
  maxBytes: 1 << 26,
  deadLetterExpired: true,
  maxDeliveries: 5,
  ackTimeoutMs: 5000,
};

/** Valid destination settings for samples, with `changes` laid over them. */
export function sampleSettings(changes: Partial<WireSettings> = {}): WireSettings {
  return { ...SETTINGS, ...changes };
}

function message(seq: number, now: number): ReplicatedMessage {
  return {
    seq,
    id: seq % 2 === 0 ? `id-${seq}` : 'f'.repeat(32),
    priority: 1 + (seq % 10),
    timestampMs: now,
    expiresAtMs: seq % 3 === 0 ? now + 60_000 : 0,
    notBeforeMs: seq % 4 === 0 ? now + 1000 : 0,
    producer: seq % 2 === 0 ? 'client-1' : undefined,
    dedup: seq % 2 === 0,
    headers: seq % 2 === 0 ? Buffer.from('NATS/1.0\r\nK: v\r\n\r\n') : undefined,
    payload: Buffer.from(`payload ${seq}`),
  };
}

/** The engine methods the mesh services call, each checking its arguments; `calls` counts them. */
export class ContractEngine {
  calls = 0;
  readonly dests = new Map<
    string,
    { role: 'owner' | 'replica'; msgs: Map<number, { id: string; seq: number }> }
  >([['orders', { role: 'owner', msgs: new Map([[3, { id: 'id-3', seq: 3 }]]) }]]);
  private readonly now = Date.now();

  asEngine(): DurableEngine {
    return this as unknown as DurableEngine;
  }

  private call(): void {
    this.calls++;
    C.prototypeClean('engine call');
  }

  isDestination(name: string): boolean {
    return this.dests.has(name);
  }

  // ---- owner of forwarded calls (durable-routing.ts) ----

  async send(req: unknown): Promise<unknown> {
    this.call();
    C.sendRequest(req, 'send');
    const r = req as { destination: string; id?: string };
    return { destination: r.destination, seq: 7, id: r.id ?? 'a'.repeat(32), duplicate: false };
  }

  async pull(req: unknown): Promise<Delivery[]> {
    this.call();
    C.pullRequest(req, 'pull');
    const destination = (req as { destination: string }).destination;
    return [2, 4].map((seq) => {
      const m = message(seq, this.now);
      return {
        destination,
        handle: `${seq}/1/billing/${destination}`,
        seq,
        id: m.id,
        priority: m.priority,
        deliveries: 1,
        timestampMs: m.timestampMs,
        producer: m.producer,
        headers: m.headers,
        payload: m.payload,
      };
    });
  }

  settle(kind: unknown, handle: unknown, delayMs: unknown): void {
    this.call();
    C.check(['ack', 'nak', 'wip', 'term'].includes(kind as string), 'settle: kind');
    C.lineToken(handle, 'settle: handle');
    C.check(delayMs === undefined || C.isInt(delayMs), 'settle: delayMs');
  }

  async ensureDestination(name: unknown, settings: unknown): Promise<boolean> {
    this.call();
    C.lineToken(name, 'create: name');
    C.settings(settings, 'create: settings', true);
    return true;
  }

  dropGroup(destination: unknown, group: unknown): void {
    this.call();
    C.lineToken(destination, 'drop: destination');
    C.lineToken(group, 'drop: group');
  }

  list(): DestinationInfo[] {
    return [
      {
        name: 'orders',
        depth: 1,
        bytes: 120,
        lastSeq: 3,
        deadLetter: 'orders.DLQ',
        groups: [{ name: 'billing', pending: 1, inFlight: 0, acked: 0 }],
      },
    ];
  }

  // ---- replica (replication.ts) ----

  async applyMessage(name: unknown, m: unknown): Promise<void> {
    this.call();
    C.destinationName(name, 'applyMessage: destination');
    C.replicatedMessage(m, 'applyMessage: msg');
  }

  applyChange(name: unknown, c: unknown): void {
    this.call();
    C.destinationName(name, 'applyChange: destination');
    C.replicatedChange(c, 'applyChange: change');
  }

  // ---- peer of a hand-off (handoff.ts handlers) ----

  inventory(name: unknown, after: unknown, limit: unknown): Inventory | undefined {
    this.call();
    C.destinationName(name, 'inventory: destination');
    C.check(C.isInt(after) && C.isInt(limit, 1), 'inventory: after and limit');
    if (!this.dests.has(name)) return undefined;
    const seqs = [1, 2, 3, 4].filter((s) => s > (after as number)).slice(0, limit as number);
    return {
      settings: { ...SETTINGS, deadLetter: `${name}.DLQ` },
      lastSeq: 4,
      groups: [{ name: 'billing', ackTimeoutMs: 5000, maxDeliveries: 5 }],
      items: seqs.map((seq) => ({
        seq,
        id: message(seq, this.now).id,
        p: 5,
        st: [['billing', 1, seq % 2, 0]],
      })),
      next: undefined,
      removed: (after as number) === 0 ? ['gone-1'] : [],
    };
  }

  async exportMessages(name: unknown, seqs: unknown): Promise<ReplicatedMessage[]> {
    this.call();
    C.destinationName(name, 'exportMessages: destination');
    C.check(
      Array.isArray(seqs) && seqs.length <= 128 && seqs.every((s) => C.isInt(s, 1)),
      'exportMessages: seqs',
    );
    return (seqs as number[]).slice(0, 4).map((s) => message(s, this.now));
  }

  applyGroups(name: unknown, inv: unknown): void {
    this.call();
    C.destinationName(name, 'applyGroups: destination');
    C.onlyKeys(inv, ['settings', 'groups', 'lastSeq'], 'applyGroups');
    C.settings(inv.settings, 'applyGroups.settings');
    C.check(C.isInt(inv.lastSeq) && Array.isArray(inv.groups), 'applyGroups: lastSeq and groups');
    for (const g of inv.groups as unknown[]) {
      C.onlyKeys(g, ['name', 'ackTimeoutMs', 'maxDeliveries'], 'applyGroups.groups[]');
      C.groupName(g.name, 'applyGroups.groups[].name');
    }
  }

  async commit(): Promise<void> {}

  forgetDestination(name: unknown): void {
    this.call();
    C.destinationName(name, 'forget: destination');
  }

  // ---- owner of a hand-off (handoff.ts syncOne) ----

  removeById(name: unknown, id: unknown): boolean {
    this.call();
    C.destinationName(name, 'removeById: destination');
    C.messageId(id, 'removeById: id');
    return false;
  }

  isTombstoned(): boolean {
    return false;
  }

  mergeStates(name: unknown, seq: unknown, states: unknown): void {
    this.call();
    C.destinationName(name, 'mergeStates: destination');
    C.check(C.isInt(seq, 1), 'mergeStates: seq');
    inventoryStates(states, 'mergeStates: states');
  }

  createDestination(name: unknown, settings: unknown): void {
    this.call();
    C.destinationName(name, 'createDestination: name');
    C.settings(settings, 'createDestination: settings');
  }

  async importMessage(name: unknown, m: unknown, states: unknown): Promise<void> {
    this.call();
    C.destinationName(name, 'importMessage: destination');
    C.replicatedMessage(m, 'importMessage: msg');
    inventoryStates(states, 'importMessage: states');
  }
}

function inventoryStates(states: unknown, what: string): void {
  C.check(Array.isArray(states), what);
  for (const s of states as InventoryState[]) {
    C.check(Array.isArray(s) && s.length === 4, `${what}[]`);
    C.groupName(s[0], `${what}[][0]`);
    C.check(C.isInt(s[1]) && C.isInt(s[2], 0, 1) && C.isInt(s[3]), `${what}[]: numbers`);
  }
}

/** A sample message of the fake engine (for heads as an owner builds them). */
export function sampleMessage(seq: number): ReplicatedMessage {
  return message(seq, Date.now());
}

/** Durable routing on a node that owns everything, as every fuzzer's owner side. */
export function ownerRouting(engine: DurableEngine, links: Links, selfId: string): DurableRouting {
  return new DurableRouting(
    {
      engine,
      links,
      selfId,
      ownerOf: () => selfId,
      peers: () => [],
      catalog: new Set(),
      viewChange: async () => undefined,
      ready: async () => undefined,
      placement: () => [],
    },
    silentLog,
  );
}
