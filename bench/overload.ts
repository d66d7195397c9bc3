/**
 * A normal client's service while hostile or slow clients load the server (issue 13).
 *
 * One pagelife process (real sockets, `--cache-pages` 16384 = a 64 MiB page cache) serves a 64 MiB
 * file; it runs as `npm start` runs it, from the bundle `npm run build` makes (built first). The
 * normal client is libnfs's nfs-cat (../shared/bench/nfs-read-bench, a separate process) reading the
 * whole file; beside it a thread of this process (lib/probe-worker.ts, apart from the loads' event
 * loop) pings NULL over its own connection and polls GET /api/state, and this one samples the
 * server's RSS (/proc/PID/status VmRSS). First unloaded, then under each load in turn, each load
 * stopped (its connections closed) before the next; each load's
 * ratio is to an unloaded measurement taken just before it:
 *
 *   greedy     one connection pipelining 1 MiB READs and never reading its socket
 *   slowloris  300 connections each sending most of a 2 MB record and stopping (with --reconnect,
 *              each reconnects 1 s after the server closes it: a flood of partial records)
 *   tiny       8 connections sending a 900 kB record in 16-byte writes, Nagle off
 *   idle       1,000 connections that send nothing
 *
 * Output (machine-readable lines; everything else starts with '#'):
 *   overload <load> read_mib_s <v> ratio <v vs unloaded> null_ms p50|p99|max <v> state_ms p50|max <v> build p50|max <v>
 *            rss_mib start|peak|after <v> heap_mib <used/total> peak <total>
 *            null_p99_ms reading|rest <p99/samples> state_max_ms reading|rest <max/samples>
 *            array_buffers_mib <v> peak <v> malloc_heap_mib <v> reclaims <n> load <what the load achieved>
 *   (`reading`: probes sent while the normal client was reading, `rest`: the others;
 *   rss `after`: the reclaimer's quiet time (`memoryReclaim.quietMs`) + 3.5 s after the load's connections
 *   closed, 3 s after an unloaded read; heap, array buffers, glibc's main heap
 *   (the RSS of the `[heap]` mapping) and the server's prompted collections so far at the same time;
 *   state `build`: what building and serializing the snapshot cost the server, its Server-Timing)
 *   target <load> ratio>=0.80 <ok|MISS> null_p99<20ms <ok|MISS> state_max<100ms <ok|MISS> rss_peak<=<bound> <ok|MISS> rss_after<=start+50 <ok|MISS>
 *   (the issue's acceptance figures, each against this run's own measurement)
 *
 * Args: --seconds N (each load runs at least this long, 60), --runs N (nfs-cat runs per phase, 5),
 *       --cache-pages N (16384), --only LIST (e.g. greedy,idle), --reconnect (slowloris reconnects),
 *       --mmap-threshold BYTES (the server's glibc malloc serves blocks this large and up with their
 *       own mappings, given back when freed: GLIBC_TUNABLES=glibc.malloc.mmap_threshold),
 *       --trim-threshold BYTES (free memory at the top of its heap past this is given back:
 *       glibc.malloc.trim_threshold; either tunable stops glibc adjusting both by itself),
 *       --cpu-prof DIR (the server under node --cpu-prof: its profile, written when it stops, shows
 *       what held the event loop; see the README's overload paragraph), --node-arg ARG (one more
 *       node option for the server, e.g. --max-semi-space-size=4; repeatable), --server-log FILE (everything
 *       the server wrote, its warnings and e.g. --trace-gc's lines, written to FILE when it stops).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { Worker } from 'node:worker_threads';
import path from 'node:path';
import { authSys, encodeCallHeader, recordMark } from '../rpc/index.ts';
import { XdrWriter } from '../xdr/writer.ts';
import { NFSPROC3 } from '../server/nfs3/constants.ts';
import { MEMORY_RECLAIM_DEFAULTS } from '../server/memory-reclaim.ts';
import { NfsTestClient, NFS_PROG, nfsArgs } from '../test/support/nfs-client.ts';
import { startServer, type ServerProcess } from '../test/support/server-process.ts';
import { BenchUsageError } from './index.ts';
import { positiveInt, REPO, startEntry, writeRandomFile } from './lib/harness.ts';
import type { ProbeConfig, ProbeResults } from './lib/probe-worker.ts';

const NFS_READ_BENCH = process.env.PAGELIFE_NFS_READ_BENCH ?? path.resolve(REPO, '../shared/bench/nfs-read-bench');
const FILE_MIB = 64;
const LOADS = ['greedy', 'slowloris', 'tiny', 'idle'] as const;
type Load = (typeof LOADS)[number];

interface Options {
  seconds: number;
  runs: number;
  cachePages: number;
  only: Load[];
  reconnect: boolean;
  mmapThreshold: number | null;
  trimThreshold: number | null;
  cpuProf: string | null;
  nodeArgs: string[];
  sources: boolean;
  serverLog: string | null;
}

function parseOptions(args: string[]): Options {
  const o: Options = { seconds: 60, runs: 5, cachePages: 16384, only: [...LOADS], reconnect: false, mmapThreshold: null, trimThreshold: null, cpuProf: null, nodeArgs: [], sources: false, serverLog: null };
  const int = (flag: string, v: string | undefined): number => positiveInt('overload', flag, v);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--seconds') o.seconds = int(a, args[++i]);
    else if (a === '--runs') o.runs = int(a, args[++i]);
    else if (a === '--cache-pages') o.cachePages = int(a, args[++i]);
    else if (a === '--reconnect') o.reconnect = true;
    else if (a === '--sources') o.sources = true;
    else if (a === '--mmap-threshold') o.mmapThreshold = int(a, args[++i]);
    else if (a === '--trim-threshold') o.trimThreshold = int(a, args[++i]);
    else if (a === '--cpu-prof') o.cpuProf = path.resolve(args[++i] ?? '');
    else if (a === '--node-arg') o.nodeArgs.push(args[++i] ?? '');
    else if (a === '--server-log') o.serverLog = path.resolve(args[++i] ?? '');
    else if (a === '--only') {
      const names = (args[++i] ?? '').split(',').filter(Boolean);
      for (const n of names) if (!(LOADS as readonly string[]).includes(n)) throw new BenchUsageError(`bench overload: --only: unknown load ${n}`);
      o.only = names as Load[];
    } else throw new BenchUsageError(`bench overload: unknown argument ${a} (--seconds N, --runs N, --cache-pages N, --only LIST, --reconnect, --mmap-threshold BYTES, --trim-threshold BYTES, --cpu-prof DIR, --node-arg ARG, --server-log FILE, --sources)`);
  }
  return o;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mib = (bytes: number) => bytes / 2 ** 20;

async function rssBytes(pid: number): Promise<number> {
  const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

/** Resident bytes of glibc's main heap (the brk `[heap]` mapping): freed memory malloc keeps rather than returns. */
async function brkHeapBytes(pid: number): Promise<number> {
  const smaps = await readFile(`/proc/${pid}/smaps`, 'utf8');
  const at = smaps.indexOf('[heap]');
  if (at < 0) return 0;
  const m = /\nRss:\s+(\d+) kB/.exec(smaps.slice(at));
  return m ? Number(m[1]) * 1024 : 0;
}

