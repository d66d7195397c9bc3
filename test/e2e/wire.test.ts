// Issue 11: a real Linux guest on pagelife's own Ethernet/IPv4/TCP/UDP stack (`serve --wire`,
// `run-guest --wire-udp`). The guest's kernel is the TCP peer: its ACKs free the pages.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startServer, type ServerProcess } from '../support/server-process.ts';
import { injectBadInput } from '../support/wire-inject.ts';
import { runGuest, type GuestRun } from './guest.ts';
import { dissectionErrors, frameRows, type FrameRow } from './tshark.ts';

const run = promisify(execFile);
const MANY = 2000;
const SIZES: Record<string, number> = { 'empty.bin': 0, 'one.bin': 1, 'small.bin': 4096, 'odd.bin': 123_457, 'mid.bin': 1 << 20, 'big.bin': 64 << 20 };
const WRITES = 'one:1 page:4096 odd:123457 mid:1048576 big:67108864';

let dir: string;
let exp: string;
const md5 = new Map<string, string>();

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-wire-e2e-'));
  exp = path.join(dir, 'export');
  await fs.mkdir(path.join(exp, 'many'), { recursive: true });
  await fs.mkdir(path.join(exp, 'sub'));
  for (const [name, size] of Object.entries(SIZES)) {
    const data = randomBytes(size);
    await fs.writeFile(path.join(exp, name), data);
    md5.set(name, createHash('md5').update(data).digest('hex'));
  }
  for (let i = 0; i < MANY; i++) await fs.writeFile(path.join(exp, 'many', `entry-${String(i).padStart(4, '0')}`), `${i}\n`);
  await fs.writeFile(path.join(exp, 'sub', 'nested.txt'), 'nested file');
});

afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

interface WireState {
  server: {
    pageCache: { pinned: number };
    wire: { framesIn: number; framesOut: number; drops: Record<string, number>; checksumFailures: number; halfOpen: number; connectionsAccepted: number; sockets: { id: number; peer: string; localPort: number; state: string; dupAcksIn: number; retransmits: number }[] };
  };
}

async function state(s: ServerProcess): Promise<WireState> {
  return (await (await fetch(`http://127.0.0.1:${s.ports.http}/api/state`)).json()) as WireState;
}

