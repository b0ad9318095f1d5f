/**
 * The node's libp2p peer (protocol/MESH.md section 1): TCP, noise, yamux,
 * identify, ping and gossipsub, with a peer key kept in the data dir so a
 * restarted node keeps its peer id (M1.1). mDNS only when asked for (M1.4).
 */
import './polyfill.js';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { createLibp2p, type Libp2p } from 'libp2p';
import { tcp } from '@libp2p/tcp';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import { ping } from '@libp2p/ping';
import { mdns } from '@libp2p/mdns';
import { gossipsub, type GossipSub } from '@libp2p/gossipsub';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import type { Admission } from './admission.js';
import { YAMUX_INIT } from './muxer.js';

/** New inbound mesh connections per second from one address before libp2p drops them unlogged (SEC1.5). */
const MESH_INBOUND_PER_SECOND_PER_ADDRESS = 20;
/** Inbound mesh connections in their handshake at once (SEC1.5). */
const MESH_MAX_PENDING_INBOUND = 32;
/** Time an inbound connection has to finish its key exchange, noise and yamux (SEC1.5). */
const MESH_INBOUND_UPGRADE_TIMEOUT_MS = 5000;
/** libp2p connections kept beyond the client limit, for members (libp2p's default of 300 counts clients and members together). */
const MESH_MEMBER_CONNECTIONS = 256;

export type MeshLibp2p = Libp2p<{ pubsub: GossipSub; identify: unknown; ping: unknown }>;

export interface PeerInit {
  dataDir: string;
  host: string;
  port: number;
  cluster: string;
  mdns: boolean;
  heartbeatIntervalMs: number;
  /** The cluster key and allow-list (protocol/SECURITY.md section 1). */
  admission: Admission;
  /** `max_connections`: libp2p clients (SEC6) come on top of members. */
  maxClientConnections: number;
}

/** The peer key file in the data dir (protobuf-encoded Ed25519 key, mode 0600). */
export const PEER_KEY_FILE = 'peer.key';

export async function loadPeerKey(dataDir: string): Promise<PrivateKey> {
  const file = path.join(dataDir, PEER_KEY_FILE);
  if (existsSync(file)) return privateKeyFromProtobuf(readFileSync(file));
  const key = await generateKeyPair('Ed25519');
  writeFileSync(file, privateKeyToProtobuf(key), { mode: 0o600 });
  return key;
}

export async function createPeer(init: PeerInit): Promise<MeshLibp2p> {
  const privateKey = await loadPeerKey(init.dataDir);
  const listen = `/ip4/${init.host}/tcp/${init.port}`;
  const protector = init.admission.protector();
  return (await createLibp2p({
    privateKey,
    addresses: { listen: [listen] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    // SEC1.1: with a cluster key, a node without it cannot even start noise with us.
    ...(protector === undefined ? {} : { connectionProtector: protector }),
    connectionGater: init.admission.gater(),
    streamMuxers: [yamux(YAMUX_INIT)],
    connectionMonitor: { pingInterval: 2000 },
    // SECURITY.md SEC1.5: libp2p's own flood limits, set for a mesh of a few dozen members.
    connectionManager: {
      inboundConnectionThreshold: MESH_INBOUND_PER_SECOND_PER_ADDRESS,
      maxIncomingPendingConnections: MESH_MAX_PENDING_INBOUND,
      inboundUpgradeTimeout: MESH_INBOUND_UPGRADE_TIMEOUT_MS,
      // SEC6.6: libp2p clients count here too; members must always find room.
      maxConnections: init.maxClientConnections + MESH_MEMBER_CONNECTIONS,
    },
    // The service tag carries the cluster name, so clusters on one LAN do not even meet (M1.7).
    peerDiscovery: init.mdns ? [mdns({ interval: 1000, serviceTag: `swarmmq-${init.cluster}.local` })] : [],
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        heartbeatInterval: Math.min(1000, init.heartbeatIntervalMs),
        // Members are few and all of them want every heartbeat.
        floodPublish: true,
      }),
    },
  })) as unknown as MeshLibp2p;
}

/**
 * libp2p's yamux can throw from a timer after a peer's connection closed
 * (seen here: `StreamStateError: Cannot write to a stream that is closed`
 * from a window update), which would end the process. Those errors are
 * logged and survived; any other uncaught error still ends the process, as
 * Node would.
 */
const SURVIVABLE = new Set(['StreamStateError', 'StreamResetError', 'StreamClosedError', 'MuxerClosedError']);
let guarded = false;

export function guardStreamErrors(log: {
  warn: (o: object, m: string) => void;
  fatal: (o: object, m: string) => void;
}): void {
  if (guarded) return;
  guarded = true;
  process.on('uncaughtException', (err) => {
    if (SURVIVABLE.has(err.name)) {
      log.warn({ err: `${err.name}: ${err.message}` }, 'libp2p stream error after close; ignored');
      return;
    }
    log.fatal({ err: err.stack ?? String(err) }, 'uncaught exception');
    process.exit(1);
  });
}