function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

/**
 * What runs beside the normal client in every phase: NULL pings and /api/state polls on a thread of
 * their own (lib/probe-worker.ts: the load generators share this thread's event loop), RSS samples
 * here.
 */
class Probes {
  peakRss = 0;
  private stopped = false;
  private readonly sampler: Promise<void>;
  private readonly worker: Worker;
  private readonly results: Promise<ProbeResults>;

  constructor(
    private readonly server: ServerProcess,
    nfsPort: number,
  ) {
    const config: ProbeConfig = { nfsPort, httpPort: server.ports.http, nullCall: call(0, NFSPROC3.NULL, Buffer.alloc(0)) };
    // The worker runs TypeScript through tsx, registered in its own thread.
    const boot = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(new URL('./lib/probe-worker.ts', import.meta.url).href)}); })`;
    this.worker = new Worker(boot, { eval: true, workerData: config });
    this.results = new Promise((resolve, reject) => {
      this.worker.once('message', resolve);
      this.worker.once('error', reject);
    });
    this.sampler = (async () => {
      while (!this.stopped) {
        this.peakRss = Math.max(this.peakRss, await rssBytes(this.server.proc.pid!));
        await sleep(100);
      }
    })();
  }

  async stop(): Promise<ProbeResults> {
    this.stopped = true;
    this.worker.postMessage('stop');
    const r = await this.results;
    await this.sampler;
    await this.worker.terminate();
    return r;
  }
}

/** nfs-cat over the whole file `runs` times; the median MiB/s. */
function readThroughput(url: string, runs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(NFS_READ_BENCH, ['--url', url, '--runs', String(runs)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const m = /^read_mib_s ([\d.]+)/m.exec(out);
      if (code !== 0 || !m) reject(new Error(`nfs-read-bench failed (exit ${code}):\n${out}`));
      else resolve(Number(m[1]));
    });
  });
}

/** A running load: what it achieved so far, and how to end it (closing every connection). */
interface LoadHandle {
  describe(): string;
  stop(): Promise<void>;
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' }, () => resolve(s));
    s.once('error', reject);
  });
}

function call(xid: number, proc: number, args: Buffer): Buffer {
  const body = Buffer.concat([...encodeCallHeader(new XdrWriter(), { xid, prog: NFS_PROG, vers: 3, proc, cred: authSys() }).toChunks(), args]);
  return Buffer.concat([recordMark(body.length), body]);
}

/** Pipelines 1 MiB READs over the file for as long as the server takes them; never reads a byte. */
async function greedy(port: number, fh: Buffer): Promise<LoadHandle> {
  const s = await connect(port);
  s.on('error', () => undefined);
  s.pause();
  let sent = 0;
  let stopped = false;
  void (async () => {
    while (!stopped && !s.destroyed) {
      const offset = (sent % FILE_MIB) * 2 ** 20;
      const ok = s.write(call(sent + 1, NFSPROC3.READ, nfsArgs.read(fh, offset, 2 ** 20).toBuffer()));
      sent++;
      if (!ok) await new Promise((r) => s.once('drain', r).once('close', r));
    }
  })();
  return {
    describe: () => `${sent}_reads_sent`,
    async stop() {
      stopped = true;
      s.destroy();
    },
  };
}

/** Connections that each send `prefix` bytes of a record announced as `recordBytes`, in `piece`-byte writes, then stop. */
async function partialRecords(port: number, o: { conns: number; recordBytes: number; prefix: number; piece: number; reconnect: boolean }): Promise<LoadHandle> {
  let stopped = false;
  let closedByServer = 0;
  let bytes = 0;
  const sockets = new Set<net.Socket>();
  const one = async (): Promise<void> => {
    if (stopped) return;
    const s = await connect(port);
    sockets.add(s);
    s.setNoDelay(true);
    s.on('error', () => undefined);
    s.on('close', () => {
      sockets.delete(s);
      if (stopped) return;
      closedByServer++;
      if (o.reconnect) setTimeout(() => void one().catch(() => undefined), 1000);
    });
    const mark = Buffer.alloc(4);
    mark.writeUInt32BE((0x8000_0000 | o.recordBytes) >>> 0);
    s.write(mark);
    const body = Buffer.alloc(o.piece, 0x41);
    for (let at = 0; at < o.prefix && !s.destroyed && !stopped; at += o.piece) {
      if (!s.write(body)) await new Promise((r) => s.once('drain', r).once('close', r));
      bytes += o.piece;
      // Yield so that writes leave as separate segments rather than one coalesced buffer.
      if (o.piece < 1024) await new Promise((r) => setImmediate(r));
    }
  };
  await Promise.all(Array.from({ length: o.conns }, () => one()));
  return {
    describe: () => `${sockets.size}_open_${closedByServer}_closed_by_server_${(bytes / 1e6).toFixed(0)}MB_sent`,
    async stop() {
      stopped = true;
      for (const s of sockets) s.destroy();
    },
  };
}

async function idle(port: number, n: number): Promise<LoadHandle> {
  const sockets: net.Socket[] = [];
  for (let i = 0; i < n; i++) {
    const s = await connect(port);
    s.on('error', () => undefined);
    sockets.push(s);
  }
  return {
    describe: () => `${sockets.filter((s) => !s.destroyed).length}_open`,
    async stop() {
      for (const s of sockets) s.destroy();
    },
  };
}

export async function run(args: string[]): Promise<void> {
  const o = parseOptions(args);
  const dir = await mkdtemp(path.join(tmpdir(), 'pagelife-overload-'));
  const say = (l: string) => process.stdout.write(`${l}\n`);
  let server: ServerProcess | null = null;
  let nfs: NfsTestClient | null = null;
  try {
    await writeRandomFile(path.join(dir, 'big.bin'), FILE_MIB);
    const tunables = [...(o.mmapThreshold === null ? [] : [`glibc.malloc.mmap_threshold=${o.mmapThreshold}`]), ...(o.trimThreshold === null ? [] : [`glibc.malloc.trim_threshold=${o.trimThreshold}`])].join(':');
    const env = tunables ? { GLIBC_TUNABLES: tunables } : {};
    const nodeArgs = [...o.nodeArgs, ...(o.cpuProf === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${o.cpuProf}`])];
    server = await startServer(['--export', dir, '--cache-pages', String(o.cachePages), '--log-level', 'warn'], { env, nodeArgs, ...(o.sources ? {} : { entry: startEntry() }) });
    const { nfs: nfsPort, mount } = server.ports;
    const url = `nfs://127.0.0.1/export/big.bin?version=3&nfsport=${nfsPort}&mountport=${mount}`;
    nfs = await NfsTestClient.connect({ nfsPort, mountPort: mount });
    const fh = await nfs.lookup('big.bin');
    say(`# overload bench: ${FILE_MIB} MiB file, --cache-pages ${o.cachePages}, nfs-cat --runs ${o.runs} per phase, each load >= ${o.seconds} s; server ${o.sources ? 'bin/pagelife.js (sources, tsx)' : 'build/pagelife.mjs (npm start)'}; node ${process.version}${tunables ? `; server GLIBC_TUNABLES=${tunables}` : ''}`);
    // Warm the page cache and the client path once, uncounted.
    await readThroughput(url, 1);

    const phase = async (name: string, unloaded: number | null, start?: () => Promise<LoadHandle>): Promise<number> => {
      await sleep(1000);
      const rssStart = await rssBytes(server!.proc.pid!);
      const probes = new Probes(server!, nfsPort);
      const began = Date.now();
      const load = start ? await start() : null;
      // The normal client is measured once the load is in its steady state (a non-reader has filled
      // its queue and been paused); the probes run from the start and see the transient too.
      if (load) await sleep(3000);
      const readFrom = Date.now();
      const mibs = await readThroughput(url, o.runs);
      const readTo = Date.now();
      const left = o.seconds * 1000 - (Date.now() - began);
      if (load && left > 0) await sleep(left);
      const achieved = load?.describe() ?? '-';
      await load?.stop();
      const p = await probes.stop();
      // What stays once the load is gone: the connections closed, the server's reclaimer given its
      // quiet time and a check to collect, and a few seconds for the freed memory to go back.
      await sleep(load ? MEMORY_RECLAIM_DEFAULTS.quietMs + MEMORY_RECLAIM_DEFAULTS.checkMs + 3000 : 3000);
      const rssAfter = await rssBytes(server!.proc.pid!);
      const brkAfter = await brkHeapBytes(server!.proc.pid!);
      const st0 = ((await fetch(`http://127.0.0.1:${server!.ports.http}/api/state`).then((r) => r.json())) as { server: { memory: NodeJS.MemoryUsage; memoryReclaim: { reclaims: number } } }).server;
      const mem = st0.memory;
      // The probes sent while the normal client was reading, and the rest of the phase: which of
      // the two the slow answers fall in (quantile q, and how many samples).
      const split = (ms: number[], at: number[], reading: boolean, q = 0.99): string => {
        const xs = ms.filter((_, i) => (at[i]! >= readFrom && at[i]! <= readTo) === reading);
        return `${quantile(xs, q).toFixed(1)}/${xs.length}`;
      };
      const ratio = unloaded === null ? 1 : mibs / unloaded;
      const n = p.nullMs;
      const st = p.stateMs;
      say(
        `overload ${name} read_mib_s ${mibs.toFixed(1)} ratio ${ratio.toFixed(2)} null_ms p50 ${quantile(n, 0.5).toFixed(1)} p99 ${quantile(n, 0.99).toFixed(1)} max ${Math.max(...n).toFixed(1)}` +
          ` state_ms p50 ${quantile(st, 0.5).toFixed(1)} max ${Math.max(...st).toFixed(1)}` +
          ` build p50 ${quantile(p.stateBuildMs, 0.5).toFixed(1)} max ${Math.max(...p.stateBuildMs).toFixed(1)}` +
          ` rss_mib start ${mib(rssStart).toFixed(0)} peak ${mib(Math.max(probes.peakRss, rssStart)).toFixed(0)} after ${mib(rssAfter).toFixed(0)}` +
          ` heap_mib ${mib(mem.heapUsed).toFixed(0)}/${mib(mem.heapTotal).toFixed(0)} peak ${mib(p.peakHeap).toFixed(0)}` +
          ` null_p99_ms reading ${split(p.nullMs, p.nullAt, true)} rest ${split(p.nullMs, p.nullAt, false)}` +
          ` state_max_ms reading ${split(p.stateMs, p.stateAt, true, 1)} rest ${split(p.stateMs, p.stateAt, false, 1)}` +
          ` array_buffers_mib ${mib(mem.arrayBuffers).toFixed(0)} peak ${mib(p.peakArrayBuffers).toFixed(0)} malloc_heap_mib ${mib(brkAfter).toFixed(0)} reclaims ${st0.memoryReclaim.reclaims} load ${achieved}`,
      );
      if (unloaded !== null) {
        // The issue's bound: 300 MiB with a 64 MiB cache, and no more than a larger cache's excess above it.
        const bound = 300 + Math.max(0, (o.cachePages * 4096) / 2 ** 20 - 64);
        const verdict = (ok: boolean) => (ok ? 'ok' : 'MISS');
        say(
          `target ${name} ratio>=0.80 ${verdict(ratio >= 0.8)} null_p99<20ms ${verdict(quantile(n, 0.99) < 20)} state_max<100ms ${verdict(Math.max(...st) < 100)}` +
            ` rss_peak<=${bound} ${verdict(mib(Math.max(probes.peakRss, rssStart)) <= bound)} rss_after<=start+50 ${verdict(mib(rssAfter) <= mib(rssStart) + 50)}`,
        );
      }
      return mibs;
    };

    const starts: Record<Load, () => Promise<LoadHandle>> = {
      greedy: () => greedy(nfsPort, fh),
      slowloris: () => partialRecords(nfsPort, { conns: 300, recordBytes: 2_000_000, prefix: 1_900_000, piece: 65536, reconnect: o.reconnect }),
      tiny: () => partialRecords(nfsPort, { conns: 8, recordBytes: 900_000, prefix: 880_000, piece: 16, reconnect: false }),
      idle: () => idle(nfsPort, 1000),
    };
    // Each load right after an unloaded measurement of its own: the machine's drift hits both alike.
    for (const load of o.only) await phase(load, await phase(`unloaded-${load}`, null), starts[load]);
    const m = await fetch(`http://127.0.0.1:${server.ports.http}/metrics`).then((r) => r.text());
    for (const line of m.split('\n')) if (/^pagelife_(limit|rpc_connections_closed|rpc_stream|reply_pin_orphans|skb_frag_orphans|memory_reclaim)/.test(line)) say(`# ${line}`);
  } finally {
    await nfs?.rpc.close();
    await server?.stop();
    if (server && o.serverLog !== null) await writeFile(o.serverLog, server.output());
    await rm(dir, { recursive: true, force: true });
  }
}
