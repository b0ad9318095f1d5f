/**
 * Circuit breakers per peer (protocol/MESH.md M5.6): after BREAKER_FAILURES
 * failures in a row a peer's circuit opens for BREAKER_OPEN_MS, doubling up
 * to BREAKER_MAX_OPEN_MS while it keeps failing; a success, or the peer
 * coming back into the view, closes it. Pure: the clock is injected.
 */
import { BREAKER_FAILURES, BREAKER_MAX_OPEN_MS, BREAKER_OPEN_MS } from '../config/defaults.js';

/** PeerError codes that count against a peer's health. A closed link fails
 * every request it carried at once (one event; reopening it is what counts),
 * and a peer that answers with an error is healthy. */
const HEALTH_FAILURES = new Set(['Timeout', 'Unreachable', 'LinkFull']);

interface State {
  failures: number;
  openUntilMs: number;
  openMs: number;
}

export class Breakers {
  private readonly peers = new Map<string, State>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Records a failure; returns the open time when this one opened the circuit. */
  failed(peer: string, code: string | undefined): number | undefined {
    if (!HEALTH_FAILURES.has(code ?? '')) return undefined;
    const s = this.peers.get(peer) ?? { failures: 0, openUntilMs: 0, openMs: 0 };
    this.peers.set(peer, s);
    if (++s.failures < BREAKER_FAILURES) return undefined;
    s.openMs = Math.min(BREAKER_MAX_OPEN_MS, s.openMs === 0 ? BREAKER_OPEN_MS : s.openMs * 2);
    s.openUntilMs = this.now() + s.openMs;
    s.failures = 0;
    return s.openMs;
  }

  /** Records a success; true when it closed a circuit that had opened. */
  succeeded(peer: string): boolean {
    const s = this.peers.get(peer);
    if (s === undefined) return false;
    this.peers.delete(peer);
    return s.openMs > 0;
  }

  isOpen(peer: string): boolean {
    const s = this.peers.get(peer);
    return s !== undefined && s.openUntilMs > this.now();
  }

  /** A peer's circuit as /meshz shows it: failures in a row, and how long it stays open (0: closed). */
  state(peer: string): { open: boolean; failures: number; openForMs: number } {
    const s = this.peers.get(peer);
    const left = s === undefined ? 0 : Math.max(0, s.openUntilMs - this.now());
    return { open: left > 0, failures: s?.failures ?? 0, openForMs: left };
  }

  /** Forgets a peer's record (it left, or came back into the view); true if it had one. */
  forget(peer: string): boolean {
    return this.peers.delete(peer);
  }
}
