/**
 * Smoke tests of the network-namespace lab (test/helpers/netns.ts) with real
 * processes: TCP between hosts, a cut and a heal, multicast as mDNS needs it,
 * and a destroy that leaves nothing behind. Every client runs inside a lab
 * host; the driver never connects to a lab address (shared/notes/NETNS.md).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import test, { type ExecutionContext } from 'ava';
import { createLab, netnsAvailable, type NetnsHost, type NetnsLab } from '../helpers/netns.js';
import { waitFor } from '../helpers/wire.js';

const NODE = process.execPath;
/** Fixed ports are safe here: each lab host has its own network stack. */
const ECHO_PORT = 7000;
const MCAST_PORT = 5399;
/** mDNS's group (224.0.0.251), on a port of our own. */
const MCAST_GROUP = '224.0.0.251';

/** Echoes every byte back; prints `ready` once listening. */
const ECHO_SERVER = `
const net = require('node:net');
net.createServer((s) => { s.on('error', () => {}); s.pipe(s); })
  .listen(${ECHO_PORT}, '0.0.0.0', () => console.log('ready'));
`;

/** argv: host port timeoutMs. Sends a line, prints `echo <line>`, exits 0; exit 1 on error, 2 on timeout. */
const ECHO_CLIENT = `
const net = require('node:net');
const [host, port, timeoutMs] = process.argv.slice(1);
setTimeout(() => { console.log('timeout'); process.exit(2); }, Number(timeoutMs));
const s = net.connect({ host, port: Number(port) }, () => s.write('hello lab\\n'));
let got = '';
s.on('data', (d) => {
  got += d;
  if (got.includes('\\n')) { console.log('echo ' + got.trim()); process.exit(0); }
});
s.on('error', (e) => { console.log('error ' + e.code); process.exit(1); });
`;

/** argv: group port timeoutMs. Joins the group, prints `ready`, then `got <msg>` on the first datagram. */
const MCAST_RECEIVER = `
const dgram = require('node:dgram');
const [group, port, timeoutMs] = process.argv.slice(1);
setTimeout(() => { console.log('timeout'); process.exit(2); }, Number(timeoutMs));
const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
s.on('message', (m, r) => { console.log('got ' + m + ' from ' + r.address); process.exit(0); });
s.bind(Number(port), () => { s.addMembership(group); console.log('ready'); });
`;

/** argv: group port durationMs. Sends a datagram every 50 ms for durationMs (TTL 1), then exits. */
const MCAST_SENDER = `
const dgram = require('node:dgram');
const [group, port, durationMs] = process.argv.slice(1);
const s = dgram.createSocket('udp4');
s.bind(() => {
  s.setMulticastTTL(1);
  s.setMulticastLoopback(false);
  let n = 0;
  const tick = () => s.send('hello ' + n++, Number(port), group);
  tick();
  const iv = setInterval(tick, 50);
  setTimeout(() => { clearInterval(iv); s.close(); console.log('sent ' + n); }, Number(durationMs));
});
`;

/** A lab, or a failed test saying why there cannot be one: these tests must never pass by skipping. */
async function labOrFail(t: ExecutionContext, hostCount: number): Promise<NetnsLab | undefined> {
  const available = netnsAvailable();
  if (!available.ok) {
    t.fail(available.why);
    return undefined;
  }
  const startedMs = Date.now();
  const lab = await createLab(t, hostCount);
  t.log(`lab ${lab.prefix} (${lab.subnet}, ${hostCount} hosts) created in ${Date.now() - startedMs} ms`);
  return lab;
}

async function echo(
  lab: NetnsLab,
  from: NetnsHost,
  to: NetnsHost,
  timeoutMs: number,
): Promise<{ code: number | string; out: string }> {
  const p = lab.spawn(from, NODE, ['-e', ECHO_CLIENT, to.address, String(ECHO_PORT), String(timeoutMs)]);
  const code = await p.exited;
  return { code, out: p.lines.join('\n') + p.stderr() };
}

/** Gone: no such pid, or a zombie nobody has reaped yet (it can run nothing). */
function gone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') ?? true;
  } catch {
    return true;
  }
}