/** Waits for the guest's NFS connection (to 10.0.3.1:2049) and returns it; throws with the guest's output if it ended first. */
async function nfsConnection(s: ServerProcess, guest: Promise<GuestRun>) {
  let ended: GuestRun | null = null;
  void guest.then((r) => (ended = r));
  for (;;) {
    const c = (await state(s)).server.wire.sockets.find((k) => k.localPort === 2049 && k.state === 'ESTABLISHED');
    if (c) return c;
    if (ended) throw new Error(`the guest ended before an NFS connection was seen:\n${(ended as GuestRun).stdout}\n${(ended as GuestRun).stderr}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The files the guest wrote: the md5 it printed must be what the host now reads. */
async function checkWrites(r: GuestRun): Promise<number> {
  const lines = [...r.stdout.matchAll(/^wire-core: wrote (\S+) ([0-9a-f]{32})$/gm)];
  for (const [, name, sum] of lines) {
    const data = await fs.readFile(path.join(exp, `w-${name}`));
    expect(createHash('md5').update(data).digest('hex'), `w-${name}`).toBe(sum);
  }
  return lines.length;
}

/**
 * The Linux NFS client binds a reserved port, 665–1023 (sunrpc's min_resvport and max_resvport),
 * and tshark tries a TCP connection's lower port first: a client that drew 862 had its NFS stream
 * dissected as TWAMP-Control and called malformed. So every protocol tshark decodes by a TCP port
 * in that range is turned off here (the list from tshark itself: it varies by version).
 */
const CLIENT_PORTS = { min: 665, max: 1023 };
function clientPortDissectors(): string[] {
  const decodes = spawnSync('tshark', ['-G', 'decodes'], { encoding: 'utf8' }).stdout ?? '';
  const names = new Set<string>();
  for (const line of decodes.split('\n')) {
    const [table, port, proto] = line.split('\t');
    if (table === 'tcp.port' && proto && Number(port) >= CLIENT_PORTS.min && Number(port) <= CLIENT_PORTS.max) names.add(proto);
  }
  return [...names];
}

/**
 * Reassemble segments that arrive out of order (loss and reordering make them), as a receiver
 * would. Nothing on this wire speaks TLS: tshark's TLS heuristic otherwise takes a retransmitted
 * segment of random file data that starts like a TLS record for one, and calls it malformed.
 */
const TSHARK_ARGS = ['-o', 'tcp.reassemble_out_of_order:TRUE', ...[...new Set(['tls', ...clientPortDissectors()])].flatMap((p) => ['--disable-protocol', p])];

async function tsharkCount(file: string, filter: string): Promise<number> {
  const { stdout } = await run('tshark', ['-r', file, ...TSHARK_ARGS, '-Y', filter, '-T', 'fields', '-e', 'frame.number'], { maxBuffer: 256 << 20 });
  return stdout.split('\n').filter((l) => l.trim() !== '').length;
}

/** The frames that fail to dissect, each on one line, for the assertion's message. */
const described = (rows: FrameRow[]) => rows.map((r) => `frame ${r.frame} from ${r.src} [${r.protocols.join(':')}] stream ${r.stream} seq ${r.seq} len ${r.len}: ${r.messages.join('; ')}`);

/** Frames sent by pagelife or by the guest's NIC (not by the injecting station). */
const OURS = new Set(['02:00:00:00:00:01', '52:54:00:12:34:56']);

/** Every file, or those up to `max` bytes (the lossy runs: software emulation and 3% loss make 64 MiB slow). */
const expectList = (max = Infinity) => [...md5].filter(([n]) => SIZES[n]! <= max).map(([n, h]) => `${n}:${h}`).join(' ');

describe('real Linux kernel client on the raw wire', () => {
  it('mounts with no port options; ls, md5 0 B–64 MiB, writes 1 B–64 MiB each fsynced, tar — while bad input floods the wire', async () => {
    const pcap = path.join(dir, 'clean.pcapng');
    const server = await startServer(['--export', exp, '--wire', 'udp:0', '--pcap', pcap]);
    try {
      const wirePort = server.ports.wire!;
      const guest = runGuest('wire-core.sh', { nfsPort: 'auto', wireUdp: wirePort, env: { EXPECT: expectList(), MANY, WRITES, ROUNDS: 2 }, timeoutS: 400 });
      const conn = await nfsConnection(server, guest);
      const sent = await injectBadInput(wirePort, {
        guestPort: Number(conn.peer.split(':')[1]),
        capture: async () => Buffer.from(await (await fetch(`http://127.0.0.1:${server.ports.http}/api/wire/pcap`)).arrayBuffer()),
        drops: async (cause) => (await state(server)).server.wire.drops[cause] ?? 0,
      });
      const during = await state(server);
      const r = await guest;
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
      expect(r.stdout).toContain('wire-core: ok');
      expect(await checkWrites(r)).toBe(5);
      const after = await state(server);
      const w = after.server.wire;
      // Every kind of bad input was dropped and counted; the guest's connection was never reset.
      // A flood loses some datagrams in the kernel's socket buffer before pagelife reads them: at most what was sent, most of it.
      const counted = (cause: string, n: number) => {
        expect(w.drops[cause] ?? 0, cause).toBeLessThanOrEqual(n);
        expect(w.drops[cause] ?? 0, cause).toBeGreaterThan(n / 2);
      };
      counted('eth-truncated', sent['truncated-ethernet']!);
      counted('ip-truncated', sent['truncated-ip']!);
      counted('tcp-truncated', sent['truncated-tcp']!);
      counted('ip-checksum', sent['bad-ip-checksum']!);
      counted('tcp-checksum', sent['bad-tcp-checksum']!);
      counted('ip-options', sent['ip-options']!);
      // Paced by the server's own count (one instance at a time), these are exact: every pair of
      // overlapping fragments drops its datagram once, every segment after the FIN is dropped.
      expect(w.drops['frag-overlap']).toBe(sent['overlapping-fragments']);
      expect(w.drops['tcp-data-after-fin']).toBe(sent['data-after-fin']);
      expect(w.drops['frag-queues']).toBeGreaterThan(sent['endless-fragments']! / 2);
      expect(w.drops['tcp-syn-queue-full']).toBeGreaterThan(sent['syn-flood']! / 2);
      expect(during.server.wire.halfOpen).toBeLessThanOrEqual(128);
      const spoofed = sent['out-of-window']! + sent['rst-wrong-seq']! + sent['syn-on-connection']!;
      const refused = ['tcp-out-of-window', 'tcp-bad-rst', 'tcp-syn-in-window', 'tcp-ack-unsent', 'tcp-ack-too-old'].reduce((n, k) => n + (w.drops[k] ?? 0), 0);
      expect(refused).toBeGreaterThan(spoofed / 2);
      // The guest's NFS connection outlived the injection (a reset would have made it reconnect).
      expect(during.server.wire.sockets.find((k) => k.id === conn.id)?.state).toBe('ESTABLISHED');
      expect(w.checksumFailures).toBe(w.drops['ip-checksum']! + w.drops['tcp-checksum']!);
      // The guest unmounted: every pin is back.
      expect(after.server.pageCache.pinned).toBe(0);
      console.log(`wire clean run: frames in ${w.framesIn} out ${w.framesOut}; drops ${JSON.stringify(w.drops)}; ${r.stdout.match(/guest tcp .*/)?.[0]}`);
    } finally {
      await server.stop();
    }
    // The capture holds every frame in, the injected garbage too: pagelife's frames and the guest's
    // must all dissect cleanly. One pass over a capture of hundreds of MB answers all four questions.
    const rows = await frameRows(pcap, '_ws.expert.severity == error || nfs || portmap', TSHARK_ARGS);
    expect(described(await dissectionErrors(pcap, rows.filter((r) => OURS.has(r.src)), TSHARK_ARGS))).toEqual([]);
    expect(rows.filter((r) => r.messages.some((m) => m.startsWith('Malformed Packet'))).length).toBeGreaterThan(0);
    expect(rows.filter((r) => r.protocols.includes('nfs')).length).toBeGreaterThan(100);
    expect(rows.filter((r) => r.protocols.includes('portmap')).length).toBeGreaterThan(0);
  });

  for (const mode of ['destructor', 'copy'] as const) {
    it(`${mode} mode with 3% loss each way and 5% reordering: the same md5s (mountproto=udp); dup ACKs and retransmissions in the pcap; pins back to 0`, async () => {
      const pcap = path.join(dir, `${mode}.pcapng`);
      const server = await startServer(['--export', exp, '--wire', 'udp:0', '--pcap', pcap, '--reply-mode', mode, '--loss', '0.03', '--reorder', '0.05', '--seed', '11']);
      try {
        const r = await runGuest('wire-core.sh', { nfsPort: 'auto', opts: 'mountproto=udp', wireUdp: server.ports.wire!, env: { EXPECT: expectList(1 << 20), MANY, WRITES: 'odd:123457 mid:1048576', TAR: 0 }, timeoutS: 400 });
        expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
        expect(r.stdout).toMatch(/mountproto=udp/);
        await checkWrites(r);
        const after = await state(server);
        expect(after.server.pageCache.pinned).toBe(0);
        expect(after.server.wire.drops['fault-loss']).toBeGreaterThan(0);
        console.log(`wire ${mode} lossy run: drops ${JSON.stringify(after.server.wire.drops)}; ${r.stdout.match(/guest tcp .*/)?.[0]}`);
      } finally {
        await server.stop();
      }
      const errors = await dissectionErrors(pcap, await frameRows(pcap, '_ws.expert.severity == error', TSHARK_ARGS), TSHARK_ARGS);
      expect(described(errors)).toEqual([]);
      const dupAcks = await tsharkCount(pcap, 'tcp.analysis.duplicate_ack && ip.src == 10.0.3.15');
      const retrans = await tsharkCount(pcap, '(tcp.analysis.retransmission || tcp.analysis.fast_retransmission) && ip.src == 10.0.3.1');
      console.log(`wire ${mode} pcap: ${dupAcks} duplicate ACKs from the guest, ${retrans} retransmissions from pagelife`);
      expect(dupAcks).toBeGreaterThan(0);
      expect(retrans).toBeGreaterThan(0);
    });
  }
});
