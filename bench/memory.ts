/**
 * What a pagelife server costs in memory: RSS idle, after an independent client (libnfs nfs-cat) read
 * a file, and with N idle connections that each made one call (so each has its full per-connection
 * state: record decoder, reply conduit, simulated TCP pair). RSS is the kernel's VmRSS of the server
 * process. The page cache's pool is reserved at start but becomes resident only as its frames are
 * first filled, so the read shows up to the cache's size in the second figure.
 *
 * Output (machine-readable lines; everything else starts with '#'):
 *   rss_mib idle <v> · rss_mib after_read <v> · rss_mib idle_connections <v>
 *   per_connection_kib <v>
 *
 * Args: --size MiB (file read, 256), --connections N (1000), --cache-pages N (server default).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BenchUsageError } from './index.ts';
import { Processes, REPO, say, sleep, startEntry, startPagelife, positiveInt, writeRandomFile } from './lib/harness.ts';

interface Options {
  sizeMiB: number;
  connections: number;
  cachePages: number | null;
}

function parseOptions(args: string[]): Options {
  const o: Options = { sizeMiB: 256, connections: 1000, cachePages: null };
  const int = (flag: string, v: string | undefined): number => positiveInt('memory', flag, v);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--size') o.sizeMiB = int(a, args[++i]);
    else if (a === '--connections') o.connections = int(a, args[++i]);
    else if (a === '--cache-pages') o.cachePages = int(a, args[++i]);
    else throw new BenchUsageError(`bench memory: unknown argument ${a} (--size MiB, --connections N, --cache-pages N)`);
  }
  return o;
}

/** The process's resident set, MiB, as the kernel counts it. */
function rssMiB(pid: number): number {
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (kib === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kib) / 1024;
}

/** RSS once it stops falling (a GC may still be returning memory), sampled over about a second. */
async function settledRss(pid: number): Promise<number> {
  let best = rssMiB(pid);
  for (let i = 0; i < 10; i++) {
    await sleep(100);
    best = Math.min(best, rssMiB(pid));
  }
  return best;
}

/** An RPC NULL call to NFS (program 100003 v3) as one record-marked TCP record. */
function nullCall(xid: number): Buffer {
  const b = Buffer.alloc(4 + 40);
  b.writeUInt32BE((0x80000000 | 40) >>> 0, 0);
  [xid, 0, 2, 100003, 3, 0, 0, 0, 0, 0].forEach((v, i) => b.writeUInt32BE(v, 4 + i * 4));
  return b;
}

/** N connections, each answered once (its state built), then left idle and open. */
async function idleConnections(port: number, n: number): Promise<Socket[]> {
  const socks: Socket[] = [];
  for (let i = 0; i < n; i++) {
    const s = connect({ port, host: '127.0.0.1' });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.once('connect', () => s.write(nullCall(i + 1)));
      s.once('data', () => resolve());
    });
    socks.push(s);
  }
  return socks;
}

function nfsCat(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('nfs-cat', [url], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`nfs-cat ${url} exited ${code}: ${err}`))));
  });
}

export async function run(args: string[]): Promise<void> {
  const o = parseOptions(args);
  const procs = new Processes();
  const base = await mkdtemp(path.join(tmpdir(), 'pagelife-bench-memory-'));
  let socks: Socket[] = [];
  try {
    const exportDir = path.join(base, 'export');
    await mkdir(exportDir);
    await writeRandomFile(path.join(exportDir, 'big.bin'), o.sizeMiB);
    const p = await startPagelife(procs, 'pagelife', ['--export', exportDir, '--var-dir', path.join(base, 'var'), ...(o.cachePages ? ['--cache-pages', String(o.cachePages)] : [])], [], REPO, startEntry());
    const pid = p.child.pid!;
    say(`# memory: pagelife ${o.cachePages ? `--cache-pages ${o.cachePages}` : 'default page cache'}, ${o.sizeMiB} MiB read with nfs-cat, ${o.connections} idle connections; node ${process.version}`);
    const idle = await settledRss(pid);
    say(`rss_mib idle ${idle.toFixed(1)}`);
    await nfsCat(`nfs://127.0.0.1/export/big.bin?version=3&nfsport=${p.nfsPort}&mountport=${p.mountPort}`);
    const afterRead = await settledRss(pid);
    say(`rss_mib after_read ${afterRead.toFixed(1)}`);
    socks = await idleConnections(p.nfsPort, o.connections);
    const withConns = await settledRss(pid);
    say(`rss_mib idle_connections ${withConns.toFixed(1)}`);
    say(`per_connection_kib ${(((withConns - afterRead) * 1024) / o.connections).toFixed(1)}`);
  } finally {
    for (const s of socks) s.destroy();
    await procs.stopAll();
    await rm(base, { recursive: true, force: true });
  }
}
