/**
 * Where a server's CPU time goes, by layer, from `perf record -g` samples of a Node process run with
 * `--perf-basic-prof-only-functions` (JIT frames named `JS:<tier><name> <url>:<line>:<col>`), read
 * back with `perf script -F tid,time,period,ip,sym,dso`.
 *
 * Why not only V8's own profiler: its sampler interrupts the main thread with a signal, and on a
 * paravirtual guest like this machine's the signal waits for the thread's next entry into the kernel.
 * JavaScript time is then charged to the syscall that follows it: a loop of 35 µs of arithmetic and
 * one 3.6 µs `fstat` profiled with `--cpu-prof` gave `fstat` about 34 % of the loop's samples
 * instead of 9.5 % (`npm run bench sampler` measures this). perf samples from the kernel's own
 * clock interrupt, so each sample lands where the CPU was.
 *
 * The layers are cpu-budget.ts's, charged the same way: a sample is a syscall when the native frames
 * below its innermost JavaScript frame go through a libuv or Node file or socket wrapper, or reach
 * the kernel or libc from Node's fs or socket code; the event loop's wait for events (busy polling
 * included) is `idle`; else GC when a collector runs; else the folder of the innermost frame of the
 * project's own code (the runtime and builtins it calls included, as V8's profile charges them);
 * else Node's internals (JavaScript) or `native` (Node's callback machinery, malloc). perf sees only
 * time on a CPU, so `idle` also gets the measured windows' time with no sample in them.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { FS_CALLERS, innermostProjectFile, LAYERS, projectLayer, SOCKET_CALLERS, type CallFrame, type Layer, type Window } from './cpu-budget.ts';

/** One frame of a perf callchain: the symbol and the object it is in. */
export interface PerfFrame {
  sym: string;
  dso: string;
}

/** One sample: the thread, when (µs of the clock perf recorded with), its weight (ns) and stack (leaf first). */
export interface PerfSample {
  tid: number;
  timeUs: number;
  periodNs: number;
  frames: PerfFrame[];
}

const HEADER = /^\s*(\d+)\s+(\d+\.\d+):\s+(\d+)\s*$/;
const FRAME = /^\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$/;

/** Reads `perf script -F tid,time,period,ip,sym,dso` (callchains on) line by line into samples. */
export class PerfScriptParser {
  readonly samples: PerfSample[] = [];
  private cur: PerfSample | null = null;

  line(l: string): void {
    const h = HEADER.exec(l);
    if (h) {
      this.cur = { tid: Number(h[1]), timeUs: Number(h[2]) * 1e6, periodNs: Number(h[3]), frames: [] };
      this.samples.push(this.cur);
      return;
    }
    const f = this.cur && FRAME.exec(l);
    if (f) this.cur!.frames.push({ sym: f[1]!, dso: f[2]! });
  }
}

/** perf's sampling rate (Hz): odd, so it does not beat with the servers' millisecond timers. */
export const PERF_HZ = 4999;

/**
 * `perf record` writing to `out`: call graphs, at PERF_HZ, timestamps on the monotonic clock (what
 * the probes and nfsperf's windows are measured with). Add `-p PIDS` or `-- COMMAND`.
 */
export const perfRecordArgs = (out: string): string[] => ['record', '-k', 'CLOCK_MONOTONIC', '-F', String(PERF_HZ), '-g', '-o', out];

/** Whether perf may sample here (installed, and kernel.perf_event_paranoid lets this user count CPU time). */
export const perfCanSample = (): boolean => spawnSync('perf', ['stat', '-e', 'cpu-clock', '-x', ',', 'true'], { stdio: 'ignore' }).status === 0;

/** The samples of a `perf record -g` file, read line by line from `perf script`. */
export async function readPerfData(data: string): Promise<PerfSample[]> {
  const parser = new PerfScriptParser();
  const script = spawn('perf', ['script', '-i', data, '-F', 'tid,time,period,ip,sym,dso'], { stdio: ['ignore', 'pipe', 'ignore'] });
  for await (const l of createInterface({ input: script.stdout })) parser.line(l);
  const code = await new Promise<number | null>((r) => (script.exitCode !== null ? r(script.exitCode) : script.once('exit', r)));
  if (code !== 0) throw new Error(`perf script -i ${data} failed (exit ${code})`);
  return parser.samples;
}

