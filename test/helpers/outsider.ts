/**
 * Outsiders for the mesh admission tests (protocol/SECURITY.md section 1):
 * libp2p nodes made in the test process with the mesh's own stack (TCP,
 * noise, yamux, identify, gossipsub; src/mesh/peer.ts), with no cluster
 * key, another one or the right one, that try to dial a member and open
 * streams on it, listen on the members topic, and count who dials them.
 * Each attempt comes from a loopback address of its own, so the member's
 * log names the attempt it refused.
 */
import '../../src/mesh/polyfill.js';
import { createLibp2p, type Libp2p } from 'libp2p';
import { tcp, type TCPSocketOptions } from '@libp2p/tcp';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import { gossipsub, type GossipSub } from '@libp2p/gossipsub';
import { preSharedKey } from '@libp2p/pnet';
import type { PrivateKey } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import type { ExecutionContext } from 'ava';
import { membersTopic } from '../../src/mesh/membership.js';
import { waitFor } from './wire.js';

/** How long an outsider that may join has to open gossip and read a heartbeat (a loaded machine is slow). */
const JOIN_TIMEOUT_MS = 15_000;

/** The swarm-key text of libp2p private networks, as src/mesh/admission.ts builds it. */
export function swarmKey(hexKey: string): Uint8Array {
  return new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${hexKey}`);
}

let sources = 0;

/**
 * A loopback address of its own for each outsider connection (127.2.0.1,
 * 127.2.0.2, ...; test/security/attacks.test.ts uses 127.1.x.y). Each stands
 * for another host: libp2p refuses a sixth connection per second from one
 * host before the connection gater sees it, and the member's `remote` then
 * names the attempt.
 */
export function nextSource(): string {
  const n = sources++;
  return `127.2.${Math.floor(n / 250) % 250}.${(n % 250) + 1}`;
}

/** An error as text; libp2p rejects a refused stream with a close event, not an Error. */
function describe(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  if (err instanceof Event) return `${err.constructor.name} (${err.type})`;
  return String(err);
}

export interface Attempt {
  /** 'dial', or the protocol of the stream it tried to open. */
  what: string;
  /** The address it came from: the member logs it as `remote`. */
  source: string;
  /** How it failed; `OPENED ...` when a stream opened or a connection stayed open. */
  outcome: string;
}

export interface Outsider {
  node: Libp2p<{ pubsub: GossipSub; identify: unknown }>;
  peerId: string;
  /** Messages it read on the members topic. */
  heartbeats: string[];
  /** Inbound TCP connections it accepted (counted before any handshake). */
  inboundTcp: number;
  /**
   * A dial of `addr` (and a stream of `protocols[0]` on the connection if the
   * dial resolved), then a stream of each of `protocols` through dialProtocol;
   * each attempt from a source address of its own, on a connection of its
   * own. For peers that must be refused: nothing is left open.
   */
  tryJoin(addr: string, protocols: readonly string[], timeoutMs: number): Promise<Attempt[]>;
}

/**
 * A libp2p node with the mesh's stack (TCP, noise, yamux, identify,
 * gossipsub), listening on loopback, subscribed to the members topic of
 * `cluster`, with `hexKey` as its private-network key when given.
 */
export async function startOutsider(
  t: ExecutionContext,
  cluster: string,
  hexKey?: string,
  privateKey?: PrivateKey,
): Promise<Outsider> {
  const o = { heartbeats: [] as string[], inboundTcp: 0 };
  // Spread into net.connect on every dial, so each attempt can bind its own source address.
  const dialOpts: { localAddress?: string } = {};
  const node = (await createLibp2p({
    ...(privateKey === undefined ? {} : { privateKey }),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp({ dialOpts: dialOpts as unknown as TCPSocketOptions })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    ...(hexKey === undefined ? {} : { connectionProtector: preSharedKey({ psk: swarmKey(hexKey) }) }),
    connectionGater: {
      denyDialMultiaddr: () => false,
      denyInboundConnection: () => {
        o.inboundTcp++;
        return false;
      },
    },
    services: {
      identify: identify(),
      pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, emitSelf: false }),
    },
  })) as unknown as Outsider['node'];
  t.teardown(() => node.stop());
  const topic = membersTopic(cluster);
  node.services.pubsub.subscribe(topic);
  node.services.pubsub.addEventListener('message', (evt) => {
    if (evt.detail.topic === topic) o.heartbeats.push(Buffer.from(evt.detail.data).toString('utf8'));
  });

  const attempt = async (
    addr: string,
    what: string,
    onDialled: string,
    timeoutMs: number,
  ): Promise<string> => {
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      if (what !== 'dial') {
        const stream = await node.dialProtocol(multiaddr(addr), what, { signal });
        stream.abort(new Error('test over'));
        return `OPENED a ${what} stream`;
      }
      // With the key but not allowed, the dial may resolve on this side (yamux is
      // chosen without waiting for an answer) while the member has already closed
      // it: no stream may open on it.
      const conn = await node.dial(multiaddr(addr), { signal });
      return await conn.newStream(onDialled, { signal }).then(
        (stream) => {
          stream.abort(new Error('test over'));
          return `OPENED a ${onDialled} stream on a dialled connection`;
        },
        (err: unknown) => `dialled, then no stream: ${describe(err)}`,
      );
    } catch (err) {
      return describe(err);
    }
  };
  const tryJoin = async (
    addr: string,
    protocols: readonly string[],
    timeoutMs: number,
  ): Promise<Attempt[]> => {
    const out: Attempt[] = [];
    for (const what of ['dial', ...protocols]) {
      const source = nextSource();
      dialOpts.localAddress = source;
      let outcome = await attempt(addr, what, protocols[0]!, timeoutMs);
      // The member closes a refused connection; none may stay open (nor be reused by the next attempt).
      const closed = await waitFor(() => node.getConnections().length === 0, 'no connection', timeoutMs).then(
        () => true,
        () => false,
      );
      if (!closed) {
        outcome = `OPENED: a connection stayed open (${outcome})`;
        for (const c of node.getConnections()) c.abort(new Error('test over'));
      }
      out.push({ what, source, outcome });
    }
    return out;
  };
  return Object.assign(o, { node, peerId: node.peerId.toString(), tryJoin });
}

/** An outsider that may join opens gossip on `addr` and reads a heartbeat. */
export async function joinAndReadHeartbeat(outsider: Outsider, addr: string): Promise<void> {
  const deadline = Date.now() + JOIN_TIMEOUT_MS;
  await outsider.node.dialProtocol(multiaddr(addr), '/meshsub/1.1.0', {
    signal: AbortSignal.timeout(JOIN_TIMEOUT_MS),
  });
  await waitFor(
    () => outsider.heartbeats.length > 0,
    'a heartbeat read by the outsider',
    Math.max(0, deadline - Date.now()),
  );
}
