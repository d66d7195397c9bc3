/**
 * Sequential READ throughput over loopback, measured with an independent client (libnfs's
 * nfs-cat, driven by ../shared/bench/nfs-read-bench), of pagelife in each reply mode
 * (destructor, legacy, copy) and of nfs-ganesha (the reference peer) serving the same file.
 *
 * All servers are started once and measured in rounds, alternating (the order rotates every
 * round so that drift on a shared machine hits them alike); each round is one nfs-read-bench
 * invocation per server (its first, uncounted nfs-cat warms the page cache), and a server's
 * figure is the median of its round medians.
 *
 * Output (machine-readable lines; everything else starts with '#'):
 *   read_mib_s <destructor|legacy|copy|ganesha> <median MiB/s>
 *   ratio destructor/copy <v>, ratio destructor/legacy <v>, ratio destructor/ganesha <v>
 *   pin_ms count|mean|p50|p90|p99 <v>   pin durations of the destructor server's READ replies
 *   pin_ms_bucket <le ms|+Inf> <n>      (GET /api/state pinDuration; quantiles interpolated in buckets)
 *
 * Args: --size MiB (256), --rounds N (5), --runs N (per nfs-read-bench invocation, 3),
 *       --skip-ganesha, --cache-pages N (default: the file plus 25%), --only LIST (e.g. destructor,copy),
 *       --cpu-prof DIR (destructor server under node --cpu-prof; summary of its measured windows printed).
 * Everything started here (servers, rpcbind if it was not running, the temp dir) is stopped or
 * removed at the end, on failure too.
 */
import type { ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BenchUsageError } from './index.ts';
import { median, Processes, REPO, say, sourcesEntry, startEntry, startGanesha, startPagelife, positiveInt } from './lib/harness.ts';

const NFS_READ_BENCH = process.env.PAGELIFE_NFS_READ_BENCH ?? path.resolve(REPO, '../shared/bench/nfs-read-bench');
const FILE_NAME = 'big.bin';
const PAGE = 4096;
const MODES = ['destructor', 'legacy', 'copy'] as const;
type Mode = (typeof MODES)[number];
type ServerName = Mode | 'ganesha';

interface Options {
  sizeMiB: number;
  rounds: number;
  runs: number;
  skipGanesha: boolean;
  cachePages: number;
  only: ServerName[] | null;
  cpuProf: string | null;
}

function parseOptions(args: string[]): Options {
  const o: Options = { sizeMiB: 256, rounds: 5, runs: 3, skipGanesha: false, cachePages: 0, only: null, cpuProf: null };
  const int = (flag: string, v: string | undefined): number => positiveInt('read', flag, v);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    switch (a) {
      case '--size':
        o.sizeMiB = int(a, args[++i]);
        break;
      case '--rounds':
        o.rounds = int(a, args[++i]);
        break;
      case '--runs':
        o.runs = int(a, args[++i]);
        break;
      case '--cache-pages':
        o.cachePages = int(a, args[++i]);
        break;
      case '--skip-ganesha':
        o.skipGanesha = true;
        break;
      case '--only': {
        const names = (args[++i] ?? '').split(',').filter(Boolean);
        for (const n of names) if (n !== 'ganesha' && !(MODES as readonly string[]).includes(n)) throw new BenchUsageError(`bench read: --only: unknown server ${n}`);
        o.only = names as ServerName[];
        break;
      }
      case '--cpu-prof':
        o.cpuProf = path.resolve(args[++i] ?? '');
        break;
      default:
        throw new BenchUsageError(`bench read: unknown argument ${a} (--size MiB, --rounds N, --runs N, --skip-ganesha, --cache-pages N, --only LIST, --cpu-prof DIR)`);
    }
  }
  // The whole file in the cache, and a quarter more (pinned pages, the next READ's fill).
  if (o.cachePages === 0) o.cachePages = Math.ceil((o.sizeMiB * 1.25 * 1024 * 1024) / PAGE);
  return o;
}

interface Target {
  name: ServerName;
  url: string;
  http?: number;
  child: ChildProcess;
}

async function writeTestFile(file: string, sizeMiB: number): Promise<void> {
  const fh = await open(file, 'w');
  try {
    const chunk = Buffer.alloc(4 * 1024 * 1024);
    for (let left = sizeMiB * 1024 * 1024; left > 0; left -= chunk.length) {
      const n = Math.min(left, chunk.length);
      randomFillSync(chunk, 0, n);
      await fh.write(chunk, 0, n);
    }
  } finally {
    await fh.close();
  }
}

