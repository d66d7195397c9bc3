// The perf-sample classification behind `bench budget --sampler perf`: stacks in the form
// `perf script -F tid,time,period,ip,sym,dso` prints them (trimmed from a real GETATTR run), each
// charged to its layer, inside and outside measurement windows.
import { describe, expect, it } from 'vitest';
import { perfBudgetByLayer, perfLayerOf, PerfScriptParser, type PerfFrame } from '../../bench/lib/perf-budget.ts';

const ROOT = 'file:///srv/pagelife/';
const MAP = '/tmp/perf-100.map';
const NODE = '/usr/bin/node';
const LIBC = '/usr/lib/x86_64-linux-gnu/libc.so.6';
const K = '[kernel.kallsyms]';

/** One sample of thread `tid` at `t` s, weighing `periodNs`, with frames [sym, dso] leaf first. */
function sample(tid: number, t: string, periodNs: number, frames: [string, string][]): string {
  return [`${tid} ${t}:     ${periodNs} `, ...frames.map(([sym, dso], i) => `\t    ${(0x1000 + i).toString(16)} ${sym} (${dso})`), ''].join('\n');
}

const EVENT_LOOP: [string, string][] = [
  ['uv__io_poll', NODE],
  ['uv_run', NODE],
  ['node::SpinEventLoopInternal', NODE],
];
const ON_READ: [string, string][] = [
  [`JS:^dispatch ${ROOT}rpc/dispatch.ts:1:882`, MAP],
  [`JS:^onStreamRead node:internal/stream_base_commons:168:22`, MAP],
  ['Builtins_JSEntry', NODE],
  ['node::LibuvStreamWrap::OnUvRead', NODE],
  ['uv__read', NODE],
  ['uv__stream_io', NODE],
  ...EVENT_LOOP,
];

const SCRIPT = [
  // readlink from the handle check: a file syscall, kernel and libc wrapper alike
  sample(100, '10.000100', 200_000, [
    ['pvm_irq_enable', K],
    ['do_syscall_64', K],
    ['__GI___readlink', LIBC],
    ['uv_fs_readlink', NODE],
    ['node::fs::ReadLink', NODE],
    ['Builtins_CallApiCallback', NODE],
    ['JS:*readlinkSync node:fs:1726:22', MAP],
    [`JS:^whereNow ${ROOT}server/vfs/vfs.ts:1:3419`, MAP],
    ...ON_READ,
  ]),
  // the socket read, libuv's read inlined in uv__stream_io: no JavaScript on the stack
  sample(100, '10.000300', 100_000, [
    ['tcp_recvmsg_locked', K],
    ['read', LIBC],
    ['uv__stream_io', NODE],
    ...EVENT_LOOP,
  ]),
  // the reply's write, from Node's stream code under a microtask of the project's socket edge
  sample(100, '10.000400', 100_000, [
    ['__GI___libc_write', LIBC],
    ['non-virtual thunk to node::LibuvStreamWrap::DoTryWrite(uv_buf_t**, unsigned long*)', NODE],
    ['node::StreamBase::Write', NODE],
    ['JS:^handleWriteReq node:internal/stream_base_commons:46:24', MAP],
    [`JS:^ ${ROOT}server/reply/socket-stream.ts:1:834`, MAP],
  ]),
  // an inline cache miss inside the project's TCP model: the builtin is charged to its caller
  sample(100, '10.000500', 50_000, [
    ['Builtins_KeyedLoadIC_Megamorphic', NODE],
    [`JS:*tcpAck ${ROOT}netstack/tcp/sender.ts:12:3`, MAP],
    ['JS:^processImmediate node:internal/timers:438:28', MAP],
  ]),
  // a kernel page fault in project code is not a syscall
  sample(100, '10.000600', 50_000, [
    ['asm_exc_page_fault', K],
    [`JS:*encode ${ROOT}xdr/writer.ts:3:1`, MAP],
    ...ON_READ,
  ]),
  // the event loop's wait (busy polling too) is idle, in the kernel or not
  sample(100, '10.000700', 60_000, [['ep_poll', K], ['epoll_pwait', LIBC], ...EVENT_LOOP]),
  sample(100, '10.000750', 30_000, [['epoll_pwait', LIBC], ...EVENT_LOOP]),
  // the same with the stack ending in libc (no frame pointers there)
  sample(100, '10.000760', 10_000, [['do_epoll_wait', K], ['epoll_pwait', LIBC]]),
  // a scavenge, wherever it started
  sample(100, '10.000800', 30_000, [
    ['v8::internal::ScavengerCollector::CollectGarbage', NODE],
    ['v8::internal::Heap::CollectGarbage', NODE],
    [`JS:*node ${ROOT}server/vfs/vfs.ts:1:10`, MAP],
  ]),
  // Node's callback machinery, no JavaScript
  sample(100, '10.000900', 20_000, [
    ['v8::internal::JSFunction::EnsureHasInitialMap', NODE],
    ['node::Environment::CheckImmediate', NODE],
    ['uv__run_check', NODE],
    ['uv_run', NODE],
  ]),
  // Node's own JavaScript, no project frame
  sample(100, '10.001000', 10_000, [['JS:*emit node:events:470:10', MAP], ...EVENT_LOOP]),
  // another thread (a libuv worker) and a sample outside the window
  sample(101, '10.000500', 999_000, [['uv__fs_work', NODE]]),
  sample(100, '11.000000', 999_000, [['epoll_pwait', LIBC]]),
].join('\n');

