/**
 * Anchors: every operation on the host file system starts from a descriptor whose identity was
 * checked, never from a path the kernel would walk again.
 *
 * A path resolved and checked earlier (lstat, realpath) can be redirected before it is used: swap a
 * directory of the path for a symlink and the kernel follows it at the time of use. So each call opens
 * what it acts on — with O_PATH (no I/O, no permission needed to open it) and O_NOFOLLOW — and checks
 * that the descriptor is the object its handle names: device, inode and generation. Whatever the path
 * walk met on the way, the descriptor is then the right object; if it is not, the call fails with
 * ESTALE and nothing was touched. A directory anchor is also checked to lie in its export at that
 * moment (the kernel's own name for the descriptor, `/proc/self/fd/N`, under the export directory),
 * so a directory that a local user moved out of the export is not used.
 *
 * Node has no `openat`/`mkdirat`/`unlinkat`/`renameat`/`linkat`/`fchownat`, so the operations name
 * the anchor through `/proc/self/fd/N` (spelt with the pid, FD_DIR), which Linux resolves as the open descriptor itself (a magic
 * link: nothing of the original path is walked again):
 *   - in a directory: `/proc/self/fd/N/name`, with `name` one component (no `/`, checked by
 *     checkComponent). Only the final component is looked up, and the calls used on it do not follow
 *     a symlink there: lstat, readlink, unlink, rmdir, rename, link (Linux link(2) never follows),
 *     mkdir, symlink, mknod, open with O_CREAT|O_EXCL or O_NOFOLLOW.
 *   - on the object itself: `/proc/self/fd/N` with the *following* calls chmod, chown, utimes, which
 *     stop at the descriptor's object — a symlink's O_PATH descriptor changes the symlink, never its
 *     target (chmod of one fails ENOTSUP, and Linux symlinks have no mode anyway). The `l` variants
 *     would act on the /proc entry itself and are never used on an anchor.
 * There is no `openat2(RESOLVE_BENEATH)` binding that installs without a native build; these are the
 * same guarantees from plain syscalls (measured: open + fstat + readlink + close ≈ 8 µs, done with
 * the synchronous calls because a threadpool round trip costs more than the syscalls).
 */
