/**
 * How faithfully each CPU sampler charges a syscall on this machine: a probe process loops over a
 * stretch of JavaScript arithmetic and one `fstat`, timing the `fstat` itself with the monotonic
 * clock, and runs once under `node --cpu-prof` (V8's sampler) and once under `perf record` (the
 * kernel's). Each sampler's share for `fstat` is compared with the clock's. On a paravirtual guest
 * V8's sampler charges the JavaScript before a syscall to the syscall (its signal waits for the
 * thread's next kernel entry): why `bench budget` samples with perf (bench/lib/perf-budget.ts).
 *
 * Output:
 *   sampler clock fstat_share <0..1> fstat_us <µs> iteration_us <µs>
 *   sampler v8 fstat_share <0..1> ratio <share / clock's share>
 *   sampler perf fstat_share <0..1> ratio <…>          (skipped, with a '#' line, where perf cannot sample)
 *
 * Args: --seconds S (each run's loop, 3), --spin N (arithmetic steps per iteration, 3000).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { BenchUsageError } from './index.ts';
import { budgetBy, type CallFrame, type CpuProfile } from './lib/cpu-budget.ts';
import { say } from './lib/harness.ts';
import { perfBudgetBy, perfCanSample, perfRecordArgs, readPerfData, urlOf } from './lib/perf-budget.ts';

/** The probe: prints its window (monotonic µs) and the clock's account once its loop is done. */
const PROBE = `
import { openSync, fstatSync } from 'node:fs';
const fd = openSync(process.execPath, 'r');
const [seconds, spinSteps] = process.argv.slice(2).map(Number);
let sink = 0;
function spin() { let x = 0; for (let i = 0; i < spinSteps; i++) x += Math.sqrt(i ^ x); sink += x; }
const us = () => Number(process.hrtime.bigint() / 1000n);
for (let i = 0; i < 2000; i++) { spin(); fstatSync(fd, { bigint: true }); }
const from = us();
let inFstat = 0n, n = 0;
while (us() - from < seconds * 1e6) {
  spin();
  const t = process.hrtime.bigint();
  fstatSync(fd, { bigint: true });
  inFstat += process.hrtime.bigint() - t;
  n++;
}
const to = us();
console.log(JSON.stringify({ from, to, n, fstatUs: Number(inFstat) / 1000 / n, sink: sink > 0 }));
`;

interface ProbeResult {
  from: number;
  to: number;
  n: number;
  fstatUs: number;
}

function parseOptions(args: string[]): { seconds: number; spin: number } {
  const o = { seconds: 3, spin: 3000 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const v = Number(args[++i]);
    if (!(v > 0)) throw new BenchUsageError(`bench sampler: ${a} wants a positive number`);
    if (a === '--seconds') o.seconds = v;
    else if (a === '--spin') o.spin = Math.round(v);
    else throw new BenchUsageError(`bench sampler: unknown argument ${a} (--seconds S, --spin N)`);
  }
  return o;
}

/** Runs `cmd` to its end; its last stdout line, parsed as the probe's JSON. */
async function probe(cmd: string, args: string[]): Promise<ProbeResult> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  let last = '';
  for await (const l of createInterface({ input: child.stdout })) if (l.startsWith('{')) last = l;
  const code = await new Promise<number | null>((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', r)));
  if (code !== 0 || !last) throw new Error(`bench sampler: ${cmd} ${args.join(' ')} exited ${code}`);
  return JSON.parse(last) as ProbeResult;
}

/** Inside `fstatSync` (Node's binding and the syscall under it): what the probe's clock times. */
const inFstat = (stack: CallFrame[]): boolean => stack.some((f) => f.functionName === 'fstatSync');

export async function run(args: string[]): Promise<void> {
  const o = parseOptions(args);
  const dir = await mkdtemp(path.join(tmpdir(), 'pagelife-bench-sampler-'));
  try {
    const script = path.join(dir, 'probe.mjs');
    await writeFile(script, PROBE);
    // No inlining, so perf sees fstatSync as a frame of its own (V8's profile would anyway).
    const probeArgs = ['--max-inlined-bytecode-size=0', script, String(o.seconds), String(o.spin)];
    say(`# sampler: a loop of ${o.spin} arithmetic steps and one fstat, ${o.seconds} s per run; node ${process.version}`);

    const v8 = await probe(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-interval=100', ...probeArgs]);
    const clockShare = (v8.fstatUs * v8.n) / (v8.to - v8.from);
    say(`sampler clock fstat_share ${clockShare.toFixed(3)} fstat_us ${v8.fstatUs.toFixed(2)} iteration_us ${((v8.to - v8.from) / v8.n).toFixed(2)}`);
    const profile = JSON.parse(await readFile(path.join(dir, (await readdir(dir)).find((f) => f.endsWith('.cpuprofile'))!), 'utf8')) as CpuProfile;
    const byV8 = budgetBy(profile, '', [[v8.from, v8.to]], inFstat);
    const v8Share = (byV8.get(true) ?? 0) / ((byV8.get(true) ?? 0) + (byV8.get(false) ?? 0));
    say(`sampler v8 fstat_share ${v8Share.toFixed(3)} ratio ${(v8Share / clockShare).toFixed(2)}`);

    if (!perfCanSample()) {
      say('# sampler perf: skipped (perf cannot sample here)');
      return;
    }
    const data = path.join(dir, 'perf.data');
    const res = await probe('perf', [...perfRecordArgs(data), '--', process.execPath, '--perf-basic-prof-only-functions', ...probeArgs]);
    const samples = await readPerfData(data);
    // The probe's main thread: the thread with the most samples in its loop.
    const counts = new Map<number, number>();
    for (const s of samples) if (s.timeUs >= res.from && s.timeUs <= res.to) counts.set(s.tid, (counts.get(s.tid) ?? 0) + 1);
    const tid = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? -1;
    const byPerf = perfBudgetBy(samples, tid, '', [[res.from, res.to]], (frames) => frames.some((f) => urlOf(f) !== null && /^JS:.fstatSync /.test(f.sym)));
    const perfShare = (byPerf.get(true) ?? 0) / ((byPerf.get(true) ?? 0) + (byPerf.get(false) ?? 0));
    const perfClock = (res.fstatUs * res.n) / (res.to - res.from);
    say(`sampler perf fstat_share ${perfShare.toFixed(3)} ratio ${(perfShare / perfClock).toFixed(2)}`);
    await rm(`/tmp/perf-${tid}.map`, { force: true });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
