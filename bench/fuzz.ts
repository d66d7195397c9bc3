/**
 * Memory under a long stream of random and mutated RPC records (issue 13, acceptance 2).
 *
 * One pagelife process (real sockets; the bundle `npm start` runs) gets `--records` records (1,000,000), split between TCP and
 * UDP: well-formed NFS calls (NULL, GETATTR, LOOKUP, ACCESS, READ, READDIR, FSINFO) mutated at random
 * (bytes flipped, length words set to extremes, truncated, extended, replaced by noise), and on
 * TCP now and then a bad record mark (the server closes that connection; the bench reconnects).
 * After every batch a NULL must answer within 10 s over the same transport, or the run counts a
 * hang; the server's exit is a crash. The server's RSS (/proc/PID/status VmRSS) is sampled after
 * each batch.
 *
 * Output (machine-readable lines; everything else starts with '#'):
 *   fuzz records <n> tcp <n> udp <n> reconnects <n> crashes <0|1> hangs <n> records_per_s <v>
 *   fuzz rss_mib start <v> at_100k <v> end <v> max <v> growth_after_100k <v>
 *
 * Args: --records N (1000000), --seed N (1).
 */
import dgram from 'node:dgram';
import { randomFillSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RecordDecoder, authSys, encodeCallHeader, recordMark } from '../rpc/index.ts';
import { NFSPROC3 } from '../server/nfs3/constants.ts';
import { XdrWriter } from '../xdr/writer.ts';
import { NfsTestClient, NFS_PROG, nfsArgs } from '../test/support/nfs-client.ts';
import { startServer } from '../test/support/server-process.ts';
import { BenchUsageError } from './index.ts';
import { startEntry } from './lib/harness.ts';

const BATCH = 1000;
const NULL_XID = 0x7fff_0000;
const HANG_MS = 10_000;

/** xorshift32: a reproducible stream for a given seed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

function callBody(xid: number, proc: number, args: Buffer): Buffer {
  return Buffer.concat([...encodeCallHeader(new XdrWriter(), { xid, prog: NFS_PROG, vers: 3, proc, cred: authSys({ uid: 1000, gid: 1000 }) }).toChunks(), args]);
}

/** A well-formed call, then (most of the time) mutated. */
function record(r: () => number, xid: number, root: Buffer, fh: Buffer): Buffer {
  const pick = Math.floor(r() * 7);
  const args = [
    () => [NFSPROC3.NULL, Buffer.alloc(0)] as const,
    () => [NFSPROC3.GETATTR, nfsArgs.fh(fh).toBuffer()] as const,
    () => [NFSPROC3.LOOKUP, nfsArgs.dirop(root, 'big.bin').toBuffer()] as const,
    () => [NFSPROC3.ACCESS, nfsArgs.access(fh, 0x3f).toBuffer()] as const,
    () => [NFSPROC3.READ, nfsArgs.read(fh, Math.floor(r() * 256) * 4096, 4096).toBuffer()] as const,
    () => [NFSPROC3.READDIR, nfsArgs.readdir(root, 4096).toBuffer()] as const,
    () => [NFSPROC3.FSINFO, nfsArgs.fh(root).toBuffer()] as const,
  ][pick]!();
  const b = Buffer.from(callBody(xid, args[0], args[1]));
  const m = r();
  if (m < 0.15) return b;
  if (m < 0.45) {
    for (let i = 1 + Math.floor(r() * 4); i > 0; i--) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
    return b;
  }
  if (m < 0.65) {
    const at = Math.floor((r() * b.length) / 4) * 4;
    if (at + 4 <= b.length) b.writeUInt32BE([0xffff_ffff, 0x7fff_ffff, 0x8000_0000, 0, 1 << 20][Math.floor(r() * 5)]!, at);
    return b;
  }
  if (m < 0.8) return b.subarray(0, Math.floor(r() * b.length));
  if (m < 0.9) return Buffer.concat([b, randomFillSync(Buffer.alloc(Math.floor(r() * 512)))]);
  return randomFillSync(Buffer.alloc(Math.floor(r() * 400)));
}

