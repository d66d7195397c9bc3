/**
 * The peer table: pagelife (destructor mode, default settings) against nfs-ganesha (the reference
 * peer) on the same tmpfs export, measured with an independent client — ../shared/bench/nfsperf, a
 * libnfs load generator — alternating servers in every round (the order rotates), medians of rounds.
 *
 * Output (machine-readable lines; everything else starts with '#'):
 *   peer <row> pagelife <v> ganesha <v> ratio <r>
 * where ratio > 1 means pagelife is better: pagelife/ganesha for rates, ganesha/pagelife for latencies,
 * and `first <row> …` lines of the same form: each server's first warm-up pass of the row.
 * The last two rows run pagelife with `--cache-pages 81920` (a 320 MiB page cache: the file fits).
 * pagelife runs as `npm start` runs it: the bundle `npm run build` makes (a baseline checkout from
 * before the bundle runs its sources).
 *
 * With --baseline DIR (another checkout of pagelife, e.g. `git worktree add DIR main`), that tree's
 * server runs every row too, alternated with the other two, and a line per row compares the trees:
 *   ab <row> new <v> baseline <v> ratio <r>
 *
 * Before the measured rounds every server runs every row, unmeasured, at least `--warmup` times and
 * for at least `--warmup-s` seconds (a `# warmup` line per row and server): the rounds measure
 * servers in their steady state, as JMH's warm-up iterations do for any JIT runtime. A young pagelife
 * is V8 still compiling the row's path: a fresh server's CREATE climbs from ~2,000 to ~7,500 ops/s
 * over its first ~8,000 calls, a READDIRPLUS listing of 2,000 entries from ~200,000 to ~1,000,000
 * entries/s over its first ~150 listings, while the page cache fills too (ganesha is compiled, and
 * reads tmpfs through the host's page cache, always warm). What each server did the first time it
 * met a row stays printed: `first <row> pagelife <v> ganesha <v> ratio <r>`.
 *
 * With --pin SERVER_CPUS:CLIENT_CPUS (taskset lists, e.g. 0:1) every server process, all its threads,
 * runs on SERVER_CPUS and nfsperf on CLIENT_CPUS, as a server and its clients on separate machines
 * would. Unpinned, on a 2-vCPU machine the scheduler now and then puts the client beside the
 * server: a warm pagelife's CREATE passes then take ~300 µs of server CPU per call instead of ~150
 * and run at ~3,000 instead of ~6,500 ops/s, for a few passes at a time (README, "Performance").
 * Not the default: the table is of servers as users start them.
 *
 * Args: --rounds N (3), --warmup N (1; 0 for none), --warmup-s S (5; 0 for passes only), --size MiB
 *       (file read and written, 256), --ops N (GETATTR and 4 KiB READs, 10000), --creates N (2000),
 *       --only ROW,ROW… (substring match), --baseline DIR, --cache-pages N (the default-settings
 *       servers' page cache; default: each tree's own default), --pin SERVER_CPUS:CLIENT_CPUS.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { BenchUsageError } from './index.ts';
import { median, Processes, REPO, say, startEntry, startGanesha, startPagelife, positiveInt, writeRandomFile } from './lib/harness.ts';
import { NFSPERF, nfsperf, type NfsTarget } from './lib/nfsperf.ts';

const BIG = 'big.bin';
const LISTED = 'many';
const LISTED_ENTRIES = 2000;
/** A page cache holding the whole 256 MiB file and more, for the last rows. */
const BIG_CACHE_PAGES = 81920;

interface Options {
  rounds: number;
  /** Unmeasured passes of every row on every server before the rounds (at least). */
  warmup: number;
  /** Seconds each server spends on each row before the rounds (at least). */
  warmupSeconds: number;
  sizeMiB: number;
  ops: number;
  creates: number;
  only: string[] | null;
  baseline: string | null;
  cachePages: number | null;
  /** taskset CPU lists for the servers and for nfsperf. */
  pin: { server: string; client: string } | null;
}

interface Server extends NfsTarget {
  name: 'pagelife' | 'pagelife-big-cache' | 'baseline' | 'baseline-big-cache' | 'ganesha';
  /** pagelife's HTTP port (its /metrics), none for ganesha. */
  httpPort?: number;
}

