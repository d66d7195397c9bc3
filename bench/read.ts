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
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BenchUsageError } from './index.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const NFS_READ_BENCH = process.env.PAGELIFE_NFS_READ_BENCH ?? path.resolve(REPO, '../shared/bench/nfs-read-bench');
const GANESHA_TEMPLATE = path.join(REPO, 'bench/ganesha/ganesha.conf.template');
const FILE_NAME = 'big.bin';
const PAGE = 4096;
const MODES = ['destructor', 'legacy', 'copy'] as const;
type Mode = (typeof MODES)[number];
type ServerName = Mode | 'ganesha';
const READY = /^pagelife ready nfs=(\d+) mount=(\d+) portmap=off http=(\d+)$/m;

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
  const int = (name: string, v: string | undefined): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new BenchUsageError(`bench read: ${name} wants a positive integer, got ${v}`);
    return n;
  };
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

const say = (line: string): void => void process.stdout.write(`${line}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** A deadline for Promise.race that does not keep the process alive once the race is decided. */
const deadline = (ms: number): Promise<null> => new Promise((r) => setTimeout(() => r(null), ms).unref());

/** Child processes started by the bench; stop() ends each (TERM, then KILL), in reverse order. */
class Processes {
  private readonly list: { name: string; child: ChildProcess; exited: Promise<void>; group: boolean }[] = [];

  /** `group`: the child leads a process group of its own, and stop() ends the whole group (a script and what it runs). */
  start(name: string, cmd: string, args: string[], onLine?: (line: string) => void, group = false): ChildProcess {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO, detached: group });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.once('error', () => undefined);
    const tail: string[] = [];
    const lines = (buf: Buffer): void => {
      for (const l of buf.toString('utf8').split('\n')) {
        if (!l) continue;
        tail.push(l);
        if (tail.length > 20) tail.shift();
        onLine?.(l);
      }
    };
    // Always drained: a server blocked on a full stdout pipe would measure the pipe.
    child.stdout!.on('data', lines);
    child.stderr!.on('data', lines);
    (child as ChildProcess & { tail?: string[] }).tail = tail;
    this.list.push({ name, child, exited, group });
    return child;
  }

  static tail(child: ChildProcess): string {
    return ((child as ChildProcess & { tail?: string[] }).tail ?? []).join('\n');
  }

  async stop(child: ChildProcess): Promise<void> {
    const i = this.list.findIndex((p) => p.child === child);
    if (i < 0) return;
    const [p] = this.list.splice(i, 1);
    const { exited, group } = p!;
    const kill = (sig: NodeJS.Signals): void => {
      try {
        if (group && child.pid !== undefined) process.kill(-child.pid, sig);
        else child.kill(sig);
      } catch {
        // already gone
      }
    };
    if (child.exitCode !== null || child.signalCode !== null) return;
    kill('SIGTERM');
    const ended = await Promise.race([exited.then(() => true), deadline(10_000).then(() => false)]);
    if (!ended) {
      kill('SIGKILL');
      await exited;
    }
  }

  async stopAll(): Promise<void> {
    for (const p of [...this.list].reverse()) await this.stop(p.child);
  }
}

/** A port free right now on 127.0.0.1 (TCP). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function rpcbindUp(): boolean {
  return spawnSync('rpcinfo', ['-p', '127.0.0.1'], { stdio: 'ignore', timeout: 5000 }).status === 0;
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

async function startPagelife(procs: Processes, mode: Mode, exportDir: string, o: Options): Promise<Target> {
  const node = [...(mode === 'destructor' && o.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${o.cpuProf}`] : []), path.join(REPO, 'bin/pagelife.js')];
  const args = ['serve', '--export', exportDir, '--nfs-port', '0', '--mount-port', '0', '--portmap', 'off', '--http-port', '0'];
  args.push('--reply-mode', mode, '--cache-pages', String(o.cachePages), '--log-level', 'warn');
  let out = '';
  let ready: (m: RegExpMatchArray) => void = () => undefined;
  const got = new Promise<RegExpMatchArray>((r) => (ready = r));
  const child = procs.start(mode, process.execPath, [...node, ...args], (l) => {
    out += `${l}\n`;
    const m = READY.exec(out);
    if (m) ready(m);
  });
  const exited = new Promise<null>((r) => child.once('exit', () => r(null)));
  const m = await Promise.race([got, exited, deadline(60_000)]);
  if (!m) throw new Error(`pagelife (${mode}) did not become ready:\n${Processes.tail(child)}`);
  const [, nfs, mount, http] = m;
  return { name: mode, child, http: Number(http), url: `nfs://127.0.0.1/export/${FILE_NAME}?version=3&nfsport=${nfs}&mountport=${mount}` };
}

/** nfs-ganesha on free ports exporting `exportDir`; null (with a line saying why) when it cannot run here. */
async function startGanesha(procs: Processes, dir: string, exportDir: string): Promise<Target | null> {
  if (process.getuid?.() !== 0) {
    say('# ganesha: skipped: ganesha.nfsd and rpcbind need root, and this bench runs as a normal user');
    return null;
  }
  for (const cmd of ['ganesha.nfsd', 'rpcbind', 'rpcinfo']) {
    if (!has(cmd)) {
      say(`# ganesha: skipped: ${cmd} not found (scripts/install-system-packages.sh installs it)`);
      return null;
    }
  }
  if (!rpcbindUp()) {
    say('# rpcbind: not running; starting rpcbind -f -w (stopped at the end)');
    const rb = procs.start('rpcbind', 'rpcbind', ['-f', '-w']);
    for (let i = 0; i < 50 && !rpcbindUp(); i++) await sleep(100);
    if (!rpcbindUp()) {
      await procs.stop(rb);
      say(`# ganesha: skipped: rpcbind did not start: ${Processes.tail(rb)}`);
      return null;
    }
  }
  const ports = { NFS_PORT: await freePort(), MNT_PORT: await freePort(), NLM_PORT: await freePort(), RQUOTA_PORT: await freePort() };
  let conf = await readFile(GANESHA_TEMPLATE, 'utf8');
  for (const [k, v] of Object.entries({ ...ports, EXPORT_PATH: exportDir })) conf = conf.replaceAll(`@${k}@`, String(v));
  const confFile = path.join(dir, 'ganesha.conf');
  await writeFile(confFile, conf);
  const log = path.join(dir, 'ganesha.log');
  const child = procs.start('ganesha', 'ganesha.nfsd', ['-F', '-L', log, '-f', confFile, '-p', path.join(dir, 'ganesha.pid')]);
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) break;
    if ((await canConnect(ports.NFS_PORT)) && (await canConnect(ports.MNT_PORT))) {
      return { name: 'ganesha', child, url: `nfs://127.0.0.1${exportDir}/${FILE_NAME}?version=3&nfsport=${ports.NFS_PORT}&mountport=${ports.MNT_PORT}` };
    }
    await sleep(100);
  }
  const logTail = existsSync(log) ? (await readFile(log, 'utf8')).split('\n').slice(-8).join('\n') : '';
  await procs.stop(child);
  say(`# ganesha: skipped: it did not start listening on ${ports.NFS_PORT}/${ports.MNT_PORT}: ${Processes.tail(child)} ${logTail}`.replaceAll('\n', '\n# '));
  return null;
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

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
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
    const targets: Target[] = [];
    for (const mode of MODES) if (want(mode)) targets.push(await startPagelife(procs, mode, exportDir, o));
    if (o.skipGanesha) say('# ganesha: skipped (--skip-ganesha)');
    else if (want('ganesha')) {
      const g = await startGanesha(procs, dir, exportDir);
      if (g) targets.push(g);
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
