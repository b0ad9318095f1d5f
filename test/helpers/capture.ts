/**
 * Helpers for tests that look at the bytes on the wire and on disk
 * (test/security): tcpdump on `lo` into a pcap file, a sentinel port that
 * tells when the file holds everything sent before it, a pcap reader with
 * TCP stream reassembly, a search for a marker in the encodings a leak may
 * take, and the sockets of node processes (`ss`).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { waitFor } from './wire.js';

/** tcpdump's kernel buffer (KiB): far more than a test here sends, so nothing is dropped even while
 * other test files keep both cores busy and tcpdump reads late (8 MiB dropped a few packets then). */
const CAPTURE_BUFFER_KIB = 65_536;
/** How long tcpdump may take to start capturing, to write a packet out, or to exit. */
export const CAPTURE_TIMEOUT_MS = 15_000;

export interface CaptureStats {
  captured: number;
  droppedByKernel: number;
}

/** A tcpdump process writing the packets of some ports on `lo` to a file. */
export class Capture {
  private stderr = '';
  private readonly exited: Promise<void>;

  private constructor(
    readonly file: string,
    private readonly child: ChildProcess,
  ) {
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => child.once('close', () => resolve()));
  }

  /** Starts tcpdump and resolves once it is capturing (it says `listening on lo`). */
  static async start(t: ExecutionContext, file: string, ports: number[]): Promise<Capture> {
    const filter = ports.map((p) => `tcp port ${p}`).join(' or ');
    const args = ['-i', 'lo', '-n', '-U', '--immediate-mode', '-s', '0', '-B', String(CAPTURE_BUFFER_KIB)];
    const child = spawn('tcpdump', [...args, '-w', file, filter], { stdio: ['ignore', 'ignore', 'pipe'] });
    let spawnError: Error | undefined;
    child.once('error', (err) => (spawnError = err));
    const c = new Capture(file, child);
    t.teardown(async () => {
      if (c.running()) child.kill('SIGKILL');
      await c.exited;
    });
    await waitFor(
      () => {
        if (spawnError !== undefined) throw new Error(`tcpdump (CI installs it): ${spawnError.message}`);
        if (!c.running()) throw new Error(`tcpdump exited: ${c.stderr}`);
        return c.stderr.includes('listening on lo');
      },
      `tcpdump to capture ${filter}`,
      CAPTURE_TIMEOUT_MS,
    );
    return c;
  }

  running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGINT, then waits for the exit (the file is complete then) and reads the counts tcpdump prints. */
  async stop(): Promise<CaptureStats> {
    this.child.kill('SIGINT');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), CAPTURE_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
    const count = (what: string): number => {
      const m = new RegExp(`(\\d+) packets? ${what}`).exec(this.stderr);
      if (m === null) throw new Error(`no "${what}" count from tcpdump: ${this.stderr}`);
      return Number(m[1]);
    };
    return { captured: count('captured'), droppedByKernel: count('dropped by kernel') };
  }
}

/**
 * A port of the test's own, captured with the nodes' ports: bytes written to
 * it after all the traffic under test are in the capture file only once
 * tcpdump has written out everything before them (one kernel ring, read in
 * order), so the capture can be stopped without losing the tail.
 */
export async function sentinelPort(
  t: ExecutionContext,
): Promise<{ port: number; send: (text: string) => void }> {
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const sockets: net.Socket[] = [];
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    send(text) {
      const s = net.connect({ host: '127.0.0.1', port }, () => s.end(text));
      s.on('error', () => undefined);
      sockets.push(s);
    },
  };
}

// ---- pcap -------------------------------------------------------------------

export interface Segment {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  seq: number;
  payload: Buffer;
}

/** The TCP segments of a pcap file (Ethernet link type, as Linux gives for `lo`). */
export function readPcap(file: Buffer): { segments: Segment[]; packets: number } {
  const magic = file.readUInt32LE(0);
  if (magic !== 0xa1b2c3d4 && magic !== 0xa1b23c4d) throw new Error(`not a little-endian pcap file`);
  const linkType = file.readUInt32LE(20);
  if (linkType !== 1) throw new Error(`link type ${linkType}, expected 1 (Ethernet)`);
  const segments: Segment[] = [];
  let packets = 0;
  let pos = 24;
  while (pos + 16 <= file.length) {
    const caplen = file.readUInt32LE(pos + 8);
    const origlen = file.readUInt32LE(pos + 12);
    if (caplen !== origlen) throw new Error(`packet ${packets} cut to ${caplen} of ${origlen} bytes`);
    if (pos + 16 + caplen > file.length) throw new Error(`packet ${packets} runs past the end of the file`);
    const frame = file.subarray(pos + 16, pos + 16 + caplen);
    pos += 16 + caplen;
    packets++;
    const etherType = frame.readUInt16BE(12);
    let ip: Buffer;
    let src: string;
    let dst: string;
    let tcp: Buffer;
    if (etherType === 0x0800) {
      ip = frame.subarray(14);
      if (ip[9] !== 6) continue;
      const total = ip.readUInt16BE(2);
      src = ip.subarray(12, 16).join('.');
      dst = ip.subarray(16, 20).join('.');
      tcp = ip.subarray((ip[0]! & 0x0f) * 4, total);
    } else if (etherType === 0x86dd) {
      ip = frame.subarray(14);
      if (ip[6] !== 6) continue;
      src = ip.subarray(8, 24).toString('hex');
      dst = ip.subarray(24, 40).toString('hex');
      tcp = ip.subarray(40, 40 + ip.readUInt16BE(4));
    } else {
      continue;
    }
    segments.push({
      src,
      dst,
      srcPort: tcp.readUInt16BE(0),
      dstPort: tcp.readUInt16BE(2),
      seq: tcp.readUInt32BE(4),
      payload: tcp.subarray((tcp[12]! >> 4) * 4),
    });
  }
  return { segments, packets };
}

