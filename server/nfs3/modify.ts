/**
 * What the modifying procedures share: the checks before a change (export writable, directory,
 * name, permission), weak cache consistency data around it, applying sattr3, and giving created
 * objects the caller's (squashed) identity.
 */
import type { BigIntStats } from 'node:fs';
import { fstatSync } from 'node:fs';
import { chmod, chown, constants, type FileHandle, lstat, utimes } from 'node:fs/promises';
import { ACCESS3_EXTEND, ACCESS3_MODIFY, mayDelete } from '../exports/access.ts';
import type { Identity } from '../exports/types.ts';
import { fattr3FromStats, nfstime3ToNs, wccAttrFromStats, type post_op_attr, type wcc_attr, type wcc_data } from './attr.ts';
import { identityOf, openObjectAnchor, openVerified, openVerifiedSync, using, type Anchor } from '../vfs/anchor.ts';
import type { DescriptorOps } from '../vfs/descriptor.ts';
import { cacheKeyOf } from '../vfs/source.ts';
import { checkComponent, type VNode } from '../vfs/vfs.ts';
import {
  DONT_CHANGE,
  NFS3ERR_ACCES,
  NFS3ERR_EXIST,
  NFS3ERR_FBIG,
  NFS3ERR_INVAL,
  NFS3ERR_ISDIR,
  NFS3ERR_NOTDIR,
  NFS3ERR_PERM,
  NFS3ERR_STALE,
  SET_TO_CLIENT_TIME,
} from './constants.ts';
import { NfsError, toNfsError } from './errors.ts';
import { MAX_FILE_SIZE } from './fsinfo.ts';
import type { NfsCall } from './procedure.ts';
import type { diropres3ok } from './results.ts';
import type { diropargs3, nfs_fh3, sattr3, set_time } from './xdr.ts';

const S_ISGID = 0o2000n;

/** The server's own ids, read once: a server process never changes them, and each read is a syscall. */
const SERVER_UID = process.getuid?.();
const SERVER_EUID = process.geteuid?.();
const SERVER_EGID = process.getegid?.();

/** True when the server can give files away (chown): it runs as root. */
export const serverIsRoot = (): boolean => SERVER_UID === 0;

/** A directory about to change, with its attributes before the change. */
export interface DirChange {
  dir: VNode;
  pre: wcc_attr;
  id: Identity;
}

/**
 * Resolves and checks a directory that an entry will be added to or removed from: export writable
 * (NFS3ERR_ROFS), a directory (NFS3ERR_NOTDIR), `wanted` access on it (NFS3ERR_ACCES).
 */
export async function beginDirChange(call: NfsCall, fh: nfs_fh3, op: string, wanted = ACCESS3_EXTEND): Promise<DirChange> {
  const dir = await call.node(fh);
  const pre = wccAttrFromStats(dir.st);
  return withPre(pre, async () => {
    call.requireWritable(dir.exp, op);
    if (!dir.st.isDirectory()) throw new NfsError(NFS3ERR_NOTDIR, { op, path: dir.rel });
    call.require(dir, wanted, op);
    return { dir, pre, id: call.identity(dir.exp) };
  });
}

/** A name to create: `.` and `..` always exist (NFS3ERR_EXIST, as knfsd). */
export function checkNewName(name: string, op: string): void {
  checkComponent(name, op);
  if (name === '.' || name === '..') throw new NfsError(NFS3ERR_EXIST, { op, name });
}

/** A name to remove or rename: `.` and `..` may not be (NFS3ERR_ACCES, as knfsd). */
export function checkOldName(name: string, op: string): void {
  checkComponent(name, op);
  if (name === '.' || name === '..') throw new NfsError(NFS3ERR_ACCES, { op, name });
}

/** Runs `fn`; a failure carries `pre` so the resfail wcc_data has before-attributes. */
export async function withPre<T>(pre: wcc_attr, fn: () => Promise<T>, extra: Record<string, unknown> = {}): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const err = toNfsError(e);
    throw new NfsError(err.status, { ...err.context, pre: err.context.pre ?? pre, ...extra });
  }
}

/** wcc_data of a changed object: `pre` and its attributes now. */
export async function wccOf(call: NfsCall, n: VNode, pre: wcc_attr): Promise<wcc_data> {
  const now = await call.ctx.vfs.restat(n).catch(() => undefined);
  return { before: pre, after: now && fattr3FromStats(now.st, now.exp) };
}

/**
 * Post-op attributes of a directory from its anchor (fstat of the descriptor the change went
 * through): the directory itself wherever it now is, with no path walked again.
 */
export function anchoredAttrs(dir: VNode, a: Anchor): post_op_attr {
  try {
    return fattr3FromStats(fstatSync(a.fd, { bigint: true }), dir.exp);
  } catch {
    return undefined;
  }
}

