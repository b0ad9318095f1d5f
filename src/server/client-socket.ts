/**
 * What the client server needs from a connection's byte stream, and nothing
 * more: a TCP or TLS socket (net.Socket fits as it is) or a libp2p client
 * stream (src/mesh/stream-socket.ts, SECURITY.md SEC6). A connection reads
 * 'data', stops reading with pause() (SEC2.4, OPS1.2), batches writes with
 * cork/uncork, measures its backlog with writableLength (C6.9), and ends
 * with end() or destroy(); 'error' and 'close' end it on the node's side.
 */
import type { Duplex } from 'node:stream';

/** A libp2p client's identity, proved by noise (SEC6.3). */
export interface RemotePeer {
  /** Its peer id. */
  readonly id: string;
  /** The multiaddr of the libp2p connection it came on, without `/p2p/<id>`. */
  readonly addr: string;
}

export interface ClientSocket extends Duplex {
  /** The client's IP address: INFO `client_ip`, /connz `ip`, the connection-rate key of a TCP client (SEC5.2). */
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  /** Set on a libp2p client stream only (SEC6); undefined on TCP and TLS. */
  readonly remotePeer?: RemotePeer | undefined;
  /** TCP only: Nagle off. */
  setNoDelay?(noDelay?: boolean): unknown;
}

/** The name logs and /connz give a connection's far end: `ip:port`, or the libp2p multiaddr with its peer id. */
export function remoteLabel(socket: ClientSocket): string {
  const p = socket.remotePeer;
  return p === undefined ? `${socket.remoteAddress}:${socket.remotePort}` : `${p.addr}/p2p/${p.id}`;
}
