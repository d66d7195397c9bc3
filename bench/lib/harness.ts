/**
 * What the benchmarks share: the child processes they start (stopped at the end, on failure too),
 * free ports, and nfs-ganesha, the reference peer.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { open, readFile, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BenchUsageError } from '../index.ts';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const GANESHA_TEMPLATE = path.join(REPO, 'bench/ganesha/ganesha.conf.template');

/** A positive integer flag value; a BenchUsageError naming the bench and flag otherwise. */
export function positiveInt(bench: string, flag: string, v: string | undefined): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new BenchUsageError(`bench ${bench}: ${flag} wants a positive integer, got ${v}`);
  return n;
}

export const say = (line: string): void => void process.stdout.write(`${line}\n`);
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** A deadline for Promise.race that does not keep the process alive once the race is decided. */
export const deadline = (ms: number): Promise<null> => new Promise((r) => setTimeout(() => r(null), ms).unref());


/** Child processes started by the bench; stop() ends each (TERM, then KILL), in reverse order. */
export class Processes {
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
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export function rpcbindUp(): boolean {
  return spawnSync('rpcinfo', ['-p', '127.0.0.1'], { stdio: 'ignore', timeout: 5000 }).status === 0;
}

/** A running nfs-ganesha: its ports, and its child process. */
export interface Ganesha {
  child: ChildProcess;
  nfsPort: number;
  mountPort: number;
}

/**
 * nfs-ganesha on free ports exporting `exportDir` (read-only unless `rw`), its files in `dir`; null
 * (with a line saying why) when it cannot run here.
 */
export async function startGanesha(procs: Processes, dir: string, exportDir: string, rw = false): Promise<Ganesha | null> {
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
  for (const [k, v] of Object.entries({ ...ports, EXPORT_PATH: exportDir, ACCESS_TYPE: rw ? 'RW' : 'RO' })) conf = conf.replaceAll(`@${k}@`, String(v));
  const confFile = path.join(dir, 'ganesha.conf');
  await writeFile(confFile, conf);
  const log = path.join(dir, 'ganesha.log');
  const child = procs.start('ganesha', 'ganesha.nfsd', ['-F', '-L', log, '-f', confFile, '-p', path.join(dir, 'ganesha.pid')]);
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) break;
    if ((await canConnect(ports.NFS_PORT)) && (await canConnect(ports.MNT_PORT))) {
      return { child, nfsPort: ports.NFS_PORT, mountPort: ports.MNT_PORT };
    }
    await sleep(100);
  }
  const logTail = existsSync(log) ? (await readFile(log, 'utf8')).split('\n').slice(-8).join('\n') : '';
  await procs.stop(child);
  say(`# ganesha: skipped: it did not start listening on ${ports.NFS_PORT}/${ports.MNT_PORT}: ${Processes.tail(child)} ${logTail}`.replaceAll('\n', '\n# '));
  return null;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const READY = /^pagelife ready nfs=(\d+) mount=(\d+) portmap=off http=(\d+)/m;

/** A running `pagelife serve`: its ports, and its child process. */
export interface Pagelife {
  child: ChildProcess;
  nfsPort: number;
  mountPort: number;
  httpPort: number;
}

/** The sources' entry point of a checkout (tsx): what tests run, and profiles attribute by file. */
export const sourcesEntry = (repo = REPO): string => path.join(repo, 'bin/pagelife.js');

/**
 * What `npm start` runs in a checkout: its bundle, built now (`npm run build`); a checkout from
 * before the bundle runs its sources.
 */
export function startEntry(repo = REPO): string {
  const pkg = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  if (!pkg.scripts?.build) return sourcesEntry(repo);
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: repo, stdio: 'inherit' });
  return path.join(repo, 'build/pagelife.mjs');
}

/**
 * `pagelife serve ARGS` on free ports without a portmapper, once it prints its ready line; `repo`
 * names another checkout to run (a baseline for an A/B in one run), `entry` its bundle or sources.
 */
export async function startPagelife(procs: Processes, name: string, serveArgs: string[], nodeArgs: string[] = [], repo = REPO, entry = sourcesEntry(repo)): Promise<Pagelife> {
  const args = ['serve', '--nfs-port', '0', '--mount-port', '0', '--portmap', 'off', '--http-port', '0', '--log-level', 'warn', ...serveArgs];
  const { child, m } = await startReady(procs, name, process.execPath, [...nodeArgs, entry, ...args], READY);
  return { child, nfsPort: Number(m[1]), mountPort: Number(m[2]), httpPort: Number(m[3]) };
}

/** Starts `cmd` and waits (60 s at most) for the output line `ready` matches; throws with its output's tail if it ends or times out first. */
export async function startReady(procs: Processes, name: string, cmd: string, args: string[], ready: RegExp): Promise<{ child: ChildProcess; m: RegExpMatchArray }> {
  let out = '';
  let matched: (m: RegExpMatchArray) => void = () => undefined;
  const got = new Promise<RegExpMatchArray>((r) => (matched = r));
  const child = procs.start(name, cmd, args, (l) => {
    out += `${l}\n`;
    const m = ready.exec(out);
    if (m) matched(m);
  });
  const exited = new Promise<null>((r) => child.once('exit', () => r(null)));
  const m = await Promise.race([got, exited, deadline(60_000)]);
  if (!m) throw new Error(`${name} did not become ready:\n${Processes.tail(child)}`);
  return { child, m };
}

/** Writes `sizeMiB` MiB of random bytes to `file` (nothing to compress or deduplicate). */
export async function writeRandomFile(file: string, sizeMiB: number): Promise<void> {
  const fh = await open(file, 'w');
  try {
    const chunk = Buffer.alloc(4 << 20);
    for (let left = sizeMiB << 20; left > 0; left -= chunk.length) {
      randomFillSync(chunk);
      await fh.write(chunk, 0, Math.min(left, chunk.length));
    }
  } finally {
    await fh.close();
  }
}