test('hosts reach each other over TCP; a cut host is unreachable until healed', async (t) => {
  const lab = await labOrFail(t, 3);
  if (lab === undefined) return;
  const [a, b] = lab.hosts as [NetnsHost, NetnsHost, NetnsHost];

  const server = lab.spawn(a, NODE, ['-e', ECHO_SERVER]);
  await server.waitForLine((l) => l === 'ready', 5_000);
  const before = await echo(lab, b, a, 2_000);
  t.is(before.code, 0, before.out);
  t.regex(before.out, /^echo hello lab/);

  await lab.cut(a);
  const cutAtMs = Date.now();
  const during = await echo(lab, b, a, 1_500);
  t.not(during.code, 0, `B reached A while A was cut: ${during.out}`);
  t.log(`while cut: client ended after ${Date.now() - cutAtMs} ms with ${during.out.trim()}`);

  await lab.heal(a);
  const healedAtMs = Date.now();
  let attempts = 0;
  await waitFor(
    async () => {
      attempts++;
      return (await echo(lab, b, a, 1_000)).code === 0;
    },
    'B to reach A after heal',
    10_000,
  );
  t.log(`after heal: echo worked ${Date.now() - healedAtMs} ms later, attempt ${attempts}`);
});

test('multicast reaches other hosts, including one that was cut and healed', async (t) => {
  const lab = await labOrFail(t, 3);
  if (lab === undefined) return;
  const [a, b, c] = lab.hosts as [NetnsHost, NetnsHost, NetnsHost];

  // Heal must restore what mDNS needs on A (the multicast route, the bridge port).
  await lab.cut(a);
  await lab.heal(a);

  const receivers = [a, c].map((h) =>
    lab.spawn(h, NODE, ['-e', MCAST_RECEIVER, MCAST_GROUP, String(MCAST_PORT), '5000']),
  );
  await Promise.all(receivers.map((r) => r.waitForLine((l) => l === 'ready', 5_000)));
  // Repeats until the receivers have it; destroy stops it if it is still sending.
  const sender = lab.spawn(b, NODE, ['-e', MCAST_SENDER, MCAST_GROUP, String(MCAST_PORT), '3000']);
  for (const r of receivers) {
    const line = await r.waitForLine((l) => l.startsWith('got ') || l === 'timeout', 5_000);
    t.is(line.split(' from ')[1], b.address, `receiver in ${r.host.name}: ${line}`);
    t.is(await r.exited, 0);
  }
  t.is(sender.stderr(), '');
});

test('destroy stops every process, its children included, and removes every namespace', async (t) => {
  const lab = await labOrFail(t, 2);
  if (lab === undefined) return;
  const [a, b] = lab.hosts as [NetnsHost, NetnsHost];

  const plain = lab.spawn(a, NODE, ['-e', ECHO_SERVER]);
  // Ignores SIGTERM, so destroy must escalate to SIGKILL.
  const stubborn = lab.spawn(b, NODE, [
    '-e',
    `process.on('SIGTERM', () => {}); setInterval(() => {}, 1000); console.log('ready');`,
  ]);
  // Starts a child of its own that destroy never spawned: it must still go.
  const parent = lab.spawn(b, NODE, [
    '-e',
    `const c = require('node:child_process').spawn('sleep', ['60'], { stdio: 'ignore' });
     console.log('child ' + c.pid); setInterval(() => {}, 1000);`,
  ]);
  await plain.waitForLine((l) => l === 'ready', 5_000);
  await stubborn.waitForLine((l) => l === 'ready', 5_000);
  const grandchild = Number((await parent.waitForLine((l) => l.startsWith('child '), 5_000)).slice(6));
  // Stopped, so destroy must SIGCONT it before SIGTERM can act.
  process.kill(plain.pid, 'SIGSTOP');

  const startedMs = Date.now();
  await lab.destroy();
  t.log(`destroy took ${Date.now() - startedMs} ms`);
  await lab.destroy(); // idempotent

  for (const pid of [plain.pid, stubborn.pid, parent.pid, grandchild])
    t.true(gone(pid), `pid ${pid} is still alive`);
  const namespaces = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 5_000 });
  t.false(namespaces.includes(lab.prefix), namespaces);
  const links = execFileSync('ip', ['link', 'show'], { encoding: 'utf8', timeout: 5_000 });
  t.false(links.includes(lab.prefix), links);
  t.throws(() => lab.spawn(a, NODE, ['-e', '']), { message: /destroyed/ });
});
