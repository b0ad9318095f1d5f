/**
 * Clients over libp2p (protocol/SECURITY.md section 6, MESH.md section 9):
 * the client protocol of CLIENT.md on streams of `/swarmmq/client/1.0.0`,
 * served on the node's mesh host. Each inbound stream becomes an ordinary
 * client connection of the node's client server, with the same INFO,
 * CONNECT, credentials, permissions and limits as a TCP one, and no TLS:
 * noise already encrypts the connection and proves the client's peer id,
 * and the mesh's admission (cluster key, allow-list, SEC1) lets in only
 * holders of the cluster key, and only listed peers when a list is set.
 */
import type { Connection, Libp2p, Stream } from '@libp2p/interface';
import type { Logger } from '../log.js';
import type { ClientSocket } from '../server/client-socket.js';
import { StreamSocket } from './stream-socket.js';

/** The client protocol over libp2p; its version moves with the client protocol (CLIENT.md `proto`). */
export const CLIENT_PROTOCOL = '/swarmmq/client/1.0.0';

/** Where the streams go: the node's client server (src/server/server.ts). */
export interface StreamAcceptor {
  /**
   * Takes a stream as a client connection, or refuses it (with INFO and
   * -ERR, as a TCP client) when a limit is reached; `rateKey` is what the
   * connection rate is counted by (SEC5.2).
   */
  acceptStream(socket: ClientSocket, rateKey: string): void;
}

export interface ClientStreamsInit {
  /**
   * Streams of this protocol one libp2p connection may have open at once;
   * more are reset by libp2p before the client server sees them. The
   * node's own limit on client connections (`limits.max_connections`)
   * counts them with TCP ones on top.
   */
  readonly maxInboundStreams: number;
}

/** Only what the service uses. */
export interface ClientStreamsComponents {
  /** The node's libp2p host (the mesh's, src/mesh/peer.ts). */
  readonly registrar: Pick<Libp2p, 'handle' | 'unhandle'>;
  readonly clients: StreamAcceptor;
  readonly log: Logger;
}

export class ClientStreams {
  constructor(
    private readonly init: ClientStreamsInit,
    private readonly components: ClientStreamsComponents,
  ) {}

  async start(): Promise<void> {
    await this.components.registrar.handle(
      CLIENT_PROTOCOL,
      (stream, connection) => this.onStream(stream, connection),
      {
        maxInboundStreams: this.init.maxInboundStreams,
      },
    );
  }

  /** New streams are refused from here on; open ones end with the client server's close (OPS1.2). */
  async stop(): Promise<void> {
    await this.components.registrar.unhandle(CLIENT_PROTOCOL);
  }

  private onStream(stream: Stream, connection: Connection): void {
    try {
      const socket = new StreamSocket(stream, connection);
      this.components.clients.acceptStream(socket, rateKey(socket));
    } catch (err) {
      // A fault of this node, never of the client: logged, and the stream reset.
      this.components.log.error({ err: (err as Error).message }, 'client stream not accepted');
      stream.abort(err as Error);
    }
  }
}

/**
 * SEC5.2: a libp2p client's connections are counted by its IP address, with
 * TCP clients from the same host, not by its peer id: anyone without an
 * allow-list can make new peer ids for free.
 */
function rateKey(socket: StreamSocket): string {
  return socket.remoteAddress ?? socket.remotePeer.id;
}

export function clientStreams(init: ClientStreamsInit, components: ClientStreamsComponents): ClientStreams {
  return new ClientStreams(init, components);
}