const KERNEL = /^\[kernel/;
/**
 * On this machine's paravirtual guest the cost of entering the kernel lands on the user-space
 * instruction that made the call: a sample in libc's syscall wrapper is kernel time too.
 */
const LIBC = /\/libc\.so/;
/** Native frames that mean a file-system call (Node's fs binding and libuv's fs requests). */
const FS_WRAPPERS = /^(node::fs::|uv_fs_|uv__fs_)/;
/** Native frames that mean a socket call (libuv's stream and UDP I/O, its reads inlined in uv__stream_io; Node's stream writes). */
const SOCKET_WRAPPERS = /^(uv__stream_io|uv__read|uv__write|uv_try_write|uv__try_write|uv__udp|uv_udp_|uv__recvmmsg|node::StreamBase::Write|node::LibuvStreamWrap::DoTryWrite|node::LibuvStreamWrap::DoWrite)/;
/**
 * The event loop's wait for events: idle, busy polling (`net.busyPollUs`) included. libc has no
 * frame pointers, so a stack through its epoll wrapper often ends there: only libuv's poll calls it.
 */
const POLL = /^(uv__io_poll|epoll_p?wait)$/;
const GC = /(CollectGarbage|IncrementalMarking|ScavengeJob|MinorMarkCompact|MarkCompactCollector)/;

/** The script URL of a perf-map JIT frame (`JS:*name url:line:col`), else null. */
export function urlOf(f: PerfFrame): string | null {
  if (!f.sym.startsWith('JS:')) return null;
  const loc = f.sym.slice(f.sym.lastIndexOf(' ') + 1);
  return loc.replace(/:\d+:\d+$/, '');
}

/** The stack as cpu-budget.ts's frames: native ones have no URL. */
const callFrames = (frames: PerfFrame[]): CallFrame[] => frames.map((f) => ({ functionName: f.sym, url: urlOf(f) ?? '' }));

/** The layer of one sample's stack (leaf first), given the project's root as a file URL prefix. */
export function perfLayerOf(frames: PerfFrame[], root: string): Layer {
  const firstJs = frames.findIndex((f) => urlOf(f) !== null);
  const native = firstJs < 0 ? frames : frames.slice(0, firstJs);
  if (native.some((f) => FS_WRAPPERS.test(f.sym))) return 'syscall:fs';
  if (native.some((f) => SOCKET_WRAPPERS.test(f.sym))) return 'syscall:socket';
  // A syscall made by a binding from JavaScript: its JS caller says which kind.
  if (native.some((f) => KERNEL.test(f.dso) || LIBC.test(f.dso))) {
    const caller = firstJs < 0 ? '' : urlOf(frames[firstJs]!)!;
    if (SOCKET_CALLERS.test(caller)) return 'syscall:socket';
    if (FS_CALLERS.test(caller)) return 'syscall:fs';
  }
  // In the poll itself: the innermost frame above the kernel is libc's epoll wrapper or libuv's poll.
  if (POLL.test(native.find((f) => !KERNEL.test(f.dso))?.sym ?? '')) return 'idle';
  if (frames.some((f) => GC.test(f.sym))) return 'gc';
  return projectLayer(callFrames(frames), root) ?? (firstJs < 0 ? 'native' : 'node-internals');
}

/** A finer key than the layer: the project file for time charged to a project folder, else the layer. */
export function perfFileOf(frames: PerfFrame[], root: string): string {
  const layer = perfLayerOf(frames, root);
  return layer.endsWith('/') ? innermostProjectFile(callFrames(frames), root)! : layer;
}

const inside = (windows: readonly Window[], t: number): boolean => windows.some(([a, b]) => t >= a && t <= b);

/** µs per `key` of thread `tid`'s samples inside `windows` (each weighs its period). */
export function perfBudgetBy<K>(samples: readonly PerfSample[], tid: number, root: string, windows: readonly Window[], key: (frames: PerfFrame[], root: string) => K): Map<K, number> {
  const out = new Map<K, number>();
  for (const s of samples) {
    if (s.tid !== tid || !inside(windows, s.timeUs)) continue;
    const k = key(s.frames, root);
    out.set(k, (out.get(k) ?? 0) + s.periodNs / 1000);
  }
  return out;
}

/** µs per layer (every layer, zeros included); `idle` adds the windows' time the thread spent off a CPU. */
export function perfBudgetByLayer(samples: readonly PerfSample[], tid: number, root: string, windows: readonly Window[]): Map<Layer, number> {
  const by = perfBudgetBy(samples, tid, root, windows, perfLayerOf);
  const sampled = [...by.values()].reduce((s, us) => s + us, 0);
  const span = windows.reduce((s, [a, b]) => s + (b - a), 0);
  by.set('idle', (by.get('idle') ?? 0) + Math.max(0, span - sampled));
  return new Map(LAYERS.map((l) => [l, by.get(l) ?? 0]));
}
