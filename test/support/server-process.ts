import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(REPO_ROOT, 'bin/pagelife.js');
/** What `npm start` runs: the bundle `npm run build` writes. */
export const BUNDLE = path.join(REPO_ROOT, 'build/pagelife.mjs');

/** The ports a server announced in its ready line. */
export interface ReadyPorts {
  nfs: number;
  mount: number;
  portmap: number | 'off';
  http: number;
  /** With `--wire`: the wire's UDP port. */
  wire?: number;
}

export interface ServerProcess {
  ports: ReadyPorts;
  proc: ChildProcess;
  /** Everything the process wrote so far (stdout and stderr), for assertions and failure messages. */
  output(): string;
  /** SIGTERM, then SIGKILL after a grace period; resolves when the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const READY = /^pagelife ready nfs=(\d+) mount=(\d+) portmap=(\d+|off) http=(\d+)(?: wire=(\d+))?$/m;

/**
 * Starts `pagelife serve ARGS` as a child process (the same entry point users run) and resolves once
 * it prints its ready line. Ports default to 0 (any free port) and portmap to off unless ARGS say otherwise.
 */
export async function startServer(args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; nodeArgs?: string[]; entry?: string } = {}): Promise<ServerProcess> {
  const defaults: string[] = [];
  const has = (flag: string) => args.includes(flag);
  if (!has('--nfs-port')) defaults.push('--nfs-port', '0');
  if (!has('--mount-port')) defaults.push('--mount-port', '0');
  if (!has('--portmap')) defaults.push('--portmap', 'off');
  if (!has('--http-port')) defaults.push('--http-port', '0');
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), opts.entry ?? BIN, 'serve', ...defaults, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const ports = await new Promise<ReadyPorts>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`server not ready after ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const check = () => {
      const m = READY.exec(out);
      if (!m) return;
      cleanup();
      resolve({ nfs: Number(m[1]), mount: Number(m[2]), portmap: m[3] === 'off' ? 'off' : Number(m[3]), http: Number(m[4]), ...(m[5] ? { wire: Number(m[5]) } : {}) });
    };
    const onExit = (code: number | null) => fail(new Error(`server exited (${code}) before ready:\n${out}`));
    const fail = (e: Error) => {
      cleanup();
      proc.kill('SIGKILL');
      reject(e);
    };
    const cleanup = () => {
      clearTimeout(timer);
      proc.stdout!.off('data', check);
      proc.off('exit', onExit);
    };
    proc.stdout!.on('data', check);
    proc.once('exit', onExit);
  });
  return {
    ports,
    proc,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const gone = once(proc, 'exit');
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(timer);
    },
  };
}
