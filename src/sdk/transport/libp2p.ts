/**
 * The SDK's libp2p transport (protocol/SECURITY.md section 6): a small
 * libp2p host for the client process (TCP, noise, yamux, and the cluster's
 * private network when given its key; no listen address, no discovery, no
 * gossip), created on first use, from which each connection to a node is
 * one stream of `/swarmmq/client/1.0.0`, wrapped as a Node Duplex so the
 * wire client (src/sdk/wire/connection.ts `connectStream`) speaks the
 * client protocol over it as over TCP. No TLS on it: noise encrypts it and
 * proves the node's peer id (the one in the address's `/p2p/` part).
 */
import '../../mesh/polyfill.js';
import { createLibp2p } from 'libp2p';
import { tcp } from '@libp2p/tcp';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { preSharedKey } from '@libp2p/pnet';
import { generateKeyPair, privateKeyFromProtobuf } from '@libp2p/crypto/keys';
import type { Libp2p, PrivateKey } from '@libp2p/interface';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { swarmKey } from '../../mesh/admission.js';
import { CLIENT_PROTOCOL } from '../../mesh/client-streams.js';
import { YAMUX_INIT } from '../../mesh/muxer.js';
import { StreamSocket } from '../../mesh/stream-socket.js';
import { ClientError, ClientErrorCode, abortError } from '../wire/errors.js';

/** Streams this host opens to one node at once (libp2p's per-connection limit for the protocol). */
const MAX_STREAMS_PER_NODE = 64;

export interface Libp2pTransportOptions {
  /**
   * The cluster key: 64 hex digits, as `security.cluster_key` (the
   * swarm.key file text is taken too). Given, every connection is a
   * private-network connection under it (SEC1.1); a node with a key
   * refuses a client without it, or with another one, before noise.
   */
  clusterKey?: string;
  /**
   * This client's Ed25519 peer key, or its protobuf bytes (as a node's
   * `<data_dir>/peer.key`), so its peer id can be listed in a node's
   * `security.allowed_peers` (SEC1.2). Absent, the host makes a new one:
   * an ephemeral peer id, let in only where no allow-list is set.
   */
  privateKey?: PrivateKey | Uint8Array;
}

/** A client process's libp2p host; started by the first openClientStream, stopped by close(). */
export class Libp2pTransport {
  private readonly psk: Uint8Array | undefined;
  private node: Promise<Libp2p> | undefined;
  private closed = false;

  /** Checks the options at once (a bad cluster key throws ClientError `INVALID`); starts nothing. */
  constructor(private readonly opts: Libp2pTransportOptions = {}) {
    this.psk = opts.clusterKey === undefined ? undefined : swarmKey(parseClusterKey(opts.clusterKey));
  }

  /** This host's peer id (what a node's allowed_peers lists); starts the host if needed. */
  async peerId(): Promise<string> {
    return (await this.host()).peerId.toString();
  }

  /**
   * One client stream to the node at `address` (a multiaddr, best with
   * `/p2p/<peer-id>`: noise then checks the node is that peer). Rejects with
   * ClientError `CONNECT` when the node cannot be reached, refuses this
   * client (another cluster key, not on its allow-list) or does not serve
   * clients over libp2p; `TIMEOUT`/`ABORTED` when `signal` fires first.
   */
  async openClientStream(address: string, signal?: AbortSignal): Promise<StreamSocket> {
    const doing = `opening a libp2p client stream to ${address}`;
    let target: Multiaddr;
    try {
      target = multiaddr(address);
    } catch (err) {
      throw new ClientError(
        ClientErrorCode.Invalid,
        `${address} is not a multiaddr (${(err as Error).message})`,
      );
    }
    if (signal?.aborted === true) throw abortError(signal, doing);
    const node = await this.host();
    try {
      // One connection per node, shared by its streams (libp2p reuses an open one).
      const connection = await node.dial(target, signal === undefined ? {} : { signal });
      const stream = await connection.newStream(CLIENT_PROTOCOL, {
        ...(signal === undefined ? {} : { signal }),
        maxOutboundStreams: MAX_STREAMS_PER_NODE,
      });
      return new StreamSocket(stream, connection);
    } catch (err) {
      if (err instanceof ClientError) throw err;
      // Read again: the dial may have been cut short by the signal (TypeScript keeps the check above).
      if (aborted(signal)) throw abortError(signal!, doing);
      throw new ClientError(
        ClientErrorCode.Connect,
        `cannot reach ${address} over libp2p (${describe(err)})`,
      );
    }
  }

  /** Stops the host: every stream and connection it opened ends. Later opens fail with `CLOSED`. */
  async close(): Promise<void> {
    this.closed = true;
    const node = this.node;
    this.node = undefined;
    if (node !== undefined)
      await node.then(
        (n) => n.stop(),
        () => undefined,
      );
  }

  private host(): Promise<Libp2p> {
    if (this.closed)
      return Promise.reject(new ClientError(ClientErrorCode.Closed, 'libp2p transport closed'));
    if (this.node === undefined) {
      const starting = this.start();
      this.node = starting;
      // A host that failed to start is tried again by the next call.
      starting.catch(() => {
        if (this.node === starting) this.node = undefined;
      });
    }
    return this.node;
  }

  private async start(): Promise<Libp2p> {
    const k = this.opts.privateKey;
    const privateKey =
      k === undefined
        ? await generateKeyPair('Ed25519')
        : k instanceof Uint8Array
          ? privateKeyFromProtobuf(k)
          : k;
    const node = await createLibp2p({
      privateKey,
      // A client dials out only: no listen address, no discovery, no gossip, no identify.
      addresses: { listen: [] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux(YAMUX_INIT)],
      ...(this.psk === undefined ? {} : { connectionProtector: preSharedKey({ psk: this.psk }) }),
    });
    await node.start();
    return node;
  }
}

/** A new transport (nothing starts until the first stream). */
export function libp2pTransport(opts: Libp2pTransportOptions = {}): Libp2pTransport {
  return new Libp2pTransport(opts);
}

/** `transport.openClientStream(address, signal)`, as a function. */
export function openClientStream(
  transport: Libp2pTransport,
  address: string,
  signal?: AbortSignal,
): Promise<StreamSocket> {
  return transport.openClientStream(address, signal);
}

/** 64 hex digits, or the swarm.key text ending in them; the key itself is never put in a message. */
function parseClusterKey(text: string): Buffer {
  const hex = text.trim().split(/\s+/).pop() ?? '';
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
    throw new ClientError(
      ClientErrorCode.Invalid,
      'clusterKey: expected 64 hex digits (swarmmq gen cluster-key)',
    );
  }
  return Buffer.from(hex, 'hex');
}

function aborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

/** A libp2p failure as one line: its name tells refusals apart. */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.name === 'UnsupportedProtocolError') return 'the node does not serve clients over libp2p';
  return `${err.name}: ${err.message}`;
}
