/**
 * Helpers for wire tests: a node started in-process on port 0 with its own
 * temp data dir, a raw TCP client with send/expect, and waitFor (poll with a
 * deadline; never sleep-and-hope).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { ExecutionContext } from 'ava';
import { resolveOptions, type NodeOptions } from '../../src/config/options.js';
import { createLogger } from '../../src/log.js';
import { startNode, type SwarmNode } from '../../src/node.js';

export interface TestNode {
  node: SwarmNode;
  port: number;
  /** Log lines the node wrote (JSON strings). */
  logs: string[];
}

/** Starts a node on 127.0.0.1:0 with a temp data dir; stopped and removed when the test ends. */
export async function startTestNode(
  t: ExecutionContext,
  overrides: Partial<NodeOptions> = {},
): Promise<TestNode> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'swarmmq-test-'));
  const options = resolveOptions({
    // Standalone unless a test asks for the mesh: in-process nodes of concurrent tests must not meet.
    overrides: {
      host: '127.0.0.1',
      port: 0,
      meshEnabled: false,
      ...overrides,
      dataDir: overrides.dataDir ?? dataDir,
    },
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (logs.length < 10_000) logs.push(chunk.toString());
      cb();
    },
  });
  const node = await startNode({ options, logger: createLogger('debug', sink) });
  t.teardown(async () => {
    await node.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { node, port: node.server.port, logs };
}

/** Polls `check` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(check: () => T | Promise<T>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let delay = 2;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 50);
  }
}

/** A raw protocol client: bytes in, text out (latin1, so every byte is one char). */
export class RawClient {
  buffer = '';
  closed = false;
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buffer += d.toString('latin1');
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  /** `localAddress` (e.g. 127.0.0.2) makes the connection come from another loopback address. */
  static async connect(t: ExecutionContext, port: number, localAddress?: string): Promise<RawClient> {
    const socket = net.connect({
      host: '127.0.0.1',
      port,
      ...(localAddress === undefined ? {} : { localAddress }),
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const c = new RawClient(socket);
    t.teardown(() => {
      socket.destroy();
    });
    return c;
  }

  /** Connects and consumes the INFO line; returns the parsed INFO. */
  static async open(
    t: ExecutionContext,
    port: number,
    connect?: Record<string, unknown>,
    localAddress?: string,
  ): Promise<[RawClient, Record<string, unknown>]> {
    const c = await RawClient.connect(t, port, localAddress);
    const line = await c.expect(/^INFO (.*)\r\n/);
    const info = JSON.parse(line[1]!) as Record<string, unknown>;
    if (connect !== undefined) {
      c.send(`CONNECT ${JSON.stringify(connect)}\r\nPING\r\n`);
      // C2.9: a clustered node with credentials or TLS sends INFO again, with its view, after CONNECT.
      await c.expect(/^(INFO [^\r\n]*\r\n)?PONG\r\n/);
    }
    return [c, info];
  }

  send(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /**
   * Waits until the start of the unread buffer matches `re` (anchor it with
   * ^), consumes the match and returns it.
   */
  async expect(re: RegExp, timeoutMs = 5000): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.buffer);
      if (m !== null && m.index === 0) {
        this.buffer = this.buffer.slice(m[0].length);
        return m;
      }
      if (this.closed)
        throw new Error(
          `connection closed; expected ${re} but have ${JSON.stringify(this.buffer.slice(0, 300))}`,
        );
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`timed out waiting for ${re}; have ${JSON.stringify(this.buffer.slice(0, 300))}`);
      await this.next(left);
    }
  }

  /** Sends PING and returns everything received before the PONG (a barrier, C2.6). */
  async flushed(timeoutMs = 5000): Promise<string> {
    this.send('PING\r\n');
    const m = await this.expect(/^([\s\S]*?)PONG\r\n/, timeoutMs);
    return m[1]!;
  }

  async waitClosed(timeoutMs = 5000): Promise<void> {
    await waitFor(() => this.closed, 'connection to close', timeoutMs);
  }

  private next(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, Math.min(timeoutMs, 1000));
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/** A quiet CONNECT most tests use. */
export const QUIET = { verbose: false, pedantic: false, headers: true, protocol: 1 };
