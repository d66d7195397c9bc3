/**
 * The time budget of one GETATTR, one 1 MiB READ, one 1 MiB WRITE, one READDIRPLUS entry and one CREATE: where a
 * pagelife server's microseconds go, by layer, per call (per listed entry for READDIRPLUS). Each
 * phase runs a pagelife server of its own (destructor mode, default settings), sampled by
 * `perf record` (bench/lib/perf-budget.ts says why; `--sampler v8`: under `node --cpu-prof`),
 * driven by the independent libnfs client ../shared/bench/nfsperf at depth 1:
 * `getattr` of one file, `seqread` in 1 MiB READs of a file the page cache holds (a warm-up runs
 * fill it, outside the measured windows), `write` of a file in 1 MiB UNSTABLE WRITEs then COMMIT
 * (each run truncates it first), `readdirplus` listings of a 2,000-entry directory, and `create`
 * of new empty files. Only samples inside nfsperf's own timed loops count (window: the
 * `secs` it reports, ending when its report arrives), and calls are the `ops` (READDIRPLUS: the
 * `entries`) it reports.
 *
 * Output (machine-readable lines; everything else starts with '#'):
 *   budget <getattr|read|write|readdirplus|create> <layer> <µs per call> [baseline <µs>]     layers: bench/lib/cpu-budget.ts
 *   budget <op> total_cpu_us <µs> [baseline <µs>]                   every layer but idle
 *   budget <op> process_cpu_us <µs> [baseline <µs>] [ganesha <µs>]  the server's CPU, all threads
 *                                                                   (/proc/PID/stat, over whole runs)
 *   budget <op> wall_us <µs> [baseline <µs>] [ganesha <µs>]         the client's secs / ops
 *
 * With --baseline DIR (another checkout of pagelife, e.g. `git worktree add DIR <commit>`), that
 * tree's server is profiled in the same phases, its runs alternated with this tree's (and ganesha's).
 *
 * Args: --rounds N (5), --getattr-ops N (GETATTRs per server and round, 10000), --read-mib N (MiB
 *       read per server and round, 128), --file-mib N (the file read, 32), --baseline DIR, --skip-ganesha,
 *       --profiles DIR (keep the profiles there: .cpuprofile files, or perf.data with perf's
 *       /tmp/perf-PID.map files left in place; default: removed with the temp dir),
 *       --only PHASE,PHASE… (getattr, read, write, readdirplus, create; default getattr,read),
 *       --write-mib N (MiB written per server and round, in 1 MiB WRITEs, 128),
 *       --listings N (READDIRPLUS listings per server and round, 20), --creates N (CREATEs per server
 *       and round, 2000), --cache-pages N (both trees' page cache; default: each tree's own default),
 *       --sampler perf|v8 (perf when this machine lets it sample, else v8).
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { BenchUsageError } from './index.ts';
import { budgetBy, budgetByLayer, fileOf, LAYERS, type CpuProfile, type Layer, type Window } from './lib/cpu-budget.ts';
import { PERF_HZ, perfBudgetBy, perfBudgetByLayer, perfCanSample, perfFileOf, perfRecordArgs, readPerfData } from './lib/perf-budget.ts';
import { Processes, REPO, positiveInt, say, startGanesha, startPagelife, writeRandomFile } from './lib/harness.ts';
import { NFSPERF } from './lib/nfsperf.ts';

const FILE = 'big.bin';
/** V8's default sampling interval (µs): at 250 µs the profiler slowed 1 MiB READs by a third here. */
const PROFILE_INTERVAL_US = 1000;
/** perf record has no "attached" signal; this long is ample for it to open its events on a few processes. */
const PERF_ATTACH_MS = 500;
const SAMPLERS = ['perf', 'v8'] as const;
type Sampler = (typeof SAMPLERS)[number];
/** Uncounted runs first: the JIT settles, and the page cache holds the file. */
const WARMUP_GETATTRS = 5000;
const WARMUP_READ_PASSES = 4;
const WARMUP_LISTINGS = 5;
const WARMUP_CREATES = 1000;
/** WRITEs are one call per MiB: a GiB of them before counting, or V8 is still compiling the path (perf: a helper thread busy compiling through the first ~800). */
const WARMUP_WRITE_MIB = 1024;
/** The directory READDIRPLUS lists, and how many entries it has (as bench:peers). */
const LISTED = 'many';
const LISTED_ENTRIES = 2000;
/** Where CREATE makes its files. */
const CREATES = 'creates';
const OPS = ['getattr', 'read', 'write', 'readdirplus', 'create'] as const;
/** Clock ticks per second of /proc/PID/stat's utime and stime. */
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

