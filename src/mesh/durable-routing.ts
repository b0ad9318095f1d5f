/**
 * Durable calls in a cluster (protocol/MESH.md M4.5): a client may connect to
 * any node; each send, pull, settle and admin call runs at the destination's
 * owner, here or over `/swarmmq/durable/1.0.0`. When the owner cannot be
 * reached, the call waits for the membership to change and goes to the new
 * owner, within a deadline. Sends get an id before they leave this node, so
 * a retried send is de-duplicated by the owner (D3.4).
 */
import { randomBytes } from 'node:crypto';
import type { DurableEngine } from '../durable/engine.js';
import type { DestinationSettings } from '../durable/model.js';
import type { DurableService, NodePlace, SettleKind } from '../durable/service.js';
import type { Delivery, DestinationInfo, PullRequest, SendRequest, SendResult } from '../durable/types.js';
import { DurableError, DurableErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { PeerError, type Answer, type Channel, type ChannelHandlers } from './channel.js';
import type { Links } from './links.js';
import { joinBody, packBodies } from './bodies.js';
import { handleDestination } from '../durable/names.js';
import {
  destinationList,
  durableCreate,
  durableDrop,
  durablePull,
  durableSend,
  durableSettle,
  pulled,
  sendResult,
} from './schema.js';

export const DURABLE_PROTOCOL = '/swarmmq/durable/1.0.0';

/** How long a call waits for a reachable owner before it fails (M4.5). */
const OWNER_WAIT_MS = 15_000;
/** Pause between attempts when nothing else signals a change. */
const RETRY_PAUSE_MS = 100;
/** The error codes an owner may answer with; anything else is a storage failure here. */
const DURABLE_CODES: ReadonlySet<unknown> = new Set(Object.values(DurableErrorCode));

export interface DurableRoutingInit {
  engine: DurableEngine;
  links: Links;
  selfId: string;
  /** The owner of a destination in the current view. */
  ownerOf: (destination: string) => string | undefined;
  /** Live members other than this node. */
  peers: () => string[];
  /** Destination names announced by other nodes (M3.4). */
  catalog: ReadonlySet<string>;
  /** Resolves when the membership next changes (or after `ms`). */
  viewChange: (ms: number) => Promise<void>;
  /** Resolves when a destination this node owns is ready to serve (its hand-off done, M7.2). */
  ready: (destination: string) => Promise<void>;
  /** The live nodes holding a destination, owner first (M3.3). */
  placement: (destination: string) => NodePlace[];
  /** The metrics' hook; undefined when none are kept. */
  observer?: ForwardObserver | undefined;
}

/** The durable calls that can be forwarded to an owner (the `op` label of swarmmq_mesh_forward_seconds). */
export type ForwardOp = 'send' | 'pull' | 'settle' | 'create' | 'drop';

/** Round trips for metrics (src/metrics, protocol/METRICS.md MT3.4). */
export interface ForwardObserver {
  /** A call forwarded to `peer` was answered `ms` after it was sent. */
  forwarded(peer: string, op: ForwardOp, ms: number): void;
}

class NotOwnerError extends Error {
  override name = 'NotOwner';
}

export class DurableRouting implements DurableService {
  forwarded = 0;

  constructor(
    private readonly init: DurableRoutingInit,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await this.init.links.handle(DURABLE_PROTOCOL, () => this.ownerHandlers());
  }

  placement(destination: string): NodePlace[] {
    return this.init.placement(destination);
  }

  isDestination(name: string): boolean {
    return this.init.engine.isDestination(name) || this.init.catalog.has(name);
  }

  send(req: SendRequest): Promise<SendResult> {
    // An id before the first attempt: a retry after a lost answer is a duplicate, not a second copy.
    const r: SendRequest = { ...req, id: req.id ?? randomBytes(16).toString('hex') };
    return this.route(
      'send',
      r.destination,
      () => this.init.engine.send(req),
      async (ch) => {
        const { headers, payload, ...rest } = r;
        const a = await ch.request(
          'send',
          // via: the nodes it passed (route history, M4.5), traced at the owner.
          { req: { ...rest, hl: headers?.length ?? -1 }, via: [this.init.selfId] },
          joinBody(headers, payload),
        );
        return sendResult(a.head, r);
      },
    );
  }

  pull(req: PullRequest): Promise<Delivery[]> {
    return this.route(
      'pull',
      req.destination,
      () => this.init.engine.pull(req),
      async (ch) => {
        const { signal, ...rest } = req;
        const a = await ch.request('pull', { req: rest }, undefined, {
          timeoutMs: req.waitMs + this.init.links.limits.requestTimeoutMs,
          signal,
        });
        return pulled(a.head, a.data ?? Buffer.alloc(0), req.destination);
      },
    );
  }

  settle(kind: SettleKind, handle: string, delayMs?: number): void | Promise<void> {
    const destination = handleDestination(handle);
    // Local and owned: synchronous, as on a standalone node.
    if (destination === undefined || this.init.ownerOf(destination) === this.init.selfId) {
      return this.init.engine.settle(kind, handle, delayMs);
    }
    return this.route(
      'settle',
      destination,
      () => this.init.engine.settle(kind, handle, delayMs),
      async (ch) => {
        await ch.request('settle', { kind, handle, delayMs });
      },
    );
  }

  ensureDestination(name: string, settings: Partial<DestinationSettings>): Promise<boolean> {
    return this.route(
      'create',
      name,
      () => this.init.engine.ensureDestination(name, settings),
      async (ch) => (await ch.request('create', { name, settings })).head?.created === true,
    );
  }

  dropGroup(destination: string, group: string): void | Promise<void> {
    if (this.init.ownerOf(destination) === this.init.selfId)
      return this.init.engine.dropGroup(destination, group);
    return this.route(
      'drop',
      destination,
      () => this.init.engine.dropGroup(destination, group),
      async (ch) => {
        await ch.request('drop', { destination, group });
      },
    );
  }

  /** D7.2 over the cluster: each live member lists the destinations it owns. */
  async list(): Promise<DestinationInfo[]> {
    const parts = await Promise.all([
      Promise.resolve(this.ownedList()),
      ...this.init.peers().map(async (peer) => {
        try {
          const ch = await this.init.links.channel(peer, DURABLE_PROTOCOL);
          return destinationList((await ch.request('list', {})).head);
        } catch (err) {
          this.log.warn({ peer, err: (err as Error).message }, 'DESTS: a member did not answer');
          return [];
        }
      }),
    ]);
    const byName = new Map<string, DestinationInfo>();
    for (const part of parts) for (const d of part) if (!byName.has(d.name)) byName.set(d.name, d);
    return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  private ownedList(): DestinationInfo[] {
    const engine = this.init.engine;
    return engine.list().filter((d) => engine.dests.get(d.name)?.role === 'owner');
  }

  /** Runs a call at the owner: here, or at the peer, retrying through view changes (M4.5). */
  private async route<T>(
    op: ForwardOp,
    destination: string,
    local: () => T | Promise<T>,
    remote: (ch: Channel) => Promise<T>,
  ): Promise<T> {
    const deadline = Date.now() + OWNER_WAIT_MS;
    for (;;) {
      const owner = this.init.ownerOf(destination);
      if (owner === this.init.selfId) {
        await this.init.ready(destination);
        // Still the owner after the wait? Otherwise route again in the new view (see `mine`).
        if (this.init.ownerOf(destination) === this.init.selfId) return await local();
        continue;
      }
      let why: string;
      if (owner === undefined) why = 'no owner';
      else {
        try {
          const ch = await this.init.links.channel(owner, DURABLE_PROTOCOL);
          this.forwarded++;
          const sentMs = performance.now();
          const out = await remote(ch);
          this.init.observer?.forwarded(owner, op, performance.now() - sentMs);
          this.init.links.succeeded(owner);
          return out;
        } catch (err) {
          if (!(err instanceof PeerError)) throw err;
          if (err.code === 'DurableError') {
            const code = DURABLE_CODES.has(err.detail?.code)
              ? (err.detail!.code as DurableErrorCode)
              : DurableErrorCode.StorageFailure;
            throw new DurableError(code, err.message);
          }
          if (err.code === 'Aborted') throw err;
          // An open circuit is the breaker's own refusal, not news about the peer (M5.6).
          if (err.code !== 'NotOwner' && err.code !== 'CircuitOpen') this.init.links.failed(owner, err);
          why = err.message;
        }
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new DurableError(
          DurableErrorCode.OwnerUnavailable,
          `owner of ${destination} unavailable (${why}); retry`,
        );
      }
      this.log.debug({ destination, owner, why }, 'owner not reached; waiting for the view to change');
      await this.init.viewChange(Math.min(left, RETRY_PAUSE_MS * 5));
      await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
    }
  }

  /** What the owner does with calls forwarded to it. */
  private ownerHandlers(): ChannelHandlers {
    const engine = this.init.engine;
    const mine = async (destination: string): Promise<void> => {
      if (this.init.ownerOf(destination) !== this.init.selfId) {
        throw new NotOwnerError(`this node does not own ${destination}`);
      }
      await this.init.ready(destination);
      // The view may have moved on during the wait (this node leaving, OPS1.3): a node that no
      // longer owns the destination must not take the call, or it confirms what it never replicates.
      if (this.init.ownerOf(destination) !== this.init.selfId) {
        throw new NotOwnerError(`this node no longer owns ${destination}`);
      }
    };
    return {
      // Each head is checked before it is acted on; a malformed one is answered with MalformedMessage (M4.6).
      request: async (method, head, data): Promise<Answer> => {
        switch (method) {
          case 'send': {
            const { req, via } = durableSend(head, data);
            this.log.trace({ destination: req.destination, id: req.id, via }, 'forwarded send');
            await mine(req.destination);
            const res = await engine.send(req);
            return { head: res as unknown as Record<string, unknown> };
          }
          case 'pull': {
            const r = durablePull(head);
            await mine(r.destination);
            return encodeDeliveries(await engine.pull(r));
          }
          case 'settle': {
            const { kind, handle, delayMs } = durableSettle(head);
            await mine(handleDestination(handle) ?? '');
            engine.settle(kind, handle, delayMs);
            return {};
          }
          case 'create': {
            const { name, settings } = durableCreate(head);
            await mine(name);
            return { head: { created: await engine.ensureDestination(name, settings) } };
          }
          case 'drop': {
            const { destination, group } = durableDrop(head);
            await mine(destination);
            engine.dropGroup(destination, group);
            return {};
          }
          case 'list':
            return { head: { list: this.ownedList() } };
          default:
            throw new Error(`unknown durable request ${method}`);
        }
      },
    };
  }
}

function encodeDeliveries(msgs: Delivery[]): Answer {
  const { meta, data } = packBodies(msgs);
  return { head: { msgs: meta }, data };
}
