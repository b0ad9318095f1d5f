/**
 * Who may join the mesh (protocol/SECURITY.md section 1): the cluster key
 * (libp2p private networks: every byte on a mesh connection is encrypted
 * under the pre-shared key before noise even starts) and an optional
 * allow-list of peer ids, checked after noise proves the remote's id. Every
 * refused inbound connection is logged and counted, never with the key.
 */
import { preSharedKey } from '@libp2p/pnet';
import type { ConnectionGater, MultiaddrConnection, PeerId } from '@libp2p/interface';
import type { Logger } from '../log.js';

export interface AdmissionInit {
  /** 32 bytes; undefined = any node that reaches the port may try noise (SEC1.1). */
  readonly clusterKey: Buffer | undefined;
  /** Peer ids allowed in; empty = any holder of the cluster key (SEC1.2). */
  readonly allowedPeers: readonly string[];
  readonly log: Logger;
}

/** Why an inbound mesh connection was refused (SEC1.3). */
export const RefusalReason = {
  /** The connection closed before its secure upgrade finished: no or another cluster key, or not libp2p at all. */
  Handshake: 'handshake_failed',
  /** Noise proved a peer id that is not on the allow-list. */
  NotAllowed: 'peer_not_allowed',
} as const;
export type RefusalReason = (typeof RefusalReason)[keyof typeof RefusalReason];

/**
 * The swarm-key text libp2p private networks take for a 32-byte cluster key
 * (SEC1.1); the SDK's libp2p transport builds its own the same way. Never logged.
 */
export function swarmKey(clusterKey: Buffer): Uint8Array {
  return new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${clusterKey.toString('hex')}`);
}

export class Admission {
  /** SEC1.3: refused inbound connections by reason, since start. */
  readonly refused: Record<RefusalReason, number> = { handshake_failed: 0, peer_not_allowed: 0 };
  private readonly allowed: ReadonlySet<string> | undefined;
  /** Inbound connections that got past the secure upgrade, or were already counted. */
  private readonly settled = new WeakSet<MultiaddrConnection>();

  constructor(private readonly init: AdmissionInit) {
    this.allowed = init.allowedPeers.length === 0 ? undefined : new Set(init.allowedPeers);
  }

  /** The libp2p connection protector for the cluster key, or undefined without one. */
  protector(): ReturnType<typeof preSharedKey> | undefined {
    const key = this.init.clusterKey;
    if (key === undefined) return undefined;
    return preSharedKey({ psk: swarmKey(key) });
  }

  gater(): ConnectionGater {
    return {
      denyDialPeer: (peer: PeerId) => !this.isAllowed(peer),
      denyInboundConnection: (maConn) => {
        // Watched from accept: one that closes before its upgrade finished is a refused join.
        maConn.addEventListener('close', () => {
          if (!this.settled.has(maConn)) this.refuse(RefusalReason.Handshake, maConn, undefined);
        });
        return false;
      },
      denyInboundEncryptedConnection: (peer, maConn) => {
        if (this.isAllowed(peer)) return false;
        this.refuse(RefusalReason.NotAllowed, maConn, peer);
        return true;
      },
      denyOutboundEncryptedConnection: (peer) => !this.isAllowed(peer),
      denyInboundUpgradedConnection: (_peer, maConn) => {
        this.settled.add(maConn);
        return false;
      },
    };
  }

  isAllowed(peer: PeerId | string): boolean {
    return this.allowed === undefined || this.allowed.has(peer.toString());
  }

  private refuse(reason: RefusalReason, maConn: MultiaddrConnection, peer: PeerId | undefined): void {
    this.settled.add(maConn);
    this.refused[reason]++;
    this.init.log.warn(
      {
        reason,
        remote: maConn.remoteAddr.toString(),
        ...(peer === undefined ? {} : { peer: peer.toString() }),
        refusedTotal: this.refused[reason],
      },
      'mesh connection refused',
    );
  }
}