interface Row {
  name: string;
  /** Which pagelife runs it. */
  pagelife: 'pagelife' | 'pagelife-big-cache';
  /** The value is a latency: smaller is better. */
  latency?: boolean;
  /** nfsperf arguments, given the server and round (for the names it creates). */
  args(o: Options, run: { server: string; round: number }): string[];
  /** The figure of this row from nfsperf's output line. */
  value: (fields: Map<string, string>) => number;
}

/** The figure's column: the tree under test, the baseline tree, or the peer. */
type Column = 'pagelife' | 'baseline' | 'ganesha';

/** `ours` against `other` for `row`, > 1 when ours is better (a latency compares the other way). */
const ratioOf = (row: Row, ours: number, other: number): number => (row.latency ? other / ours : ours / other);

const num = (key: string) => (f: Map<string, string>): number => Number(f.get(key));

const ROWS: Row[] = [
  ...[1, 8].map((d): Row => ({ name: `write_mib_s_depth${d}`, pagelife: 'pagelife', args: (o, r) => ['--test', 'write', '--file', `written-by-${r.server}.bin`, '--size', String(Math.min(o.sizeMiB, 128)), '--depth', String(d)], value: num('mib_s') })),
  { name: 'create_ops_s', pagelife: 'pagelife', args: (o, r) => ['--test', 'create', '--dir', 'creates', '--prefix', `r${r.round}-${r.server}-`, '--ops', String(o.creates)], value: num('ops_s') },
  { name: 'readdirplus_entries_s', pagelife: 'pagelife', args: () => ['--test', 'readdirplus', '--dir', LISTED, '--reps', '5'], value: num('entries_s') },
  { name: 'getattr_ops_s_depth1', pagelife: 'pagelife', args: (o) => ['--test', 'getattr', '--file', BIG, '--ops', String(o.ops)], value: num('ops_s') },
  { name: 'getattr_p50_us_depth1', pagelife: 'pagelife', latency: true, args: (o) => ['--test', 'getattr', '--file', BIG, '--ops', String(o.ops)], value: num('p50_us') },
  ...[1, 16].map((d): Row => ({ name: `read4k_iops_depth${d}`, pagelife: 'pagelife', args: (o) => ['--test', 'read4k', '--file', BIG, '--ops', String(o.ops), '--depth', String(d)], value: num('ops_s') })),
  ...[1, 8].map((d): Row => ({ name: `seqread_mib_s_depth${d}`, pagelife: 'pagelife', args: () => ['--test', 'seqread', '--file', BIG, '--chunk', String(1 << 20), '--depth', String(d)], value: num('mib_s') })),
  ...[1, 8].map((d): Row => ({ name: `seqread_big_cache_mib_s_depth${d}`, pagelife: 'pagelife-big-cache', args: () => ['--test', 'seqread', '--file', BIG, '--chunk', String(1 << 20), '--depth', String(d)], value: num('mib_s') })),
];

function parseOptions(args: string[]): Options {
  const o: Options = { rounds: 3, warmup: 1, warmupSeconds: 5, sizeMiB: 256, ops: 10_000, creates: 2000, only: null, baseline: null, cachePages: null, pin: null };
  const int = (flag: string, v: string | undefined): number => positiveInt('peers', flag, v);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--rounds') o.rounds = int(a, args[++i]);
    else if (a === '--warmup') {
      o.warmup = Number(args[++i]);
      if (!Number.isInteger(o.warmup) || o.warmup < 0) throw new BenchUsageError(`bench peers: --warmup wants a whole number, got ${args[i]}`);
    } else if (a === '--warmup-s') {
      o.warmupSeconds = Number(args[++i]);
      if (!Number.isFinite(o.warmupSeconds) || o.warmupSeconds < 0) throw new BenchUsageError(`bench peers: --warmup-s wants seconds (0 or more), got ${args[i]}`);
    }
    else if (a === '--size') o.sizeMiB = int(a, args[++i]);
    else if (a === '--ops') o.ops = int(a, args[++i]);
    else if (a === '--creates') o.creates = int(a, args[++i]);
    else if (a === '--only') o.only = (args[++i] ?? '').split(',').filter(Boolean);
    else if (a === '--baseline') o.baseline = path.resolve(args[++i] ?? '');
    else if (a === '--cache-pages') o.cachePages = int(a, args[++i]);
    else if (a === '--pin') {
      const m = /^([0-9][0-9,-]*):([0-9][0-9,-]*)$/.exec(args[++i] ?? '');
      if (!m) throw new BenchUsageError(`bench peers: --pin wants SERVER_CPUS:CLIENT_CPUS (taskset lists, e.g. 0:1), got ${args[i]}`);
      o.pin = { server: m[1]!, client: m[2]! };
    } else throw new BenchUsageError(`bench peers: unknown argument ${a} (--rounds N, --warmup N, --warmup-s S, --size MiB, --ops N, --creates N, --only ROW,…, --baseline DIR, --cache-pages N, --pin S:C)`);
  }
  return o;
}