interface Options {
  rounds: number;
  getattrOps: number;
  readMiB: number;
  fileMiB: number;
  baseline: string | null;
  skipGanesha: boolean;
  profiles: string | null;
  only: Op[];
  listings: number;
  creates: number;
  writeMiB: number;
  cachePages: number | null;
  sampler: Sampler;
}

function parseOptions(args: string[]): Options {
  const o: Options = { rounds: 5, getattrOps: 10_000, readMiB: 128, fileMiB: 32, baseline: null, skipGanesha: false, profiles: null, only: ['getattr', 'read'], listings: 20, creates: 2000, writeMiB: 128, cachePages: null, sampler: perfCanSample() ? 'perf' : 'v8' };
  const int = (flag: string, v: string | undefined): number => positiveInt('budget', flag, v);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--rounds') o.rounds = int(a, args[++i]);
    else if (a === '--getattr-ops') o.getattrOps = int(a, args[++i]);
    else if (a === '--read-mib') o.readMiB = int(a, args[++i]);
    else if (a === '--file-mib') o.fileMiB = int(a, args[++i]);
    else if (a === '--baseline') o.baseline = path.resolve(args[++i] ?? '');
    else if (a === '--skip-ganesha') o.skipGanesha = true;
    else if (a === '--profiles') o.profiles = path.resolve(args[++i] ?? '');
    else if (a === '--cache-pages') o.cachePages = int(a, args[++i]);
    else if (a === '--listings') o.listings = int(a, args[++i]);
    else if (a === '--creates') o.creates = int(a, args[++i]);
    else if (a === '--write-mib') o.writeMiB = int(a, args[++i]);
    else if (a === '--sampler') {
      const v = args[++i] ?? '';
      if (!(SAMPLERS as readonly string[]).includes(v)) throw new BenchUsageError(`bench budget: --sampler wants perf or v8, got ${v}`);
      o.sampler = v as Sampler;
      if (o.sampler === 'perf' && !perfCanSample()) throw new BenchUsageError('bench budget: --sampler perf, but perf cannot sample here (installed? kernel.perf_event_paranoid?)');
    }
    else if (a === '--only') {
      const ops = (args[++i] ?? '').split(',');
      const bad = ops.find((op) => !(OPS as readonly string[]).includes(op));
      if (bad !== undefined || ops.length === 0) throw new BenchUsageError(`bench budget: --only wants phases among ${OPS.join(', ')}, got ${bad}`);
      o.only = ops as Op[];
    }
    else throw new BenchUsageError(`bench budget: unknown argument ${a} (--rounds N, --getattr-ops N, --read-mib N, --file-mib N, --listings N, --creates N, --write-mib N, --baseline DIR, --skip-ganesha, --profiles DIR, --only PHASE,…, --cache-pages N, --sampler perf|v8)`);
  }
  if (o.baseline && !existsSync(path.join(o.baseline, 'bin/pagelife.js'))) throw new BenchUsageError(`bench budget: --baseline ${o.baseline} is not a pagelife checkout`);
  return o;
}

type Op = (typeof OPS)[number];
type Column = 'new' | 'baseline' | 'ganesha';

interface Target {
  column: Column;
  pid: number;
  nfsPort: number;
  mountPort: number;
  exportPath: string;
  /** pagelife only: its checkout, process, and where its profiles go. */
  repo?: string;
  child?: ChildProcess;
  profileDir?: string;
  /** The client's timed loops, in the monotonic clock (µs), and what they counted. */
  windows: Window[];
  ops: number;
  secs: number;
  /** The server process's CPU time (all threads, /proc/PID/stat) across the counted runs, in clock ticks. */
  ticks: number;
}