/** Each direction of each TCP connection as one byte stream (retransmitted bytes once). */
export function reassemble(segments: Segment[]): Map<string, Buffer> {
  const flows = new Map<string, { base: number; chunks: Buffer[]; length: number }>();
  for (const s of segments) {
    if (s.payload.length === 0) continue;
    const key = `${s.src}:${s.srcPort} > ${s.dst}:${s.dstPort}`;
    let f = flows.get(key);
    if (f === undefined) {
      f = { base: s.seq, chunks: [], length: 0 };
      flows.set(key, f);
    }
    const offset = (s.seq - f.base) >>> 0;
    const skip = Math.max(0, f.length - offset);
    if (skip >= s.payload.length) continue;
    f.chunks.push(s.payload.subarray(skip));
    f.length += s.payload.length - skip;
  }
  return new Map([...flows].map(([k, f]) => [k, Buffer.concat(f.chunks)]));
}

// ---- search -----------------------------------------------------------------

export interface Needle {
  marker: string;
  encoding: string;
  bytes: Buffer;
}

/** The marker as ASCII, hex (both cases) and base64 at each of the three byte alignments (std and url). */
export function needles(name: string, marker: string): Needle[] {
  const raw = Buffer.from(marker, 'latin1');
  const hex = raw.toString('hex');
  const out: Needle[] = [
    { marker: name, encoding: 'ascii', bytes: raw },
    { marker: name, encoding: 'hex', bytes: Buffer.from(hex) },
    { marker: name, encoding: 'HEX', bytes: Buffer.from(hex.toUpperCase()) },
  ];
  for (let k = 0; k < 3; k++) {
    // Only the characters that depend on the marker's bytes alone.
    const b64 = Buffer.concat([Buffer.alloc(k), raw])
      .toString('base64')
      .slice(Math.ceil((8 * k) / 6), Math.floor((8 * (k + raw.length)) / 6));
    out.push({ marker: name, encoding: `base64+${k}`, bytes: Buffer.from(b64) });
    out.push({
      marker: name,
      encoding: `base64url+${k}`,
      bytes: Buffer.from(b64.replace(/\+/g, '-').replace(/\//g, '_')),
    });
  }
  return out;
}

/** Every place a needle occurs: `<marker> as <encoding> in <where> at <offset>: <hex around it>`. */
export function occurrences(where: string, haystack: Buffer, list: Needle[]): string[] {
  const found: string[] = [];
  for (const n of list) {
    for (let at = haystack.indexOf(n.bytes); at >= 0 && found.length < 50;) {
      const around = haystack.subarray(Math.max(0, at - 16), at + n.bytes.length + 16).toString('hex');
      found.push(`${n.marker} as ${n.encoding} in ${where} at ${at}: ${around}`);
      at = haystack.indexOf(n.bytes, at + 1);
    }
  }
  return found;
}

/** A capture file and the streams in it (streams touching `skipPort`, the sentinel's, left out). */
export function captureHaystacks(file: string, skipPort: number): { where: string; bytes: Buffer }[] {
  const bytes = readFileSync(file);
  const own = (k: string): boolean => k.includes(`:${skipPort} `) || k.endsWith(`:${skipPort}`);
  const streams = [...reassemble(readPcap(bytes).segments)].filter(([k]) => !own(k));
  return [
    { where: `${path.basename(file)} (raw)`, bytes },
    ...streams.map(([k, b]) => ({ where: `${path.basename(file)} stream ${k}`, bytes: b })),
  ];
}

export function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? filesUnder(p) : e.isFile() ? [p] : [];
  });
}

/**
 * The sockets of the node processes (`ss`, iproute2), and those of them that
 * are neither on the node's client port nor a mesh connection (an end on a
 * mesh port): a path between nodes that the mesh capture would not see.
 */
export function nodeSockets(
  pids: number[],
  clientPorts: number[],
  meshPorts: number[],
): { all: string[]; mesh: string[]; outside: string[] } {
  const out = execFileSync('ss', ['-tuanpH'], { encoding: 'utf8', timeout: 10_000 });
  const port = (addr: string): number => Number(addr.slice(addr.lastIndexOf(':') + 1));
  const all = out
    .split('\n')
    .filter((line) => [...line.matchAll(/pid=(\d+),/g)].some((m) => pids.includes(Number(m[1]))));
  const ends = (line: string): [number, number] => {
    const [, , , , local = '', peer = ''] = line.trim().split(/\s+/);
    return [port(local), port(peer)];
  };
  const mesh = all.filter((l) => ends(l).some((p) => meshPorts.includes(p)));
  const outside = all.filter((l) => !mesh.includes(l) && !clientPorts.includes(ends(l)[0]));
  return { all, mesh, outside };
}
