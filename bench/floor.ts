/**
 * How fast can any Node server answer one call at a time here? The depth-1 rows of the peer table,
 * measured with nfsperf against three servers on the same tmpfs file, alternated in every round
 * (the order rotates), medians of rounds:
 *   - node: bench/lib/floor-server.ts, the least a Node NFSv3 server can do per call (read the call,
 *     fstat, encode, write; READs from the file held in memory) — Node's own floor on this machine;
 *   - ganesha: nfs-ganesha, the reference peer;
 *   - pagelife: destructor mode, default settings, as `npm start` runs it.
 *
 * Output (machine-readable lines; everything else starts with '#'):
 *   floor <row> node <v> ganesha <v> pagelife <v> node/ganesha <r> pagelife/ganesha <r> pagelife/node <r>
 * Where node/ganesha is below 1, no Node server reaches nfs-ganesha on that row on this machine;
 * pagelife/node is what pagelife's own work (RPC layer, checks, page pinning, the modelled stack)
 * leaves of Node's floor.
 *
 * Args: --rounds N (5), --warmup-s S (each server's unmeasured seconds per row before the rounds, 5),
 *       --ops N (GETATTRs and 4 KiB READs per run, 20000), --size MiB (the file, 256).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BenchUsageError } from './index.ts';
import { median, positiveInt, Processes, REPO, say, startEntry, startGanesha, startPagelife, startReady, writeRandomFile } from './lib/harness.ts';
import { NFSPERF, nfsperf, type NfsTarget } from './lib/nfsperf.ts';

const FILE = 'big.bin';
const FLOOR_SERVER = path.join(REPO, 'bench/lib/floor-server.ts');
const FLOOR_READY = /^floor ready nfs=(\d+) mount=(\d+)/m;
const COLUMNS = ['node', 'ganesha', 'pagelife'] as const;
type Column = (typeof COLUMNS)[number];

interface Options {
  rounds: number;
  warmupSeconds: number;
  ops: number;
  sizeMiB: number;
}

interface Row {
  name: string;
  args(o: Options): string[];
  field: string;
}

const ROWS: Row[] = [
  { name: 'getattr_ops_s_depth1', args: (o) => ['--test', 'getattr', '--file', FILE, '--ops', String(o.ops)], field: 'ops_s' },
  { name: 'read4k_iops_depth1', args: (o) => ['--test', 'read4k', '--file', FILE, '--ops', String(o.ops)], field: 'ops_s' },
  { name: 'seqread_mib_s_depth1', args: () => ['--test', 'seqread', '--file', FILE, '--chunk', String(1 << 20)], field: 'mib_s' },
];

function parseOptions(args: string[]): Options {
  const o: Options = { rounds: 5, warmupSeconds: 5, ops: 20_000, sizeMiB: 256 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--rounds') o.rounds = positiveInt('floor', a, args[++i]);
    else if (a === '--ops') o.ops = positiveInt('floor', a, args[++i]);
    else if (a === '--size') o.sizeMiB = positiveInt('floor', a, args[++i]);
    else if (a === '--warmup-s') {
      o.warmupSeconds = Number(args[++i]);
      if (!Number.isFinite(o.warmupSeconds) || o.warmupSeconds < 0) throw new BenchUsageError(`bench floor: --warmup-s wants seconds (0 or more), got ${args[i]}`);
    } else throw new BenchUsageError(`bench floor: unknown argument ${a} (--rounds N, --warmup-s S, --ops N, --size MiB)`);
  }
  return o;
}

/** The floor server on free ports, once it prints its ready line. */
async function startFloor(procs: Processes, dir: string): Promise<NfsTarget> {
  const { m } = await startReady(procs, 'bench floor: the floor server', process.execPath, ['--import', 'tsx', FLOOR_SERVER, dir, FILE], FLOOR_READY);
  return { name: 'node', nfsPort: Number(m[1]), mountPort: Number(m[2]), exportPath: '/export' };
}

export async function run(args: string[]): Promise<void> {
  const o = parseOptions(args);
  if (!existsSync(NFSPERF)) throw new Error(`bench floor: ${NFSPERF} not found (PAGELIFE_NFSPERF overrides)`);
  const procs = new Processes();
  const base = await mkdtemp(path.join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'pagelife-bench-floor-'));
  try {
    const exportDir = path.join(base, 'export');
    await mkdir(exportDir);
    await writeRandomFile(path.join(exportDir, FILE), o.sizeMiB);
    const p = await startPagelife(procs, 'pagelife', ['--export', exportDir], [], REPO, startEntry());
    const g = await startGanesha(procs, base, exportDir);
    if (!g) throw new Error('bench floor: nfs-ganesha is a column and could not run (see above)');
    const servers: Record<Column, NfsTarget> = {
      node: await startFloor(procs, exportDir),
      ganesha: { name: 'ganesha', nfsPort: g.nfsPort, mountPort: g.mountPort, exportPath: exportDir },
      pagelife: { name: 'pagelife', nfsPort: p.nfsPort, mountPort: p.mountPort, exportPath: '/export' },
    };
    say(`# floor: ${o.sizeMiB} MiB file on ${exportDir}; each server ${o.warmupSeconds} s per row unmeasured, then ${o.rounds} rounds, servers alternated; node ${process.version}`);
    const value = async (row: Row, c: Column): Promise<number> => Number((await nfsperf(procs, servers[c], row.args(o))).get(row.field));
    for (const row of ROWS) {
      for (const c of COLUMNS) {
        const t0 = performance.now();
        let passes = 0;
        do {
          await value(row, c);
          passes++;
        } while (performance.now() - t0 < o.warmupSeconds * 1000);
        say(`# warmup ${row.name} ${c}: ${passes} passes`);
      }
    }
    const results = new Map(ROWS.map((r) => [r.name, { node: [] as number[], ganesha: [] as number[], pagelife: [] as number[] }]));
    for (let round = 0; round < o.rounds; round++) {
      for (const row of ROWS) {
        const parts: string[] = [];
        for (let i = 0; i < COLUMNS.length; i++) {
          const c = COLUMNS[(i + round) % COLUMNS.length]!;
          const v = await value(row, c);
          results.get(row.name)![c].push(v);
          parts.push(`${c}=${v}`);
        }
        say(`# round ${round + 1} ${row.name}: ${parts.join(' ')}`);
      }
    }
    for (const row of ROWS) {
      const r = results.get(row.name)!;
      const [n, gv, pv] = [median(r.node), median(r.ganesha), median(r.pagelife)];
      say(`floor ${row.name} node ${n.toFixed(1)} ganesha ${gv.toFixed(1)} pagelife ${pv.toFixed(1)} node/ganesha ${(n / gv).toFixed(3)} pagelife/ganesha ${(pv / gv).toFixed(3)} pagelife/node ${(pv / n).toFixed(3)}`);
    }
  } finally {
    await procs.stopAll();
    await rm(base, { recursive: true, force: true });
  }
}
