/**
 * Connections to nodes: how one is dialled (TCP, TLS or libp2p), and the
 * shared connection per node that durable sends to its destinations use.
 * A link is opened on first use and forgotten when it closes; the next call
 * opens it again, so a node that restarts is used again without a timer.
 */
import { connect as wireConnect, type Client } from './wire/connection.js';
import type { TlsFiles } from './wire/types.js';
import { ClientError, ClientErrorCode } from './wire/errors.js';
import { InvalidArgumentError } from './errors.js';
import type { ResolvedOptions, TlsOptions } from './options.js';
import type { ViewMember } from './view.js';

/** Opens one protocol connection to `address` and completes its handshake. */
export type Dial = (address: string, signal: AbortSignal) => Promise<Client>;

/** `host:port`, `nats://host:port`, `tls://host:port` or `[v6]:port`. */
export function parseHostPort(address: string): { host: string; port: number } {
  const bare = address.replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, '');
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(bare);
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || port < 1 || port > 65535) {
    throw new InvalidArgumentError(`${JSON.stringify(address)} is not a host:port address`);
  }
  return { host: m[1] ?? m[2]!, port };
}

function buf(v: Uint8Array | string | undefined): Buffer | undefined {
  return v === undefined ? undefined : typeof v === 'string' ? Buffer.from(v) : Buffer.from(v);
}

function tlsFiles(t: TlsOptions | undefined): TlsFiles | undefined {
  return t === undefined ? undefined : { ca: buf(t.ca), cert: buf(t.cert), key: buf(t.key) };
}

/** The dialer for the configured transport. */
export function tcpDialer(o: ResolvedOptions): Dial {
  const tls = tlsFiles(o.tls);
  return (address, signal) => {
    const { host, port } = parseHostPort(address);
    return wireConnect({ host, port, ...o.auth, tls, signal });
  };
}

/** Where a member is dialled on this transport: its client port, or its first libp2p address. */
export function addressOf(m: ViewMember, transport: 'tcp' | 'libp2p'): string | undefined {
  const a = transport === 'tcp' ? m.client : m.mesh[0];
  return a === '' ? undefined : a;
}

/** Shared connections by key (a purpose and a node address), opened on demand. */
export class Links {
  private readonly open = new Map<string, { address: string; conn: Promise<Client>; ready?: Client }>();
  private closed = false;

  constructor(
    private readonly dial: Dial,
    private readonly connectTimeoutMs: number,
  ) {}

  /** The connection kept under `key`, to `address`; several callers share one dial. */
  get(key: string, address: string, signal: AbortSignal): Promise<Client> {
    let entry = this.open.get(key);
    if (entry === undefined) {
      if (this.closed) return Promise.reject(new ClientError(ClientErrorCode.Closed, 'client closed'));
      // The dial is shared, so it runs on its own deadline, not on the first caller's signal.
      const conn = this.dial(address, AbortSignal.timeout(this.connectTimeoutMs));
      const mine: { address: string; conn: Promise<Client>; ready?: Client } = { address, conn };
      entry = mine;
      this.open.set(key, mine);
      conn.then(
        (c) => {
          mine.ready = c;
          if (this.closed || this.open.get(key) !== mine) c.destroy();
          void c.closed.then(() => {
            if (this.open.get(key) === mine) this.open.delete(key);
          });
        },
        () => {
          if (this.open.get(key) === mine) this.open.delete(key);
        },
      );
    }
    return raceSignal(entry.conn, signal);
  }

  /** The open connection kept under `key`, if its dial has completed. */
  peek(key: string): Client | undefined {
    return this.open.get(key)?.ready;
  }

  /** Closes the links to addresses `keep` rejects (nodes that left the view). */
  retain(keep: (address: string) => boolean): void {
    for (const [key, e] of this.open) {
      if (keep(e.address)) continue;
      this.open.delete(key);
      void e.conn.then((c) => c.close()).catch(() => undefined);
    }
  }

  async closeAll(): Promise<void> {
    this.closed = true;
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.all(all.map((e) => e.conn.then((c) => c.close()).catch(() => undefined)));
  }
}

/** `p`, or a rejection as soon as `signal` aborts. */
export function raceSignal<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e as Error);
      },
    );
  });
}
