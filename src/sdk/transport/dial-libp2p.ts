/**
 * The SDK's dialler for the libp2p client transport (SECURITY.md section 6):
 * one small libp2p host per client, a `/swarmmq/client/1.0.0` stream per
 * connection, the same client protocol on it. Loaded only when a client
 * asks for `transport: 'libp2p'`, so TCP applications never load libp2p.
 */
import { connectStream } from '../wire/connection.js';
import type { Dial } from '../links.js';
import type { ResolvedOptions } from '../options.js';
import { libp2pTransport } from './libp2p.js';

/** A dialler over libp2p, and how to stop its host when the client closes. */
export function libp2pDialer(o: ResolvedOptions): { dial: Dial; close: () => Promise<void> } {
  const transport = libp2pTransport({ clusterKey: o.libp2p.clusterKey, privateKey: o.libp2p.privateKey });
  return {
    dial: async (address, signal) => {
      const socket = await transport.openClientStream(address, signal);
      return connectStream(socket, address, { ...o.auth, signal });
    },
    close: () => transport.close(),
  };
}