/** NFS3ERR_ACCES unless the caller may remove `child` from `dir` (write+search, sticky bit rules). */
export function requireMayDelete(d: DirChange, child: BigIntStats, op: string): void {
  const owned = { mode: Number(d.dir.st.mode), uid: Number(d.dir.st.uid), gid: Number(d.dir.st.gid), isDirectory: true };
  if (!mayDelete(owned, { uid: Number(child.uid) }, d.id)) throw new NfsError(NFS3ERR_ACCES, { op, path: d.dir.rel });
}

/**
 * A new object belongs to the caller: uid from the identity, gid from it too unless the directory is
 * setgid (then the directory's group, as the kernel does). Only a root server can give files away.
 * `obj` names the new object itself (an anchor or descriptor path), never a name that could be
 * swapped for another object between its creation and this chown.
 */
export async function ownNew(d: DirChange, obj: string | DescriptorOps): Promise<void> {
  const owner = ownerOfNew(d);
  if (!owner) return;
  await (typeof obj === 'string' ? chown(obj, owner.uid, owner.gid) : obj.chown(owner.uid, owner.gid));
}

/** The owner ownNew gives a new object in `d`, or undefined when the server cannot give files away. */
export function ownerOfNew(d: DirChange): { uid: number; gid: number } | undefined {
  if (!serverIsRoot()) return undefined;
  return { uid: d.id.uid, gid: d.dir.st.mode & S_ISGID ? Number(d.dir.st.gid) : d.id.gid };
}

/**
 * Whether an object the server creates in `d` is born with the owner ownNew would give it: the
 * kernel makes it the server's effective uid, and its effective gid unless the directory is setgid.
 * Then nothing is given away after creation, as when knfsd creates with the caller's fsuid/fsgid.
 */
export function bornOwned(d: DirChange): boolean {
  const owner = ownerOfNew(d);
  if (!owner) return true;
  const gid = d.dir.st.mode & S_ISGID ? Number(d.dir.st.gid) : SERVER_EGID;
  return owner.uid === SERVER_EUID && owner.gid === gid;
}

const isOwner = (id: Identity, st: BigIntStats): boolean => id.uid === 0 || id.uid === Number(st.uid);

function timeArg(t: set_time, current: bigint, now: number): number {
  if (t.how === SET_TO_CLIENT_TIME) return Number(nfstime3ToNs(t.time)) / 1e9;
  if (t.how === DONT_CHANGE) return Number(current) / 1e9;
  return now;
}

/**
 * Applies sattr3 the way knfsd checks it: mode and client-chosen times need ownership; uid needs
 * root; gid needs ownership and membership; size and server times need ownership or write access.
 * `fresh`: the object was just created by this call, so its creator may set anything but uid/gid.
 * Size is applied by the caller (it needs the page cache); here it is only checked. The changes go
 * through `obj`, a descriptor path that names `n` itself (default: an anchor opened on `n` for
 * this call), never through a path the kernel walks again.
 */
export async function applySattr(call: NfsCall, n: VNode, s: sattr3, op: string, fresh = false, obj?: string | DescriptorOps): Promise<void> {
  const id = call.identity(n.exp);
  const st = n.st;
  const owner = fresh || isOwner(id, st);
  const canWrite = owner || (call.allowed(n, ACCESS3_MODIFY) & ACCESS3_MODIFY) !== 0;
  const uid = s.uid !== undefined && s.uid !== Number(st.uid) ? s.uid : undefined;
  const gid = s.gid !== undefined && s.gid !== Number(st.gid) ? s.gid : undefined;
  if (uid !== undefined && id.uid !== 0) throw new NfsError(NFS3ERR_PERM, { op, path: n.rel, reason: 'chown needs root' });
  if (gid !== undefined && id.uid !== 0 && !(isOwner(id, st) && (id.gid === gid || id.gids.includes(gid)))) {
    throw new NfsError(NFS3ERR_PERM, { op, path: n.rel, reason: 'chgrp to a group the caller is not in' });
  }
  if (s.mode !== undefined && !owner) throw new NfsError(NFS3ERR_PERM, { op, path: n.rel, reason: 'chmod needs ownership' });
  if (s.size !== undefined) {
    if (st.isDirectory()) throw new NfsError(NFS3ERR_ISDIR, { op, path: n.rel });
    if (!st.isFile()) throw new NfsError(NFS3ERR_INVAL, { op, path: n.rel, reason: 'size of a non-regular file' });
    if (!canWrite) throw new NfsError(NFS3ERR_ACCES, { op, path: n.rel, reason: 'truncate needs write access' });
  }
  const clientTime = s.atime.how === SET_TO_CLIENT_TIME || s.mtime.how === SET_TO_CLIENT_TIME;
  const anyTime = s.atime.how !== DONT_CHANGE || s.mtime.how !== DONT_CHANGE;
  if (clientTime && !owner) throw new NfsError(NFS3ERR_PERM, { op, path: n.rel, reason: 'setting times needs ownership' });
  if (anyTime && !canWrite) throw new NfsError(NFS3ERR_ACCES, { op, path: n.rel, reason: 'touch needs write access' });

  if (uid === undefined && gid === undefined && s.mode === undefined && !anyTime) return;

  const apply = async (target: string | DescriptorOps): Promise<void> => {
    // The following calls on a descriptor path stop at its object (anchor.ts): a symlink changes
    // itself. An open file (a new one) is changed through its descriptor: no path at all.
    const t = typeof target === 'string' ? { chown: (u: number, g: number) => chown(target, u, g), chmod: (m: number) => chmod(target, m), utimes: (a: number, m: number) => utimes(target, a, m) } : target;
    // chown first: it clears setuid/setgid bits that a mode given alongside may set again.
    if (uid !== undefined || gid !== undefined) await t.chown(uid ?? Number(st.uid), gid ?? Number(st.gid));
    // Symlinks have no mode of their own on Linux; a mode for one is ignored.
    if (s.mode !== undefined && !st.isSymbolicLink()) await t.chmod(s.mode & 0o7777);
    if (anyTime) {
      const now = Date.now() / 1000;
      await t.utimes(timeArg(s.atime, st.atimeNs, now), timeArg(s.mtime, st.mtimeNs, now));
    }
  };
  try {
    await (obj !== undefined ? apply(obj) : using(call.ctx.vfs.objectAnchor(n, op), (a) => apply(a.path)));
  } catch (e) {
    throw toNfsError(e, { op, path: n.rel });
  }
}