import type { BigIntStats } from 'node:fs';
import { closeSync, constants, fstatSync, openSync, readlinkSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { VfsError } from './errors.ts';
import type { Export } from './export.ts';

/** Linux O_PATH (not in node's constants): a descriptor that names an object without opening it for I/O. */
export const O_PATH = 0o10000000;

/**
 * The process's descriptors by pid rather than through the `self` symlink: one link fewer for the
 * kernel to follow on every lookup through an anchor (~10 % of an lstat of `…/fd/N/name` here).
 * Also the name a child process must use, whose /proc/self is its own.
 */
const FD_DIR = `/proc/${process.pid}/fd`;

const DIR_FLAGS = O_PATH | constants.O_DIRECTORY | constants.O_NOFOLLOW;
const OBJECT_FLAGS = O_PATH | constants.O_NOFOLLOW;

/** What an anchor must be: the object a handle names (device, inode, generation). */
export interface Identity {
  dev: bigint;
  ino: bigint;
  gen: bigint;
}

/** Birth time is the generation: it survives renames and chmod, and differs for a reused inode. */
export function generationOf(st: BigIntStats): bigint {
  return st.birthtimeNs > 0n ? st.birthtimeNs : 0n;
}

export function identityOf(st: BigIntStats): Identity {
  return { dev: st.dev, ino: st.ino, gen: generationOf(st) };
}

export function sameObject(st: BigIntStats, id: Identity): boolean {
  return st.dev === id.dev && st.ino === id.ino && generationOf(st) === id.gen;
}

/**
 * An open, checked descriptor and the name through which the kernel reaches it. Several owners may
 * share one descriptor (`hold`: an anchor kept between calls, anchor-cache.ts); it is closed
 * when the last closes, so its number — and with it `/proc/self/fd/N` — never names another object
 * while an operation still uses it.
 */
export class Anchor {
  readonly path: string;
  private closed = false;

  constructor(
    readonly fd: number,
    private readonly share: { owners: number } = { owners: 1 },
  ) {
    this.path = `${FD_DIR}/${fd}`;
  }

  /** Another owner of the same descriptor, to close on its own. */
  hold(): Anchor {
    if (this.closed) throw new Error(`anchor ${this.fd} held after close`);
    this.share.owners++;
    return new Anchor(this.fd, this.share);
  }

  /** One entry of an anchored directory (`name` must be a single component); a child process may use it too. */
  at(name: string): string {
    return `${this.path}/${name}`;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (--this.share.owners === 0) closeSync(this.fd);
  }
}

/** ESTALE unless the descriptor is the object `want` names. */
function verify(a: Anchor, want: Identity, op: string, rel: string): void {
  if (!sameObject(fstatSync(a.fd, { bigint: true }), want)) throw new VfsError('ESTALE', { op, path: rel, reason: 'the path now names another object' });
}

/** True when `real` is the export directory or below it. */
export function insideExport(exp: Export, real: string): boolean {
  return real === exp.dir || real.startsWith(exp.dir.endsWith('/') ? exp.dir : `${exp.dir}/`);
}

/** ESTALE unless the descriptor's object lies inside `exp` now. */
export function verifyInside(a: Anchor, exp: Export, op: string, rel: string): void {
  if (!insideExport(exp, readlinkSync(a.path))) throw new VfsError('ESTALE', { op, path: rel, reason: 'no longer inside the export' });
}

/** Opens `hostPath` with `flags` and runs the checks; the descriptor is closed if any fails. */
function openChecked(hostPath: string, flags: number, ...checks: ((a: Anchor) => void)[]): Anchor {
  const a = new Anchor(openSync(hostPath, flags));
  try {
    for (const check of checks) check(a);
  } catch (e) {
    a.close();
    throw e;
  }
  return a;
}

/**
 * Opens the directory `want` names, reached by `hostPath` (its hint path, or an entry of another
 * anchor), checked to be that directory and inside `exp`. ENOENT, ENOTDIR (a symlink where a
 * directory was), ELOOP… are thrown as node:fs errors: callers map errnos.
 */
export function openDirAnchor(exp: Export, hostPath: string, want: Identity, op: string, rel: string): Anchor {
  return openChecked(hostPath, DIR_FLAGS, (a) => verify(a, want, op, rel), (a) => verifyInside(a, exp, op, rel));
}

/**
 * Opens a directory by path when no identity is known for it (a walk, the parent of a named object):
 * it is checked to be a directory inside `exp`, which is all a containing directory must be.
 */
export function openContainedDir(exp: Export, hostPath: string, op: string, rel: string): Anchor {
  return openChecked(hostPath, DIR_FLAGS, (a) => verifyInside(a, exp, op, rel));
}

/** Opens the object (any type, a symlink as itself) that `want` names, reached by `hostPath`. */
export function openObjectAnchor(hostPath: string, want: Identity, op: string, rel: string): Anchor {
  return openChecked(hostPath, OBJECT_FLAGS, (a) => verify(a, want, op, rel));
}

/**
 * Where the object `want` names is now, reached by `hostPath` (its hint path): its attributes and an
 * anchor on it (the caller closes it) when the path still leads to it and it lies inside `exp`,
 * `gone` when the path leads elsewhere or nowhere, `outside` when it leads to it outside the export
 * (moved out, a symlinked directory on the way). The kernel's own name for the descriptor is the
 * object's real location: one readlink instead of a realpath walk. Synchronous: these syscalls cost
 * less than one threadpool round trip.
 */
export function locate(exp: Export, hostPath: string, want: Identity): { st: BigIntStats; anchor: Anchor } | 'gone' | 'outside' {
  let a: Anchor;
  try {
    a = new Anchor(openSync(hostPath, OBJECT_FLAGS));
  } catch {
    return 'gone';
  }
  let found: { st: BigIntStats; anchor: Anchor } | 'gone' | 'outside' = 'gone';
  try {
    const st = fstatSync(a.fd, { bigint: true });
    if (sameObject(st, want)) found = insideExport(exp, readlinkSync(a.path)) ? { st, anchor: a } : 'outside';
    return found;
  } finally {
    if (typeof found === 'string') a.close();
  }
}

/** Runs `fn` with an anchor that is closed when `fn` settles (never while an operation still uses it). */
export async function using<T>(a: Anchor, fn: (a: Anchor) => Promise<T>): Promise<T> {
  try {
    return await fn(a);
  } finally {
    a.close();
  }
}

/**
 * Opens a file for I/O (READ, WRITE, COMMIT, truncate) without following a symlink, and checks the
 * descriptor is the object `want` names: the descriptor, not the path, is then used for every byte.
 */
export async function openVerified(hostPath: string, flags: number, want: Identity, op: string, rel: string): Promise<FileHandle> {
  const h = await open(hostPath, flags | constants.O_NOFOLLOW);
  const st = await h.stat({ bigint: true });
  if (!sameObject(st, want)) {
    await h.close();
    throw new VfsError('ESTALE', { op, path: rel, reason: 'the path now names another file' });
  }
  return h;
}

/**
 * openVerified with the synchronous calls: the descriptor of the object `want` names and its
 * attributes at opening, or ESTALE.
 */
export function openVerifiedSync(hostPath: string, flags: number, want: Identity, op: string, rel: string): { fd: number; st: BigIntStats } {
  const fd = openSync(hostPath, flags | constants.O_NOFOLLOW);
  try {
    const st = fstatSync(fd, { bigint: true });
    if (!sameObject(st, want)) throw new VfsError('ESTALE', { op, path: rel, reason: 'the path now names another file' });
    return { fd, st };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}
