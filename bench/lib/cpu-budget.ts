/**
 * Where a server's CPU time goes, by layer, from a V8 `.cpuprofile` (`node --cpu-prof`): each sample
 * is charged to one layer — a native leaf that is a syscall (socket or file), GC, V8's own buckets
 * ((program), (idle)), else the folder of the innermost frame of the project's own code, else Node's
 * internals and dependencies.
 */

/** The layers, in the order a budget is printed. */
export const LAYERS = [
  'rpc/',
  'xdr/',
  'server/nfs3/',
  'server/vfs/',
  'server/pagecache/',
  'server/reply/',
  'netstack/',
  'server/telemetry/',
  'server/other/',
  'syscall:socket',
  'syscall:fs',
  'gc',
  'native',
  'node-internals',
  'idle',
] as const;
export type Layer = (typeof LAYERS)[number];

/** Project folders charged by name; any other file of the project is `server/other/`. */
const FOLDERS: Layer[] = ['rpc/', 'xdr/', 'server/nfs3/', 'server/vfs/', 'server/pagecache/', 'server/reply/', 'netstack/', 'server/telemetry/'];

export interface CallFrame {
  functionName: string;
  url: string;
}

export interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

/** The parts of a V8 `.cpuprofile` used here; times in µs of the monotonic clock. */
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Node's native bindings are frames without a URL; their JS caller says what kind of syscall they make. */
export const SOCKET_CALLERS = /^node:(net|dgram|internal\/stream_base_commons|internal\/dgram)$/;
export const FS_CALLERS = /^node:(fs|internal\/fs\/.*)$/;

/**
 * The layer of one sample, given its stack from the leaf outwards and the project's root as a
 * file URL prefix (`file:///work/repo/`).
 */
export function layerOf(stack: CallFrame[], root: string): Layer {
  const leaf = stack[0];
  if (!leaf) return 'native';
  switch (leaf.functionName) {
    case '(idle)':
      return 'idle';
    case '(garbage collector)':
      return 'gc';
    case '(program)':
      return 'native';
  }
  if (leaf.url === '') {
    const caller = stack[1]?.url ?? '';
    if (SOCKET_CALLERS.test(caller)) return 'syscall:socket';
    if (FS_CALLERS.test(caller)) return 'syscall:fs';
  }
  return projectLayer(stack, root) ?? 'node-internals';
}

/** The folder of the innermost frame of the project's own code, null if the stack has none. */
export function projectLayer(stack: CallFrame[], root: string): Layer | null {
  const rel = innermostProjectFile(stack, root);
  if (rel === null) return null;
  return FOLDERS.find((d) => rel.startsWith(d)) ?? 'server/other/';
}

/** The path (from the root) of the innermost frame of the project's own code, dependencies aside. */
export function innermostProjectFile(stack: CallFrame[], root: string): string | null {
  for (const f of stack) {
    if (!f.url.startsWith(root)) continue;
    const rel = f.url.slice(root.length);
    if (!rel.startsWith('node_modules/')) return rel;
  }
  return null;
}

/** A finer key than the layer: the project file for time charged to a project folder, else the layer. */
export function fileOf(stack: CallFrame[], root: string): string {
  const layer = layerOf(stack, root);
  return layer.endsWith('/') ? innermostProjectFile(stack, root)! : layer;
}

/** A time window [from, to] in the profile's clock (µs). */
export type Window = readonly [number, number];

/** µs per layer (every layer, zeros included) of the samples inside `windows`. */
export function budgetByLayer(profile: CpuProfile, root: string, windows: readonly Window[]): Map<Layer, number> {
  const out = budgetBy(profile, root, windows, layerOf);
  return new Map(LAYERS.map((l) => [l, out.get(l) ?? 0]));
}

/**
 * µs per `key` of its stack (leaf first) of the samples whose time falls inside any of `windows`. A
 * sample is charged the time up to the next sample (the profile's end for the last), as Chrome's
 * DevTools does.
 */
export function budgetBy<K>(profile: CpuProfile, root: string, windows: readonly Window[], key: (stack: CallFrame[], root: string) => K): Map<K, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const keyCache = new Map<number, K>();
  const keyOfNode = (id: number): K => {
    let k = keyCache.get(id);
    if (k === undefined) {
      const stack: CallFrame[] = [];
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const n = byId.get(at);
        if (n && n.callFrame.functionName !== '(root)') stack.push(n.callFrame);
      }
      k = key(stack, root);
      keyCache.set(id, k);
    }
    return k;
  };
  const out = new Map<K, number>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    const next = i + 1 < profile.samples.length ? t + (profile.timeDeltas[i + 1] ?? 0) : profile.endTime;
    if (!windows.some(([a, b]) => t >= a && t <= b)) continue;
    const k = keyOfNode(profile.samples[i]!);
    out.set(k, (out.get(k) ?? 0) + Math.max(0, next - t));
  }
  return out;
}