const parse = (text: string): PerfScriptParser => {
  const p = new PerfScriptParser();
  for (const l of text.split('\n')) p.line(l);
  return p;
};

describe('PerfScriptParser', () => {
  it('reads each sample: thread, time in µs, period, and its frames leaf first', () => {
    const { samples } = parse(SCRIPT);
    expect(samples).toHaveLength(13);
    expect(samples[0]).toMatchObject({ tid: 100, timeUs: 10_000_100, periodNs: 200_000 });
    expect(samples[0]!.frames[0]).toEqual({ sym: 'pvm_irq_enable', dso: K });
    expect(samples[2]!.frames[1]!.sym).toBe('non-virtual thunk to node::LibuvStreamWrap::DoTryWrite(uv_buf_t**, unsigned long*)');
    expect(samples[11]).toMatchObject({ tid: 101, frames: [{ sym: 'uv__fs_work', dso: NODE }] });
  });
});

describe('perfLayerOf', () => {
  const f = (sym: string, dso = NODE): PerfFrame => ({ sym, dso });
  it('charges syscalls by the wrapper that made them, or their JS caller; the rest by the innermost project frame', () => {
    expect(perfLayerOf([f('statx', LIBC), f('uv__fs_statx'), f('uv_fs_fstat'), f('JS:*fstatSync node:fs:1631:1', MAP)], ROOT)).toBe('syscall:fs');
    expect(perfLayerOf([f('do_syscall_64', K), f('JS:*writevGeneric node:internal/stream_base_commons:123:23', MAP)], ROOT)).toBe('syscall:socket');
    // Without a kernel or libc frame, a builtin under Node's socket code is that code's own work.
    expect(perfLayerOf([f('Builtins_LoadIC'), f('JS:*Socket._write node:net:969:35', MAP)], ROOT)).toBe('node-internals');
    expect(perfLayerOf([f(`JS:*f ${ROOT}server/nlm/lock.ts:1:1`, MAP)], ROOT)).toBe('server/other/');
    expect(perfLayerOf([f(`JS:*f ${ROOT}node_modules/pino/lib/proto.js:1:1`, MAP), f(`JS:*g ${ROOT}server/telemetry/lifetimes.ts:1:1`, MAP)], ROOT)).toBe('server/telemetry/');
    // Another checkout's files are not this tree's.
    expect(perfLayerOf([f('JS:*f file:///srv/other/rpc/dispatch.ts:1:1', MAP)], ROOT)).toBe('node-internals');
  });
});

describe('perfBudgetByLayer', () => {
  it("sums the main thread's samples inside the windows by layer, and counts time without samples as idle", () => {
    const { samples } = parse(SCRIPT);
    // 10.000000 s to 10.002000 s: 2,000 µs, of which the samples above weigh 660 µs.
    const b = perfBudgetByLayer(samples, 100, ROOT, [[10_000_000, 10_002_000]]);
    expect(Object.fromEntries([...b].filter(([, us]) => us > 0))).toEqual({
      'syscall:fs': 200,
      'syscall:socket': 200,
      'netstack/': 50,
      'xdr/': 50,
      idle: 100 + (2000 - 660),
      gc: 30,
      native: 20,
      'node-internals': 10,
    });
  });

  it('leaves out samples outside every window', () => {
    const { samples } = parse(SCRIPT);
    const b = perfBudgetByLayer(samples, 100, ROOT, [
      [10_000_050, 10_000_150],
      [10_000_450, 10_000_550],
    ]);
    expect(Object.fromEntries([...b].filter(([, us]) => us > 0))).toEqual({ 'syscall:fs': 200, 'netstack/': 50 });
  });
});