/** Every thread of process `pid` (a server just started) on `cpus`. */
async function pinServer(pid: number | undefined, cpus: string): Promise<void> {
  if (pid === undefined) throw new Error('bench peers: --pin: a server process without a pid');
  await promisify(execFile)('taskset', ['-a', '-p', '-c', cpus, String(pid)]);
}

/** The export both servers serve: on tmpfs when the machine has one, so neither measures a disk. */
async function makeExport(base: string, o: Options): Promise<string> {
  const dir = path.join(base, 'export');
  await mkdir(path.join(dir, LISTED), { recursive: true });
  await mkdir(path.join(dir, 'creates'));
  for (let i = 0; i < LISTED_ENTRIES; i++) await writeFile(path.join(dir, LISTED, `entry-${String(i).padStart(5, '0')}`), '');
  await writeRandomFile(path.join(dir, BIG), o.sizeMiB);
  return dir;
}

export async function run(args: string[]): Promise<void> {
  const o = parseOptions(args);
  if (!existsSync(NFSPERF)) throw new Error(`bench peers: ${NFSPERF} not found (PAGELIFE_NFSPERF overrides)`);
  const rows = ROWS.filter((r) => o.only === null || o.only.some((w) => r.name.includes(w)));
  const procs = new Processes();
  const base = await mkdtemp(path.join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'pagelife-bench-peers-'));
  try {
    const exportDir = await makeExport(base, o);
    const servers = new Map<Server['name'], Server>();
    const trees: [Server['name'], Server['name'], string][] = [['pagelife', 'pagelife-big-cache', REPO]];
    if (o.baseline) {
      if (!existsSync(path.join(o.baseline, 'bin/pagelife.js'))) throw new BenchUsageError(`bench peers: --baseline ${o.baseline} is not a pagelife checkout`);
      trees.push(['baseline', 'baseline-big-cache', o.baseline]);
    }
    for (const [plainName, bigName, repo] of trees) {
      // As `npm start` runs it: the bundle.
      const entry = startEntry(repo);
      const plain = await startPagelife(procs, plainName, ['--export', exportDir, ...(o.cachePages ? ['--cache-pages', String(o.cachePages)] : [])], [], repo, entry);
      if (o.pin) await pinServer(plain.child.pid, o.pin.server);
      servers.set(plainName, { name: plainName, nfsPort: plain.nfsPort, mountPort: plain.mountPort, exportPath: '/export', httpPort: plain.httpPort });
      if (rows.some((r) => r.pagelife === 'pagelife-big-cache')) {
        const big = await startPagelife(procs, bigName, ['--export', exportDir, '--cache-pages', String(BIG_CACHE_PAGES)], [], repo, entry);
        if (o.pin) await pinServer(big.child.pid, o.pin.server);
        servers.set(bigName, { name: bigName, nfsPort: big.nfsPort, mountPort: big.mountPort, exportPath: '/export', httpPort: big.httpPort });
      }
    }
    const g = await startGanesha(procs, base, exportDir, true);
    if (!g) throw new Error('bench peers: nfs-ganesha is the other column and could not run (see above)');
    if (o.pin) await pinServer(g.child.pid, o.pin.server);
    servers.set('ganesha', { name: 'ganesha', nfsPort: g.nfsPort, mountPort: g.mountPort, exportPath: exportDir });
    say(`# peers: every row warmed up on every server (at least ${o.warmup} passes and ${o.warmupSeconds} s), then ${o.rounds} measured rounds, servers alternated (order rotates per round); ${o.sizeMiB} MiB file, ${LISTED_ENTRIES}-entry directory, export ${exportDir}${o.baseline ? `; baseline ${o.baseline}` : ''}${o.cachePages ? `; --cache-pages ${o.cachePages}` : ''}${o.pin ? `; servers on CPUs ${o.pin.server}, nfsperf on ${o.pin.client}` : ''}; node ${process.version}`);

    const groupOf = (row: Row): Server[] => {
      const group = [servers.get(row.pagelife)!, servers.get('ganesha')!];
      if (o.baseline) group.splice(1, 0, servers.get(row.pagelife === 'pagelife' ? 'baseline' : 'baseline-big-cache')!);
      return group;
    };
    const column = (s: Server): Column => (s.name === 'ganesha' ? 'ganesha' : s.name.startsWith('baseline') ? 'baseline' : 'pagelife');
    const results = new Map(rows.map((r) => [r.name, { pagelife: [] as number[], baseline: [] as number[], ganesha: [] as number[] }]));
    const first = new Map<string, Partial<Record<Column, number>>>();
    // Warm-up passes are rounds -1, -2, …: their CREATE names differ from the measured ones too.
    for (const row of rows) {
      const firsts: Partial<Record<Column, number>> = {};
      first.set(row.name, firsts);
      for (const s of groupOf(row)) {
        const t0 = performance.now();
        const seconds = (): number => (performance.now() - t0) / 1000;
        const values: number[] = [];
        while (values.length < o.warmup || seconds() < o.warmupSeconds) {
          values.push(row.value(await nfsperf(procs, s, row.args(o, { server: s.name, round: -1 - values.length }), o.pin)));
        }
        if (values.length === 0) continue;
        firsts[column(s)] = values[0]!;
        say(`# warmup ${row.name} ${s.name}: ${values.length} passes in ${seconds().toFixed(1)} s, first ${values[0]}, last ${values[values.length - 1]}`);
      }
    }
    for (let round = 0; round < o.rounds; round++) {
      for (const row of rows) {
        const group = groupOf(row);
        const order = group.map((_, i) => group[(i + round) % group.length]!);
        const parts: string[] = [];
        for (const s of order) {
          const v = row.value(await nfsperf(procs, s, row.args(o, { server: s.name, round }), o.pin));
          results.get(row.name)![column(s)].push(v);
          parts.push(`${s.name}=${v}`);
        }
        say(`# round ${round + 1} ${row.name}: ${parts.join(' ')}`);
      }
    }
    // A prompted collection drops the code V8 compiled for objects no longer alive (README, "Performance").
    for (const s of servers.values()) {
      if (s.httpPort === undefined) continue;
      const metrics = await fetch(`http://127.0.0.1:${s.httpPort}/metrics`).then((r) => r.text());
      say(`# ${s.name}: ${metrics.split('\n').find((l) => l.startsWith('pagelife_memory_reclaims_total')) ?? 'pagelife_memory_reclaims_total ?'}`);
    }
    for (const row of rows) {
      const f = first.get(row.name)!;
      if (f.pagelife === undefined || f.ganesha === undefined) continue;
      say(`first ${row.name} pagelife ${f.pagelife.toFixed(1)} ganesha ${f.ganesha.toFixed(1)} ratio ${ratioOf(row, f.pagelife, f.ganesha).toFixed(3)}`);
    }
    for (const row of rows) {
      const r = results.get(row.name)!;
      const p = median(r.pagelife);
      const gv = median(r.ganesha);
      const ratio = ratioOf(row, p, gv);
      say(`peer ${row.name} pagelife ${p.toFixed(1)} ganesha ${gv.toFixed(1)} ratio ${ratio.toFixed(3)}`);
    }
    if (o.baseline) {
      for (const row of rows) {
        const r = results.get(row.name)!;
        const p = median(r.pagelife);
        const b = median(r.baseline);
        say(`ab ${row.name} new ${p.toFixed(1)} baseline ${b.toFixed(1)} ratio ${ratioOf(row, p, b).toFixed(3)}`);
      }
    }
  } finally {
    await procs.stopAll();
    await rm(base, { recursive: true, force: true });
  }
}
