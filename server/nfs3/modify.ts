/**
 * What the modifying procedures share: the checks before a change (export writable, directory,
 * name, permission), weak cache consistency data around it, applying sattr3, and giving created
 * objects the caller's (squashed) identity.
 */
import type { BigIntStats } from 'node:fs';
import path from 'node:path';
import { chmod, constants, type FileHandle, lchown, lutimes, open } from 'node:fs/promises';
import { ACCESS3_EXTEND, ACCESS3_MODIFY, mayDelete } from '../exports/access.ts';
import type { Identity } from '../exports/types.ts';
import { encodePostOpAttr, encodeWccData, fattr3FromStats, nfstime3ToNs, wccAttrFromStats, type wcc_attr, type wcc_data } from '../vfs/attr.ts';
import { cacheKeyOf } from '../vfs/source.ts';
import { checkComponent, type VNode } from '../vfs/vfs.ts';
import type { XdrWriter } from '../../xdr/writer.ts';
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
import { okWriter, type NfsCall } from './procedure.ts';
import { encodePostOpFh3, type diropargs3, type nfs_fh3, type sattr3, type set_time } from './xdr.ts';

const S_ISGID = 0o2000n;

/** True when the server can give files away (chown): it runs as root. */
export const serverIsRoot = (): boolean => process.getuid?.() === 0;

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

/** NFS3ERR_ACCES unless the caller may remove `child` from `dir` (write+search, sticky bit rules). */
export function requireMayDelete(d: DirChange, child: BigIntStats, op: string): void {
  const owned = { mode: Number(d.dir.st.mode), uid: Number(d.dir.st.uid), gid: Number(d.dir.st.gid), isDirectory: true };
  if (!mayDelete(owned, { uid: Number(child.uid) }, d.id)) throw new NfsError(NFS3ERR_ACCES, { op, path: d.dir.rel });
}

/**
 * A new object belongs to the caller: uid from the identity, gid from it too unless the directory is
 * setgid (then the directory's group, as the kernel does). Only a root server can give files away.
 */
export async function ownNew(d: DirChange, abs: string): Promise<void> {
  if (!serverIsRoot()) return;
  const gid = d.dir.st.mode & S_ISGID ? Number(d.dir.st.gid) : d.id.gid;
  await lchown(abs, d.id.uid, gid);
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
 * Size is applied by the caller (it needs the page cache); here it is only checked.
 */
export async function applySattr(call: NfsCall, n: VNode, s: sattr3, op: string, fresh = false): Promise<void> {
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

  try {
    // chown first: it clears setuid/setgid bits that a mode given alongside may set again.
    if (uid !== undefined || gid !== undefined) await lchown(n.abs, uid ?? Number(st.uid), gid ?? Number(st.gid));
    // Symlinks have no mode of their own on Linux; a mode for one is ignored.
    if (s.mode !== undefined && !st.isSymbolicLink()) await chmod(n.abs, s.mode & 0o7777);
    if (anyTime) {
      const now = Date.now() / 1000;
      await lutimes(n.abs, timeArg(s.atime, st.atimeNs, now), timeArg(s.mtime, st.mtimeNs, now));
    }
  } catch (e) {
    throw toNfsError(e, { op, path: n.rel });
  }
}

/** CREATE3resok / MKDIR3resok / SYMLINK3resok / MKNOD3resok: obj, obj_attributes, dir_wcc. */
/**
 * MKDIR, SYMLINK and MKNOD: make a new name in a directory with `make` (given its absolute and
 * export-relative path; returns the attributes to apply), own it as the caller, apply the
 * attributes (`defaultMode` when they name none), and encode diropres3 with the directory's wcc.
 */
export async function createNode(
  call: NfsCall,
  where: diropargs3,
  op: string,
  make: (abs: string, rel: string) => Promise<sattr3>,
  defaultMode?: number,
): Promise<XdrWriter> {
  const d = await beginDirChange(call, where.dir, op);
  const obj = await withPre(d.pre, async () => {
    const { name } = where;
    checkNewName(name, op);
    const abs = path.join(d.dir.abs, name);
    const s = await make(abs, d.dir.rel === '' ? name : `${d.dir.rel}/${name}`);
    await ownNew(d, abs);
    const mode = s.mode ?? defaultMode;
    await applySattr(call, await call.ctx.vfs.child(d.dir, name), { ...s, ...(mode === undefined ? {} : { mode }), uid: undefined, gid: undefined, size: undefined }, op, true);
    return call.ctx.vfs.child(d.dir, name);
  });
  const wcc = await wccOf(call, d.dir, d.pre);
  const w = okWriter();
  encodeDiropres(w, obj, wcc);
  return w;
}

export function encodeDiropres(w: XdrWriter, obj: VNode | undefined, dirWcc: wcc_data): void {
  encodePostOpFh3(w, obj?.fh);
  encodePostOpAttr(w, obj && fattr3FromStats(obj.st, obj.exp));
  encodeWccData(w, dirWcc);
}

/** Opens a regular file for writing without following symlinks, checking it is still `n`. */
export async function openForWrite(n: VNode, op: string): Promise<FileHandle> {
  let h: FileHandle;
  try {
    h = await open(n.abs, constants.O_WRONLY | constants.O_NOFOLLOW);
  } catch (e) {
    throw toNfsError(e, { op, path: n.rel });
  }
  const st = await h.stat({ bigint: true });
  if (st.dev !== n.st.dev || st.ino !== n.st.ino) {
    await h.close();
    throw new NfsError(NFS3ERR_STALE, { op, path: n.rel, reason: 'path now names another file' });
  }
  return h;
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
