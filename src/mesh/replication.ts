/**
 * Replication (protocol/MESH.md section 5) on `/swarmmq/replica/1.0.0`. The
 * owner of a destination copies every change to the other live members of
 * its preference list: a message is confirmed once it is synced at enough
 * of them (M5.2); other changes follow in order on the same stream, not
 * awaited (M5.3). A replica applies what it gets through the engine.
 */
import type { DurableEngine } from '../durable/engine.js';
import type { ReplicatedChange, ReplicatedMessage, ReplicationSink } from '../durable/types.js';
import { DurableError, DurableErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { ChannelHandlers } from './channel.js';
import type { Links } from './links.js';
import { joinBody } from './bodies.js';
import { replicaChange, replicaMessage } from './schema.js';

export const REPLICA_PROTOCOL = '/swarmmq/replica/1.0.0';

/** Round trips for metrics (src/metrics, protocol/METRICS.md MT3.4). */
export interface ReplicaObserver {
  /** `peer` confirmed a message synced `ms` after it was sent to it (M5.2). */
  replicated(peer: string, ms: number): void;
}

export interface ReplicatorInit {
  engine: DurableEngine;
  links: Links;
  /** The live replicas of a destination: its preference list minus this node, live members only. */
  replicasOf: (destination: string) => string[];
  /** Copies (owner included) that must be synced; 0 = all live ones. */
  writeQuorum: number;
  /** The metrics' hook; undefined when none are kept. */
  observer?: ReplicaObserver | undefined;
}

export class Replicator implements ReplicationSink {
  replicated = 0;
  failures = 0;
  /** Messages sent to each replica and not yet confirmed or failed (METRICS.md MT2.5); a peer at 0 is removed. */
  readonly backlog = new Map<string, number>();

  constructor(
    private readonly init: ReplicatorInit,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await this.init.links.handle(REPLICA_PROTOCOL, () => this.replicaHandlers());
    this.init.engine.replication = this;
  }

  stop(): void {
    this.init.engine.replication = undefined;
  }

  async message(destination: string, msg: ReplicatedMessage): Promise<void> {
    const targets = this.init.replicasOf(destination);
    if (targets.length === 0) return;
    const { headers, payload, ...meta } = msg;
    const data = joinBody(headers, payload);
    const head = { d: destination, msg: { ...meta, hl: headers?.length ?? -1 } };
    // One clock read per message, and none when no metrics are kept.
    const sentMs = this.init.observer === undefined ? 0 : performance.now();
    const results = await Promise.allSettled(
      targets.map(async (peer) => {
        this.backlog.set(peer, (this.backlog.get(peer) ?? 0) + 1);
        try {
          // Written now when the link is open, so it keeps its place before later changes (M4.4).
          const open = this.init.links.openChannel(peer, REPLICA_PROTOCOL);
          const sent = open?.request('msg', head, data);
          await (sent ?? (await this.init.links.channel(peer, REPLICA_PROTOCOL)).request('msg', head, data));
          this.init.observer?.replicated(peer, performance.now() - sentMs);
          this.init.links.succeeded(peer);
        } finally {
          const left = (this.backlog.get(peer) ?? 1) - 1;
          if (left > 0) this.backlog.set(peer, left);
          else this.backlog.delete(peer);
        }
      }),
    );
    let synced = 1; // this node's own copy
    for (let i = 0; i < results.length; i++) {
      const r = results[i]!;
      if (r.status === 'fulfilled') synced++;
      else {
        this.failures++;
        if ((r.reason as { code?: string }).code !== 'CircuitOpen') {
          this.init.links.failed(targets[i]!, r.reason as Error);
        }
        this.log.warn(
          { destination, peer: targets[i], err: (r.reason as Error).message },
          'replica did not confirm a message',
        );
      }
    }
    const needed = this.init.writeQuorum === 0 ? targets.length + 1 : this.init.writeQuorum;
    this.replicated++;
    if (synced < needed) {
      throw new DurableError(
        DurableErrorCode.ReplicationFailed,
        `message stored on ${synced} of ${needed} nodes; retry with the same id`,
      );
    }
  }

  change(destination: string, change: ReplicatedChange): void {
    for (const peer of this.init.replicasOf(destination)) {
      const open = this.init.links.openChannel(peer, REPLICA_PROTOCOL);
      if (open !== undefined) {
        open.event('change', { d: destination, c: change });
        continue;
      }
      this.init.links.channel(peer, REPLICA_PROTOCOL).then(
        (ch) => ch.event('change', { d: destination, c: change }),
        () => undefined, // a replica that misses changes is brought up to date by the sync (M7)
      );
    }
  }

  /** What a replica does with its owner's stream. */
  private replicaHandlers(): ChannelHandlers {
    const engine = this.init.engine;
    // Each head is checked before the engine sees it; a malformed one is refused or dropped (M4.6).
    return {
      request: async (method, head, data) => {
        if (method !== 'msg') throw new Error(`unknown replica request ${method}`);
        const { destination, msg } = replicaMessage(head, data);
        await engine.applyMessage(destination, msg);
        return {};
      },
      event: (method, head) => {
        if (method !== 'change') return;
        const { destination, change } = replicaChange(head);
        try {
          engine.applyChange(destination, change);
        } catch (err) {
          // Views differ for a moment (this node owns it too): the merge settles it (M7.3).
          if ((err as { code?: string }).code !== 'NOT_REPLICA') throw err;
          this.log.debug({ destination, err: (err as Error).message }, 'replica change refused');
        }
      },
    };
  }
}