/** What `make` of createNode made: the attributes to apply, and a test that an object is of its kind. */
export interface Made {
  attrs: sattr3;
  isKind(st: BigIntStats): boolean;
}

/**
 * MKDIR, SYMLINK and MKNOD: make a new name in a directory with `make` (given the directory's
 * anchor, the name and its export-relative path), own it as the caller, apply the
 * attributes (`defaultMode` when they name none), and answer diropres3 with the directory's wcc.
 * The new entry must be of the kind made before it is given away: a name swapped in between for
 * another object (a hard link to someone else's file) is refused, not chowned.
 */
export async function createNode(
  call: NfsCall,
  where: diropargs3,
  op: string,
  make: (dir: Anchor, name: string, rel: string) => Promise<Made>,
  defaultMode?: number,
): Promise<diropres3ok> {
  const d = await beginDirChange(call, where.dir, op);
  const obj = await withPre(d.pre, async () => {
    const { name } = where;
    checkNewName(name, op);
    return using(call.ctx.vfs.dirAnchor(d.dir, op), async (dir) => {
      const rel = d.dir.rel === '' ? name : `${d.dir.rel}/${name}`;
      const made = await make(dir, name, rel);
      const st = await lstat(dir.at(name), { bigint: true });
      if (!made.isKind(st)) throw new NfsError(NFS3ERR_STALE, { op, path: rel, reason: 'the new name was replaced' });
      const fresh = call.ctx.vfs.node(d.dir.exp, rel, st);
      await using(openObjectAnchor(dir.at(name), identityOf(st), op, rel), async (obj) => {
        await ownNew(d, obj.path);
        const s = made.attrs;
        const mode = s.mode ?? defaultMode;
        await applySattr(call, fresh, { ...s, ...(mode === undefined ? {} : { mode }), uid: undefined, gid: undefined, size: undefined }, op, true, obj.path);
      });
      return call.ctx.vfs.entry(d.dir, dir, name);
    });
  });
  return diropres(obj, await wccOf(call, d.dir, d.pre));
}

/** The resok of a procedure that made `obj` in a directory whose wcc_data is `dirWcc`. */
export function diropres(obj: VNode | undefined, dirWcc: wcc_data): diropres3ok {
  return { obj: obj?.fh, obj_attributes: obj && fattr3FromStats(obj.st, obj.exp), dir_wcc: dirWcc };
}

/** Opens a regular file for writing without following symlinks, checking it is still `n`. */
export async function openForWrite(n: VNode, op: string): Promise<FileHandle> {
  return openVerified(n.abs, constants.O_WRONLY, identityOf(n.st), op, n.rel).catch((e: unknown) => {
    throw toNfsError(e, { op, path: n.rel });
  });
}

/**
 * openForWrite with the synchronous calls (open + fstat cost less than a threadpool round trip);
 * the descriptor and its attributes at opening. The caller closes it.
 */
export function openForWriteSync(n: VNode, op: string): { fd: number; st: BigIntStats } {
  try {
    return openVerifiedSync(n.abs, constants.O_WRONLY, identityOf(n.st), op, n.rel);
  } catch (e) {
    throw toNfsError(e, { op, path: n.rel });
  }
}

/** Sets a regular file's size; its cached pages are dropped (the tail page and beyond changed). */
export async function truncateFile(call: NfsCall, n: VNode, size: bigint, op: string): Promise<void> {
  if (size > MAX_FILE_SIZE) throw new NfsError(NFS3ERR_FBIG, { op, path: n.rel });
  const key = cacheKeyOf(n.st);
  await call.ctx.coherence.exclusive(key, async () => {
    const h = await openForWrite(n, op);
    try {
      await h.truncate(Number(size));
    } catch (e) {
      throw toNfsError(e, { op, path: n.rel });
    } finally {
      await h.close();
    }
    call.ctx.coherence.drop(key);
  });
}