/** utime + stime of a process, in clock ticks. */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // fields 14 and 15 of proc(5)
}

const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

/** One nfsperf run: its ops and secs, the window of its timed loop, and the server's CPU ticks over the run. */
async function nfsperf(procs: Processes, t: Target, args: string[]): Promise<{ ops: number; secs: number; window: Window; ticks: number }> {
  const ticks = cpuTicks(t.pid);
  let out = '';
  let end = 0;
  const child = procs.start('nfsperf', NFSPERF, ['--host', '127.0.0.1', '--nfsport', String(t.nfsPort), '--mountport', String(t.mountPort), '--export', t.exportPath, ...args], (l) => {
    if (l.startsWith('test=') && end === 0) end = nowUs();
    out += `${l}\n`;
  });
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  await procs.stop(child);
  const fields = new Map((out.split('\n').find((l) => l.startsWith('test=')) ?? '').split(' ').map((kv) => kv.split('=') as [string, string]));
  // A READDIRPLUS run counts entries and has no `failed` (nfsperf exits non-zero on a failed call).
  const ops = Number(fields.get('ops') ?? fields.get('entries'));
  const secs = Number(fields.get('secs'));
  if (code !== 0 || !(ops > 0) || !(secs > 0) || (fields.get('failed') ?? '0') !== '0') throw new Error(`nfsperf ${args.join(' ')} against ${t.column} failed (exit ${code}):\n${out}`);
  return { ops, secs, window: [end - secs * 1e6, end], ticks: cpuTicks(t.pid) - ticks };
}

interface Budget {
  layers: Map<Layer, number>;
  /** Finer: by project file (other time by layer). */
  files: Map<string, number>;
}

/** The server main thread's profile: of the files the process wrote (tsx's loader worker writes one too), the one with the most project samples in the windows. */
async function serverBudget(t: Target): Promise<Budget> {
  const root = `${pathToFileURL(t.repo!).href}/`;
  let best: { busy: number; budget: Budget } | null = null;
  for (const f of (await readdir(t.profileDir!)).filter((n) => n.endsWith('.cpuprofile'))) {
    const p = JSON.parse(await readFile(path.join(t.profileDir!, f), 'utf8')) as CpuProfile;
    const outside = t.windows.filter(([a, b]) => a < p.startTime || b > p.endTime);
    if (outside.length > 0) continue;
    const layers = budgetByLayer(p, root, t.windows);
    const busy = [...layers].filter(([l]) => l.endsWith('/')).reduce((s, [, us]) => s + us, 0);
    if (!best || busy > best.busy) best = { busy, budget: { layers, files: budgetBy(p, root, t.windows, fileOf) } };
  }
  if (!best) throw new Error(`bench budget: no profile in ${t.profileDir} covers the ${t.column} server's measured windows`);
  return best.budget;
}

/**
 * Each pagelife server's budget from one `perf record` of them all: the main thread's samples (its
 * thread id is the process id) inside that server's windows. perf names JIT frames from the map file
 * each server wrote (/tmp/perf-PID.map), removed here once read unless the profiles are kept
 * (`perf script -i` on them then still names every frame).
 */
async function perfBudgets(data: string, servers: Target[], keepMaps: boolean): Promise<Map<Column, Budget>> {
  const samples = await readPerfData(data);
  const out = new Map<Column, Budget>();
  for (const t of servers) {
    const root = `${pathToFileURL(t.repo!).href}/`;
    out.set(t.column, { layers: perfBudgetByLayer(samples, t.pid, root, t.windows), files: perfBudgetBy(samples, t.pid, root, t.windows, perfFileOf) });
    if (!keepMaps) rmSync(`/tmp/perf-${t.pid}.map`, { force: true });
  }
  return out;
}