async function startMode(procs: Processes, mode: Mode, exportDir: string, o: Options, entry: string): Promise<Target> {
  const node = mode === 'destructor' && o.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${o.cpuProf}`] : [];
  const p = await startPagelife(procs, mode, ['--export', exportDir, '--reply-mode', mode, '--cache-pages', String(o.cachePages)], node, REPO, entry);
  return { name: mode, child: p.child, http: p.httpPort, url: `nfs://127.0.0.1/export/${FILE_NAME}?version=3&nfsport=${p.nfsPort}&mountport=${p.mountPort}` };
}

/** One nfs-read-bench invocation (a process group of its own, so a stop ends its nfs-cat too); its median MiB/s. */
function readBench(procs: Processes, url: string, runs: number): Promise<{ median: number; line: string }> {
  return new Promise((resolve, reject) => {
    let out = '';
    const child = procs.start('nfs-read-bench', NFS_READ_BENCH, ['--url', url, '--runs', String(runs)], (l) => (out += `${l}\n`), true);
    child.once('error', reject);
    child.once('exit', (code) => {
      void procs.stop(child);
      const m = /^read_mib_s ([\d.]+) .*$/m.exec(out);
      if (code !== 0 || !m) reject(new Error(`nfs-read-bench ${url} failed (exit ${code}):\n${out}`));
      else resolve({ median: Number(m[1]), line: m[0] });
    });
  });
}

interface HistogramSnapshot {
  bounds: number[];
  counts: number[];
  sum: number;
  count: number;
}

/** The q-quantile of a bucketed histogram, linear within the bucket (the +Inf bucket answers its lower bound). */
function quantile(h: HistogramSnapshot, q: number): number {
  const want = q * h.count;
  let cum = 0;
  for (let i = 0; i < h.counts.length; i++) {
    const c = h.counts[i]!;
    if (c > 0 && cum + c >= want) {
      const lo = i === 0 ? 0 : h.bounds[i - 1]!;
      const hi = h.bounds[i];
      return hi === undefined ? lo : lo + ((hi - lo) * (want - cum)) / c;
    }
    cum += c;
  }
  return NaN;
}

async function printPins(http: number): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${http}/api/state`);
  const st = (await res.json()) as { pinDuration: HistogramSnapshot; counters: Record<string, unknown> };
  const h = st.pinDuration;
  say('# pin durations of the destructor server (READ reply pinned → pages back in the cache), all rounds incl. warm-up reads; ms');
  say(`pin_ms count ${h.count}`);
  if (h.count > 0) {
    say(`pin_ms mean ${(h.sum / h.count).toFixed(3)}`);
    for (const q of [0.5, 0.9, 0.99]) say(`pin_ms p${Math.round(q * 100)} ${quantile(h, q).toFixed(3)}`);
  }
  h.counts.forEach((c, i) => say(`pin_ms_bucket ${h.bounds[i] ?? '+Inf'} ${c}`));
  const c = st.counters;
  say(`# destructor counters: ${['replyPins', 'replyReleases', 'destructorFires', 'transmits', 'retransmits', 'staleRetransmits', 'pinOrphans'].map((k) => `${k}=${String(c[k])}`).join(' ')}`);
}

