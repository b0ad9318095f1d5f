/**
 * Connections to nodes: how one is dialled (TCP, TLS or libp2p), and the
 * shared connection per node that durable sends to its destinations use.
 * A link is opened on first use and forgotten when it closes; the next call
 * opens it again, so a node that restarts is used again without a timer.
 */
import { connect as wireConnect, type Client } from './wire/connection.js';
import type { TlsFiles } from './wire/types.js';
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
  return transport === 'tcp' ? m.client : m.mesh[0];
}

/** One shared connection per node address, opened on demand. */
export class Links {
  private readonly open = new Map<string, Promise<Client>>();
  private closed = false;

  constructor(
    private readonly dial: Dial,
    private readonly connectTimeoutMs: number,
    /** Every connection this opens, for view updates from its INFO. */
    private readonly opened: (c: Client) => void,
  ) {}

  /** The connection to `address`; several callers share one dial. */
  get(address: string, signal: AbortSignal): Promise<Client> {
    let p = this.open.get(address);
    if (p === undefined) {
      if (this.closed) return Promise.reject(new Error('client closed'));
      // The dial is shared, so it runs on its own deadline, not on the first caller's signal.
      p = this.dial(address, AbortSignal.timeout(this.connectTimeoutMs));
      const mine = p;
      this.open.set(address, mine);
      mine.then(
        (c) => {
          this.opened(c);
          if (this.closed) c.destroy();
          void c.closed.then(() => {
            if (this.open.get(address) === mine) this.open.delete(address);
          });
        },
        () => {
          if (this.open.get(address) === mine) this.open.delete(address);
        },
      );
    }
    return raceSignal(p, signal);
  }

  async closeAll(): Promise<void> {
    this.closed = true;
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.all(all.map((p) => p.then((c) => c.close()).catch(() => undefined)));
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