async function phase(procs: Processes, op: Op, o: Options, exportDir: string, profiles: string, ganesha: Target | null): Promise<void> {
  const trees: [Column, string][] = [['new', REPO]];
  if (o.baseline) trees.push(['baseline', o.baseline]);
  const targets: Target[] = [];
  for (const [column, repo] of trees) {
    const profileDir = path.join(profiles, `${op}-${column}`);
    await mkdir(profileDir, { recursive: true });
    const node = o.sampler === 'perf' ? ['--perf-basic-prof-only-functions', '--interpreted-frames-native-stack'] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-interval=${PROFILE_INTERVAL_US}`];
    const p = await startPagelife(procs, `${op}-${column}`, ['--export', exportDir, ...(o.cachePages ? ['--cache-pages', String(o.cachePages)] : [])], node, repo);
    targets.push({ column, pid: p.child.pid!, repo, child: p.child, profileDir, nfsPort: p.nfsPort, mountPort: p.mountPort, exportPath: '/export', windows: [], ops: 0, secs: 0, ticks: 0 });
  }
  if (ganesha) targets.push({ ...ganesha, windows: [], ops: 0, secs: 0, ticks: 0 });
  let runs = 0;
  const args = (t: Target, warmup: boolean): string[] => {
    switch (op) {
      case 'getattr':
        return ['--test', 'getattr', '--file', FILE, '--ops', String(warmup ? WARMUP_GETATTRS : o.getattrOps)];
      case 'read':
        return ['--test', 'seqread', '--file', FILE, '--chunk', String(1 << 20)];
      case 'write':
        // One file per server, truncated by each run's CREATE: tmpfs holds one copy per server.
        return ['--test', 'write', '--file', `written-by-${t.column}.bin`, '--size', String(warmup ? WARMUP_WRITE_MIB : o.writeMiB), '--depth', '1'];
      case 'readdirplus':
        return ['--test', 'readdirplus', '--dir', LISTED, '--reps', String(warmup ? WARMUP_LISTINGS : o.listings)];
      case 'create':
        // New names every run: each CREATE makes a file (UNCHECKED of an existing one would not).
        return ['--test', 'create', '--dir', CREATES, '--prefix', `${t.column}-${runs++}-`, '--ops', String(warmup ? WARMUP_CREATES : o.creates)];
    }
  };
  // Warm-up, not counted: the JIT, the handle cache, and (READ) the page cache's copy of the file.
  for (const t of targets) for (let i = 0; i < (op === 'read' ? WARMUP_READ_PASSES : 1); i++) await nfsperf(procs, t, args(t, true));
  const pagelife = targets.filter((t) => t.repo);
  const perfData = path.join(profiles, `${op}.perf.data`);
  let perf: ChildProcess | null = null;
  if (o.sampler === 'perf') {
    perf = procs.start(`perf-${op}`, 'perf', [...perfRecordArgs(perfData), '-p', pagelife.map((t) => t.pid).join(',')]);
    await sleep(PERF_ATTACH_MS);
  }
  const runsPerRound = op === 'read' ? Math.max(1, Math.round(o.readMiB / o.fileMiB)) : 1;
  for (let round = 0; round < o.rounds; round++) {
    const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
    const parts: string[] = [];
    for (const t of order) {
      let ops = 0;
      let secs = 0;
      for (let r = 0; r < runsPerRound; r++) {
        const run = await nfsperf(procs, t, args(t, false));
        t.windows.push(run.window);
        ops += run.ops;
        secs += run.secs;
        t.ticks += run.ticks;
      }
      t.ops += ops;
      t.secs += secs;
      parts.push(`${t.column}=${((secs / ops) * 1e6).toFixed(1)}`);
    }
    say(`# round ${round + 1} ${op} wall µs per call: ${parts.join(' ')}`);
  }
  if (perf) await procs.stop(perf); // perf writes its data on SIGTERM
  for (const t of pagelife) await procs.stop(t.child!); // V8's profile is written at exit
  const budgets = perf
    ? await perfBudgets(perfData, pagelife, o.profiles !== null)
    : new Map(await Promise.all(pagelife.map(async (t) => [t.column, await serverBudget(t)] as const)));
  const target = (c: Column): Target => targets.find((t) => t.column === c)!;
  const perCall = (c: Column, us: number): number => us / target(c).ops;
  const line = (what: string, value: (c: Column) => number, columns: Column[]): void => {
    const [first, ...rest] = columns;
    say(`budget ${op} ${what} ${value(first!).toFixed(1)}${rest.map((c) => ` ${c} ${value(c).toFixed(1)}`).join('')}`);
  };
  const profiled = pagelife.map((t) => t.column);
  const unit = op === 'readdirplus' ? 'listed entry' : 'call';
  say(`# ${op}: ${profiled.map((c) => `${c} ${target(c).ops} ${unit === 'call' ? 'calls' : 'entries'}`).join(', ')} counted by nfsperf; µs of the server's main thread per ${unit} by layer`);
  for (const c of profiled) {
    const top = [...budgets.get(c)!.files].filter(([k]) => k !== 'idle').sort((a, b) => b[1] - a[1]).slice(0, 10);
    say(`# ${op} ${c}, the busiest files and leaves (µs per call): ${top.map(([k, us]) => `${k} ${perCall(c, us).toFixed(1)}`).join(', ')}`);
  }
  for (const l of LAYERS) line(l, (c) => perCall(c, budgets.get(c)!.layers.get(l)!), profiled);
  line('total_cpu_us', (c) => perCall(c, [...budgets.get(c)!.layers].filter(([l]) => l !== 'idle').reduce((s, [, us]) => s + us, 0)), profiled);
  const all = targets.map((t) => t.column);
  line('process_cpu_us', (c) => perCall(c, (target(c).ticks / CLK_TCK) * 1e6), all);
  line('wall_us', (c) => perCall(c, target(c).secs * 1e6), all);
}

