/**
 * Peer links (protocol/MESH.md section 4-5): one outbound Channel per peer
 * and protocol, opened on first use and reopened after it closes; inbound
 * streams answered by the protocol's handlers; and a circuit breaker per
 * peer (M5.6) so a failing or slow peer is skipped and retried with backoff,
 * visibly in the logs.
 */
import { peerIdFromString } from '@libp2p/peer-id';
import type { Logger } from '../log.js';
import {
  DEFAULT_PEER_REQUEST_TIMEOUT_MS,
  MAX_LINK_PENDING_BYTES,
  MAX_MESH_FRAME_BYTES,
} from '../config/defaults.js';
import { Breakers } from './breaker.js';
import { Channel, PeerError, type ChannelHandlers, type ChannelLimits } from './channel.js';
import type { MeshLibp2p } from './peer.js';

/** Streams per protocol per connection: each side opens one, plus room for a reopen racing a close. */
const MAX_STREAMS_PER_PROTOCOL = 8;

export class Links {
  private readonly out = new Map<string, Promise<Channel>>();
  /** The open ones of `out`, for callers on the hot path that need no promise. */
  private readonly open_ = new Map<string, Channel>();
  private readonly breakers = new Breakers();
  readonly limits: ChannelLimits = {
    maxFrameBytes: MAX_MESH_FRAME_BYTES,
    maxPendingBytes: MAX_LINK_PENDING_BYTES,
    requestTimeoutMs: DEFAULT_PEER_REQUEST_TIMEOUT_MS,
  };
  private readonly protocols: string[] = [];

  constructor(
    private readonly p2p: MeshLibp2p,
    private readonly log: Logger,
  ) {}

  /** Answers inbound streams of `protocol`; `handlers(peer, channel)` gives the handlers for one stream. */
  async handle(
    protocol: string,
    handlers: (peer: string) => ChannelHandlers,
    onOpen?: (peer: string, ch: Channel) => void,
  ): Promise<void> {
    this.protocols.push(protocol);
    await this.p2p.handle(
      protocol,
      (stream, connection) => {
        const peer = connection.remotePeer.toString();
        const ch = new Channel(stream, handlers(peer), this.limits, this.log.child({ peer, protocol }));
        onOpen?.(peer, ch);
      },
      { maxInboundStreams: MAX_STREAMS_PER_PROTOCOL, maxOutboundStreams: MAX_STREAMS_PER_PROTOCOL },
    );
  }

  /** The outbound channel to `peer` on `protocol`; rejects at once while the peer's circuit is open. */
  channel(peer: string, protocol: string, handlers: ChannelHandlers = {}): Promise<Channel> {
    const key = `${peer} ${protocol}`;
    if (this.breakers.isOpen(peer)) {
      return Promise.reject(new PeerError(`peer ${short(peer)} is failing; retried later`, 'CircuitOpen'));
    }
    let ch = this.out.get(key);
    if (ch === undefined) {
      ch = this.open(peer, protocol, handlers);
      this.out.set(key, ch);
      ch.then(
        (c) => {
          this.open_.set(key, c);
          c.onClosed(() => {
            if (this.open_.get(key) === c) this.open_.delete(key);
            if (this.out.get(key) === ch) this.out.delete(key);
          });
        },
        () => this.out.get(key) === ch && this.out.delete(key),
      );
    }
    return ch;
  }

  /** The open outbound channel, if there is one and the peer's circuit is closed. */
  openChannel(peer: string, protocol: string): Channel | undefined {
    const ch = this.open_.get(`${peer} ${protocol}`);
    return ch === undefined || ch.closed || this.isOpen(peer) ? undefined : ch;
  }

  private async open(peer: string, protocol: string, handlers: ChannelHandlers): Promise<Channel> {
    try {
      const stream = await this.p2p.dialProtocol(peerIdFromString(peer), protocol, {
        signal: AbortSignal.timeout(this.limits.requestTimeoutMs),
      });
      return new Channel(stream, handlers, this.limits, this.log.child({ peer, protocol }));
    } catch (err) {
      this.failed(peer, err as Error);
      throw new PeerError(
        `cannot open ${protocol} to ${short(peer)}: ${(err as Error).message}`,
        'Unreachable',
      );
    }
  }

  /** Records a failed request or dial; opens the circuit after BREAKER_FAILURES in a row. */
  failed(peer: string, err: Error): void {
    const openMs = this.breakers.failed(peer, (err as { code?: string }).code);
    if (openMs === undefined) return;
    this.log.warn({ peer, openMs, err: err.message }, 'peer failing: circuit open');
    // Whatever is queued to it is stale by the time it recovers.
    for (const [key, ch] of this.out) {
      if (key.startsWith(`${peer} `))
        void ch.then(
          (c) => c.close(),
          () => undefined,
        );
    }
  }

  /** Records a success: a half-open circuit closes. */
  succeeded(peer: string): void {
    if (this.breakers.succeeded(peer)) this.log.info({ peer }, 'peer recovered: circuit closed');
  }

  /** What /meshz shows of a peer: the protocols with an open outbound stream, and its circuit (M5.6). */
  state(peer: string): { protocols: string[]; breaker: ReturnType<Breakers['state']> } {
    const protocols: string[] = [];
    for (const [key, ch] of this.open_) {
      if (key.startsWith(`${peer} `) && !ch.closed) protocols.push(key.slice(peer.length + 1));
    }
    return { protocols: protocols.sort(), breaker: this.breakers.state(peer) };
  }

  /** Whether requests to `peer` are being refused (circuit open). */
  isOpen(peer: string): boolean {
    return this.breakers.isOpen(peer);
  }

  /** A member (again) in the view: whatever its circuit said is stale (its heartbeats arrive). */
  reset(peer: string): void {
    if (this.breakers.forget(peer)) this.log.info({ peer }, 'peer back in the view: circuit closed');
  }

  /** Forgets a departed peer's channels and breaker. */
  forget(peer: string): void {
    for (const [key, ch] of this.out) {
      if (!key.startsWith(`${peer} `)) continue;
      this.out.delete(key);
      void ch.then(
        (c) => c.close(),
        () => {},
      );
    }
    this.breakers.forget(peer);
  }

  async stop(): Promise<void> {
    for (const ch of this.out.values())
      void ch.then(
        (c) => c.close(),
        () => {},
      );
    this.out.clear();
    await this.p2p.unhandle(this.protocols).catch(() => undefined);
  }
}

export function short(peer: string): string {
  return peer.slice(-8);
}
