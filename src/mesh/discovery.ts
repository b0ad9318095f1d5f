/**
 * Finding peers (protocol/MESH.md section 1): a registry directory for the
 * nodes of one cluster on this host (M1.3; it sends nothing on any network),
 * `--join` addresses (M1.5), and re-dialling members that were seen before
 * (M1.6: peer exchange, and what heals a split). mDNS is wired in peer.ts.
 */
import { mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import type { Logger } from '../log.js';
import { DISCOVERY_INTERVAL_MS, LOCAL_REGISTRY_DIRNAME } from '../config/defaults.js';
import type { MeshLibp2p } from './peer.js';
import type { Membership } from './membership.js';

export interface DiscoveryInit {
  cluster: string;
  localDiscovery: boolean;
  registryDir: string | undefined;
  join: readonly string[];
}

/** `host:port` or a multiaddr, as a multiaddr. */
export function joinAddress(addr: string): Multiaddr {
  if (addr.startsWith('/')) return multiaddr(addr);
  const m = /^(.+):(\d{1,5})$/.exec(addr);
  if (m === null) throw new Error(`join address ${JSON.stringify(addr)} is not host:port or a multiaddr`);
  const host = m[1]!.replace(/^\[|\]$/g, '');
  const proto = /^\d+\.\d+\.\d+\.\d+$/.test(host) ? 'ip4' : host.includes(':') ? 'ip6' : 'dns4';
  return multiaddr(`/${proto}/${host}/tcp/${m[2]}`);
}

export class Discovery {
  private timer: NodeJS.Timeout | undefined;
  private readonly dir: string | undefined;
  private readonly file: string | undefined;
  private readonly selfId: string;
  /** Per peer id: when a dial may be tried next (backoff). */
  private readonly backoff = new Map<string, { nextMs: number; delayMs: number }>();
  private readonly joins: Multiaddr[];
  /** Live nodes of this cluster in the registry at the last read. */
  registered = new Set<string>();

  constructor(
    private readonly p2p: MeshLibp2p,
    private readonly membership: Membership,
    init: DiscoveryInit,
    private readonly log: Logger,
  ) {
    this.selfId = p2p.peerId.toString();
    this.joins = init.join.map(joinAddress);
    if (init.localDiscovery) {
      this.dir = path.join(init.registryDir ?? path.join(tmpdir(), LOCAL_REGISTRY_DIRNAME), init.cluster);
      this.file = path.join(this.dir, `${this.selfId}.json`);
    }
    // libp2p 3 has no auto-dialer: a discovered peer (mDNS) is dialled here.
    p2p.addEventListener('peer:discovery', (evt) => {
      const id = evt.detail.id.toString();
      if (id === this.selfId || this.connected(id)) return;
      this.p2p.dial(evt.detail.id, { signal: AbortSignal.timeout(2000) }).catch((err: unknown) => {
        this.log.debug({ peer: id, err: String(err) }, 'dial of discovered peer failed');
      });
    });
  }

  start(): void {
    if (this.file !== undefined) {
      mkdirSync(this.dir!, { recursive: true });
      const entry = { id: this.selfId, pid: process.pid, addrs: this.addrs() };
      const tmp = `${this.file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(entry));
      renameSync(tmp, this.file);
    }
    this.tick();
    this.timer = setInterval(() => this.tick(), DISCOVERY_INTERVAL_MS);
    this.timer.unref();
  }

  /** Whether this node may hear of peers other than through the registry (join addresses, mDNS). */
  get searching(): boolean {
    return this.joins.length > 0;
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (this.file !== undefined) {
      rmSync(this.file, { force: true });
      try {
        rmdirSync(this.dir!); // the last node of this cluster here leaves nothing behind
      } catch {
        // others still registered, or already gone
      }
    }
  }

  private addrs(): string[] {
    return this.p2p.getMultiaddrs().map((a) => a.toString());
  }

  private connected(id: string): boolean {
    return this.p2p.getConnections().some((c) => c.remotePeer.toString() === id);
  }

  private tick(): void {
    const candidates = new Map<string, string[]>();
    for (const [id, k] of this.membership.known) candidates.set(id, k.mesh);
    if (this.dir !== undefined) {
      const reg = this.readRegistry();
      reg.delete(this.selfId);
      this.registered = new Set(reg.keys());
      for (const [id, addrs] of reg) candidates.set(id, addrs);
    }
    for (const [id, addrs] of candidates) {
      if (id === this.selfId || this.membership.members.has(id) || this.connected(id)) continue;
      // A registry file anyone on this host could write: an address that does not parse is skipped.
      const parsed = addrs.flatMap((a) => {
        try {
          return [multiaddr(a)];
        } catch {
          return [];
        }
      });
      if (parsed.length > 0) void this.dial(id, parsed);
    }
    // Join addresses are dialled until this node knows a member; peer exchange does the rest (M1.5).
    if (this.membership.members.size === 0) {
      for (const a of this.joins) void this.dial(`join:${a.toString()}`, [a]);
    }
  }

  private async dial(key: string, addrs: Multiaddr[]): Promise<void> {
    const now = Date.now();
    const b = this.backoff.get(key);
    if (b !== undefined && b.nextMs > now) return;
    for (const a of addrs) {
      try {
        await this.p2p.dial(a, { signal: AbortSignal.timeout(2000) });
        this.backoff.delete(key);
        return;
      } catch {
        // next address
      }
    }
    const delayMs = Math.min(10_000, (b?.delayMs ?? 500) * 2);
    this.backoff.set(key, { nextMs: now + delayMs, delayMs });
  }

  /** Entries of live processes in the registry; entries of dead ones are removed. */
  private readRegistry(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    let names: string[];
    try {
      names = readdirSync(this.dir!);
    } catch {
      return out;
    }
    for (const n of names) {
      if (!n.endsWith('.json')) continue;
      const file = path.join(this.dir!, n);
      try {
        const e = JSON.parse(readFileSync(file, 'utf8')) as { id: string; pid: number; addrs: string[] };
        peerIdFromString(e.id);
        if (!alive(e.pid)) {
          rmSync(file, { force: true });
          continue;
        }
        out.set(e.id, e.addrs);
      } catch {
        // being written, or not ours
      }
    }
    return out;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