export async function run(args: string[]): Promise<void> {
  const o = parseOptions(args);
  if (!existsSync(NFSPERF)) throw new Error(`bench budget: ${NFSPERF} not found (PAGELIFE_NFSPERF overrides)`);
  const procs = new Processes();
  const base = await mkdtemp(path.join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'pagelife-bench-budget-'));
  try {
    const exportDir = path.join(base, 'export');
    await mkdir(path.join(exportDir, LISTED), { recursive: true });
    await mkdir(path.join(exportDir, CREATES));
    await writeRandomFile(path.join(exportDir, FILE), o.fileMiB);
    for (let i = 0; i < LISTED_ENTRIES; i++) await (await open(path.join(exportDir, LISTED, `entry-${String(i).padStart(5, '0')}`), 'w')).close();
    const profiles = o.profiles ?? path.join(base, 'profiles');
    const sampler = o.sampler === 'perf' ? `sampled by perf record (${PERF_HZ} Hz, main thread)` : `under node --cpu-prof (interval ${PROFILE_INTERVAL_US} µs)`;
    say(`# budget: pagelife destructor mode, ${o.cachePages ? `--cache-pages ${o.cachePages}` : 'default settings'}, ${sampler}; nfsperf depth 1; ${o.rounds} rounds alternating servers; ${o.fileMiB} MiB file; ${o.baseline ? `baseline ${o.baseline}; ` : ''}node ${process.version}; profiles in ${profiles}`);
    let ganesha: Target | null = null;
    if (o.skipGanesha) say('# ganesha: skipped (--skip-ganesha)');
    else {
      const g = await startGanesha(procs, base, exportDir, o.only.includes('create') || o.only.includes('write'));
      if (g) ganesha = { column: 'ganesha', pid: g.child.pid!, nfsPort: g.nfsPort, mountPort: g.mountPort, exportPath: exportDir, windows: [], ops: 0, secs: 0, ticks: 0 };
    }
    for (const op of OPS) if (o.only.includes(op)) await phase(procs, op, o, exportDir, profiles, ganesha);
  } finally {
    await procs.stopAll();
    await rm(base, { recursive: true, force: true });
  }
}