/** Self time by file and function of the samples inside `windows` (process.hrtime, ns); printed as comments. */
async function summariseProfile(dir: string, windows: [bigint, bigint][]): Promise<void> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
  interface Node {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
  }
  type Profile = { nodes: Node[]; samples: number[]; timeDeltas: number[]; startTime: number };
  // Self time (µs) by file and function inside the windows; of every profile written (the main
  // thread's and tsx's loader worker's), the one busiest there is the server's.
  let best: { file: string; busy: number; total: number; byFn: Map<string, number>; byFile: Map<string, number> } | null = null;
  for (const f of files) {
    const p = JSON.parse(await readFile(path.join(dir, f), 'utf8')) as Profile;
    const nodes = new Map(p.nodes.map((n) => [n.id, n]));
    const byFn = new Map<string, number>();
    const byFile = new Map<string, number>();
    let t = p.startTime; // µs, the same monotonic clock as process.hrtime
    let total = 0;
    let idle = 0;
    for (let i = 0; i < p.samples.length; i++) {
      const d = p.timeDeltas[i] ?? 0;
      t += d;
      const ns = BigInt(Math.round(t)) * 1000n;
      if (!windows.some(([a, b]) => ns >= a && ns <= b)) continue;
      const cf = nodes.get(p.samples[i]!)!.callFrame;
      const file = cf.url.replace(`file://${REPO}/`, '').replace(/^.*node_modules\//, '') || cf.functionName;
      const fn = `${cf.functionName || '(anonymous)'} ${cf.url ? `${file}:${cf.lineNumber + 1}` : ''}`;
      byFn.set(fn, (byFn.get(fn) ?? 0) + d);
      byFile.set(file, (byFile.get(file) ?? 0) + d);
      total += d;
      if (cf.functionName === '(idle)') idle += d;
    }
    if (!best || total - idle > best.busy) best = { file: f, busy: total - idle, total, byFn, byFile };
  }
  if (!best) return say(`# cpu profile: none written to ${dir}`);
  const { total, byFn, byFile } = best;
  say(`# cpu profile ${path.join(dir, best.file)}: ${(total / 1e6).toFixed(2)} s of samples inside the destructor server's measured windows`);
  for (const [title, m] of [['file', byFile], ['function', byFn]] as const) {
    say(`# self time by ${title}:`);
    for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, title === 'file' ? 15 : 25)) say(`#   ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
  }
}

export async function run(args: string[]): Promise<void> {
  const o = parseOptions(args);
  if (!existsSync(NFS_READ_BENCH)) throw new Error(`bench read: ${NFS_READ_BENCH} not found (PAGELIFE_NFS_READ_BENCH overrides)`);
  const procs = new Processes();
  const dir = await mkdtemp(path.join(tmpdir(), 'pagelife-bench-read-'));
  // One cleanup, awaited by whoever gets there: the run's end (or failure) and a signal.
  let cleaning: Promise<void> | null = null;
  const cleanup = (): Promise<void> =>
    (cleaning ??= (async () => {
      await procs.stopAll();
      await rm(dir, { recursive: true, force: true });
    })());
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    interrupted = true;
    say(`# ${sig}: stopping what the bench started`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const exportDir = path.join(dir, 'export');
    await mkdir(exportDir);
    await writeTestFile(path.join(exportDir, FILE_NAME), o.sizeMiB);
    const want = (n: ServerName): boolean => o.only === null || o.only.includes(n);
    say(`# read bench: ${o.sizeMiB} MiB file, ${o.rounds} rounds alternating servers, nfs-read-bench --runs ${o.runs} per round (median per server of round medians)`);
    say(`# pagelife: --cache-pages ${o.cachePages} (${((o.cachePages * PAGE) / 2 ** 20).toFixed(0)} MiB page cache; the file fits), node ${process.version}, ${path.basename(NFS_READ_BENCH)} (libnfs nfs-cat)`);
    // As `npm start` runs it (the bundle), but from the sources under a profiler, whose summary charges time by file.
    const entry = o.cpuProf ? sourcesEntry() : startEntry();
    say(`# pagelife entry: ${path.relative(REPO, entry)}`);
    const targets: Target[] = [];
    for (const mode of MODES) if (want(mode)) targets.push(await startMode(procs, mode, exportDir, o, entry));
    if (o.skipGanesha) say('# ganesha: skipped (--skip-ganesha)');
    else if (want('ganesha')) {
      const g = await startGanesha(procs, dir, exportDir);
      if (g) targets.push({ name: 'ganesha', child: g.child, url: `nfs://127.0.0.1${exportDir}/${FILE_NAME}?version=3&nfsport=${g.nfsPort}&mountport=${g.mountPort}` });
    }
    const results = new Map<ServerName, number[]>(targets.map((t) => [t.name, []]));
    const windows: [bigint, bigint][] = [];
    for (let r = 0; r < o.rounds; r++) {
      const order = targets.map((_, i) => targets[(i + r) % targets.length]!);
      const parts: string[] = [];
      for (const t of order) {
        const start = process.hrtime.bigint();
        const { median: m } = await readBench(procs, t.url, o.runs);
        if (t.name === 'destructor') windows.push([start, process.hrtime.bigint()]);
        results.get(t.name)!.push(m);
        parts.push(`${t.name}=${m.toFixed(1)}`);
      }
      say(`# round ${r + 1}: ${parts.join(' ')}`);
    }
    const med = new Map<ServerName, number>();
    for (const [name, xs] of results) {
      med.set(name, median(xs));
      say(`read_mib_s ${name} ${median(xs).toFixed(1)}`);
    }
    for (const other of ['copy', 'legacy', 'ganesha'] as const) {
      const a = med.get('destructor');
      const b = med.get(other);
      if (a !== undefined && b !== undefined) say(`ratio destructor/${other} ${(a / b).toFixed(3)}`);
    }
    const d = targets.find((t) => t.name === 'destructor');
    if (d?.http) await printPins(d.http);
    if (d && o.cpuProf) {
      await procs.stop(d.child); // the profile is written when the server exits
      await summariseProfile(o.cpuProf, windows);
    }
  } catch (e) {
    // Interrupted: what failed was stopped on purpose; the signal handler exits once all is stopped.
    if (!interrupted) throw e;
  } finally {
    await cleanup();
    if (!interrupted) {
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
    }
  }
}
