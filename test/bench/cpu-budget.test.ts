// The profile classification behind `bench budget`: a synthetic V8 profile whose every sample's
// layer and duration are known, summed inside and outside measurement windows.
import { describe, expect, it } from 'vitest';
import { budgetByLayer, layerOf, type CpuProfile, type ProfileNode } from '../../bench/lib/cpu-budget.ts';

const ROOT = 'file:///srv/pagelife/';
const frame = (functionName: string, url = ''): { functionName: string; url: string } => ({ functionName, url });

// (root) ─┬─ (idle) 2
//         ├─ (garbage collector) 3
//         ├─ (program) 4
//         ├─ onStreamRead node:internal/stream_base_commons 5
//         │    └─ dispatch rpc/dispatch.ts 6
//         │         └─ getattr server/nfs3/getattr.ts 7
//         │              ├─ stat server/vfs/fs.ts 8 ── fstatSync node:fs 9 ── fstat (native) 10
//         │              ├─ subarray node:buffer 11                     (charged to server/nfs3/)
//         │              └─ encode xdr/writer.ts 12
//         └─ send server/reply/reply-path.ts 13
//              ├─ writevGeneric node:internal/stream_base_commons 14 ── writev (native) 15
//              ├─ emit node_modules/pino/lib/proto.js 16                (charged to server/reply/)
//              └─ tcpAck netstack/tcp/sender.ts 17 ── now (native) 18   (not a syscall: netstack/)
const nodes: ProfileNode[] = [
  { id: 1, callFrame: frame('(root)'), children: [2, 3, 4, 5, 13] },
  { id: 2, callFrame: frame('(idle)') },
  { id: 3, callFrame: frame('(garbage collector)') },
  { id: 4, callFrame: frame('(program)') },
  { id: 5, callFrame: frame('onStreamRead', 'node:internal/stream_base_commons'), children: [6] },
  { id: 6, callFrame: frame('dispatch', `${ROOT}rpc/dispatch.ts`), children: [7] },
  { id: 7, callFrame: frame('getattr', `${ROOT}server/nfs3/getattr.ts`), children: [8, 11, 12] },
  { id: 8, callFrame: frame('stat', `${ROOT}server/vfs/fs.ts`), children: [9] },
  { id: 9, callFrame: frame('fstatSync', 'node:fs'), children: [10] },
  { id: 10, callFrame: frame('fstat') },
  { id: 11, callFrame: frame('subarray', 'node:buffer') },
  { id: 12, callFrame: frame('encode', `${ROOT}xdr/writer.ts`) },
  { id: 13, callFrame: frame('send', `${ROOT}server/reply/reply-path.ts`), children: [14, 16, 17] },
  { id: 14, callFrame: frame('writevGeneric', 'node:internal/stream_base_commons'), children: [15] },
  { id: 15, callFrame: frame('writev') },
  { id: 16, callFrame: frame('emit', `${ROOT}node_modules/pino/lib/proto.js`) },
  { id: 17, callFrame: frame('tcpAck', `${ROOT}netstack/tcp/sender.ts`), children: [18] },
  { id: 18, callFrame: frame('now') },
];

/** One sample per entry: [node id, µs until the next sample]; the profile starts at t = 1000. */
function profile(samples: [number, number][]): CpuProfile {
  const timeDeltas = [0, ...samples.slice(0, -1).map(([, d]) => d)];
  const total = samples.reduce((s, [, d]) => s + d, 0);
  return { nodes, samples: samples.map(([id]) => id), timeDeltas, startTime: 1000, endTime: 1000 + total };
}

describe('layerOf', () => {
  it('charges native syscalls by their Node caller, V8 buckets by name, else the innermost project folder', () => {
    expect(layerOf([frame('fstat'), frame('fstatSync', 'node:fs')], ROOT)).toBe('syscall:fs');
    expect(layerOf([frame('open'), frame('open', 'node:internal/fs/promises')], ROOT)).toBe('syscall:fs');
    expect(layerOf([frame('writeBuffer'), frame('handleWriteReq', 'node:internal/stream_base_commons')], ROOT)).toBe('syscall:socket');
    expect(layerOf([frame('(idle)')], ROOT)).toBe('idle');
    expect(layerOf([frame('(garbage collector)')], ROOT)).toBe('gc');
    expect(layerOf([frame('(program)')], ROOT)).toBe('native');
    expect(layerOf([frame('f', `${ROOT}server/telemetry/lifetimes.ts`)], ROOT)).toBe('server/telemetry/');
    expect(layerOf([frame('f', `${ROOT}server/nlm/lock.ts`)], ROOT)).toBe('server/other/');
    expect(layerOf([frame('f', `${ROOT}server/main.ts`)], ROOT)).toBe('server/other/');
    // Another checkout's files are not this tree's.
    expect(layerOf([frame('f', 'file:///srv/other/rpc/dispatch.ts')], ROOT)).toBe('node-internals');
    expect(layerOf([frame('f', `${ROOT}node_modules/fastify/fastify.js`), frame('g', 'node:events')], ROOT)).toBe('node-internals');
  });
});

describe('budgetByLayer', () => {
  const p = profile([
    [2, 100], // idle
    [10, 30], // fstat under server/vfs → syscall:fs
    [11, 20], // node:buffer under server/nfs3
    [12, 5], // xdr
    [15, 40], // writev → syscall:socket
    [16, 7], // pino under server/reply
    [18, 9], // native now() under netstack
    [6, 11], // rpc
    [3, 13], // gc
    [4, 17], // (program)
    [5, 19], // Node's stream code, no project frame
  ]);

  it('sums every sample into its layer, each charged the time to the next sample', () => {
    const b = budgetByLayer(p, ROOT, [[p.startTime, p.endTime]]);
    expect(Object.fromEntries([...b].filter(([, us]) => us > 0))).toEqual({
      idle: 100,
      'syscall:fs': 30,
      'server/nfs3/': 20,
      'xdr/': 5,
      'syscall:socket': 40,
      'server/reply/': 7,
      'netstack/': 9,
      'rpc/': 11,
      gc: 13,
      native: 17,
      'node-internals': 19,
    });
    expect([...b.values()].reduce((s, us) => s + us, 0)).toBe(p.endTime - p.startTime);
  });

  it('counts only the samples whose time falls inside a window', () => {
    // Samples at 1000 (idle), 1100 (fstat), 1130 (subarray), 1150 (encode), 1155 (writev), ...
    const b = budgetByLayer(p, ROOT, [
      [1090, 1140],
      [1155, 1155],
    ]);
    expect(Object.fromEntries([...b].filter(([, us]) => us > 0))).toEqual({ 'syscall:fs': 30, 'server/nfs3/': 20, 'syscall:socket': 40 });
  });
});