async function rss(pid: number): Promise<number> {
  const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

/** A TCP connection that discards replies but notices the NULL marking the end of a batch. */
class TcpFuzzer {
  private socket: net.Socket | null = null;
  private waiter: (() => void) | null = null;
  reconnects = -1;

  constructor(private readonly port: number) {}

  private async open(): Promise<net.Socket> {
    if (this.socket && !this.socket.destroyed) return this.socket;
    this.reconnects++;
    const s = net.connect({ port: this.port, host: '127.0.0.1' });
    s.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
    const dec = new RecordDecoder(4 << 20);
    s.on('data', (c: Buffer) => {
      for (const rec of dec.push(c)) if (rec.length >= 4 && rec.readUInt32BE(0) === NULL_XID) this.waiter?.();
    });
    s.on('close', () => this.waiter?.());
    this.socket = s;
    return s;
  }

  /** Sends a batch; resolves true once the trailing NULL is answered, or the server closed the connection. */
  async batch(records: Buffer[], badMark: boolean): Promise<'ok' | 'closed' | 'hang'> {
    const s = await this.open();
    for (const b of records) s.write(Buffer.concat([recordMark(b.length), b]));
    if (badMark) s.write(Buffer.from([0x7f, 0xff, 0xff, 0xff]));
    const nul = callBody(NULL_XID, NFSPROC3.NULL, Buffer.alloc(0));
    s.write(Buffer.concat([recordMark(nul.length), nul]));
    const outcome = await new Promise<'ok' | 'closed' | 'hang'>((resolve) => {
      const t = setTimeout(() => resolve('hang'), HANG_MS);
      this.waiter = () => {
        clearTimeout(t);
        resolve(s.destroyed ? 'closed' : 'ok');
      };
    });
    this.waiter = null;
    return outcome;
  }

  close(): void {
    this.socket?.destroy();
  }
}

async function udpBatch(sock: dgram.Socket, port: number, records: Buffer[]): Promise<'ok' | 'hang'> {
  for (const b of records) sock.send(b, port, '127.0.0.1');
  const nul = callBody(NULL_XID, NFSPROC3.NULL, Buffer.alloc(0));
  const deadline = Date.now() + HANG_MS;
  // UDP may drop: retransmit the NULL until it is answered (as a client would).
  while (Date.now() < deadline) {
    const got = new Promise<boolean>((resolve) => {
      const t = setTimeout(() => {
        sock.off('message', on);
        resolve(false);
      }, 500);
      const on = (m: Buffer) => {
        if (m.length >= 4 && m.readUInt32BE(0) === NULL_XID) {
          clearTimeout(t);
          sock.off('message', on);
          resolve(true);
        }
      };
      sock.on('message', on);
    });
    sock.send(nul, port, '127.0.0.1');
    if (await got) return 'ok';
  }
  return 'hang';
}

export async function run(args: string[]): Promise<void> {
  let total = 1_000_000;
  let seed = 1;
  for (let i = 0; i < args.length; i++) {
    const v = Number(args[i + 1]);
    if (args[i] === '--records' && Number.isInteger(v) && v > 0) total = v;
    else if (args[i] === '--seed' && Number.isInteger(v) && v >= 0) seed = v;
    else throw new BenchUsageError(`bench fuzz: bad argument ${args[i]} ${args[i + 1] ?? ''} (--records N, --seed N)`);
    i++;
  }
  const say = (l: string) => process.stdout.write(`${l}\n`);
  const dir = await mkdtemp(path.join(tmpdir(), 'pagelife-fuzz-'));
  await writeFile(path.join(dir, 'big.bin'), randomFillSync(Buffer.alloc(1 << 20)));
  // As `npm start` runs it: the bundle (tsx's loader would add its own memory to the figures).
  const server = await startServer(['--export', dir, '--log-level', 'silent'], { entry: startEntry() });
  const pid = server.proc.pid!;
  const nfs = await NfsTestClient.connect({ nfsPort: server.ports.nfs, mountPort: server.ports.mount });
  const fh = await nfs.lookup('big.bin');
  await nfs.close();
  const tcp = new TcpFuzzer(server.ports.nfs);
  const udp = dgram.createSocket('udp4');
  udp.on('error', () => undefined);
  const r = rng(seed);
  let sent = 0;
  let tcpN = 0;
  let udpN = 0;
  let hangs = 0;
  let crashed = false;
  server.proc.once('exit', () => (crashed = true));
  const start = await rss(pid);
  let at100k = start;
  let max = start;
  const began = Date.now();
  say(`# fuzz: ${total} records, seed ${seed}, batches of ${BATCH} alternating TCP and UDP, node ${process.version}`);
  try {
    for (let b = 0; sent < total && !crashed; b++) {
      const n = Math.min(BATCH, total - sent);
      const records = Array.from({ length: n }, (_, i) => record(r, sent + i + 1, nfs.root, fh));
      const outcome = b % 2 === 0 ? await tcp.batch(records, r() < 0.05) : await udpBatch(udp, server.ports.nfs, records);
      if (outcome === 'hang') hangs++;
      if (b % 2 === 0) tcpN += n;
      else udpN += n;
      sent += n;
      if (crashed) break;
      const now = await rss(pid);
      max = Math.max(max, now);
      if (sent === 100_000 || (sent > 100_000 && at100k === start)) at100k = now;
      if (sent % 100_000 === 0) say(`# ${sent} records, rss ${(now / 2 ** 20).toFixed(0)} MiB`);
    }
    if (crashed) say(`# the server exited:\n${server.output().split('\n').slice(-40).map((l) => `# ${l}`).join('\n')}`);
    const end = crashed ? NaN : await rss(pid);
    const mib = (x: number) => (x / 2 ** 20).toFixed(1);
    say(`fuzz records ${sent} tcp ${tcpN} udp ${udpN} reconnects ${tcp.reconnects} crashes ${crashed ? 1 : 0} hangs ${hangs} records_per_s ${(sent / ((Date.now() - began) / 1000)).toFixed(0)}`);
    say(`fuzz rss_mib start ${mib(start)} at_100k ${mib(at100k)} end ${mib(end)} max ${mib(max)} growth_after_100k ${mib(end - at100k)}`);
  } finally {
    tcp.close();
    udp.close();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
