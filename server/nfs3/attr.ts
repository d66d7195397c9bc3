/**
 * RFC 1813 §2.6 attribute structures, each declared once: its typed form, its encoder and decoder.
 */
import { constants, type BigIntStats } from 'node:fs';
import type { XdrReader } from '../../xdr/reader.ts';
import type { XdrWriter } from '../../xdr/writer.ts';
import { FTYPE3_VALUES, NF3BLK, NF3CHR, NF3DIR, NF3FIFO, NF3LNK, NF3REG, NF3SOCK, type ftype3 } from './constants.ts';
import type { Export } from '../vfs/export.ts';

export interface nfstime3 {
  seconds: number;
  nseconds: number;
}

export interface specdata3 {
  specdata1: number;
  specdata2: number;
}

export interface fattr3 {
  type: ftype3;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: bigint;
  used: bigint;
  rdev: specdata3;
  fsid: bigint;
  fileid: bigint;
  atime: nfstime3;
  mtime: nfstime3;
  ctime: nfstime3;
}

/** Encoded size of fattr3 (READDIRPLUS budgets with it). */
export const FATTR3_SIZE = 84;

export type post_op_attr = fattr3 | undefined;

export interface wcc_attr {
  size: bigint;
  mtime: nfstime3;
  ctime: nfstime3;
}

export type pre_op_attr = wcc_attr | undefined;

export interface wcc_data {
  before: pre_op_attr;
  after: post_op_attr;
}

const { S_IFMT, S_IFREG, S_IFDIR, S_IFLNK, S_IFBLK, S_IFCHR, S_IFSOCK } = constants;

const NS_PER_S = 1_000_000_000n;
const U32 = 0xffff_ffffn;

/**
 * The low 32 bits of a non-negative bigint as a number. Values that already fit (ids, counts, modes,
 * times before 2106) take no BigInt operation: each such operation allocates, and fattr3 has ~20.
 */
function low32(v: bigint): number {
  return v >= 0n && v <= U32 ? Number(v) : Number(v & U32);
}

export function nfstime3FromNs(ns: bigint): nfstime3 {
  // Times before 1970 do not fit nfstime3's unsigned seconds: clamp to the epoch.
  if (ns < 0n) return { seconds: 0, nseconds: 0 };
  return { seconds: low32(ns / NS_PER_S), nseconds: Number(ns % NS_PER_S) };
}

export function nfstime3ToNs(t: nfstime3): bigint {
  return BigInt(t.seconds) * NS_PER_S + BigInt(t.nseconds);
}

/**
 * The object's type from its mode as a number: BigIntStats' isFile() and the like make three BigInts
 * per question, and a call asks several.
 */
export function ftype3Of(st: BigIntStats): ftype3 {
  switch (Number(st.mode) & S_IFMT) {
    case S_IFREG:
      return NF3REG;
    case S_IFDIR:
      return NF3DIR;
    case S_IFLNK:
      return NF3LNK;
    case S_IFBLK:
      return NF3BLK;
    case S_IFCHR:
      return NF3CHR;
    case S_IFSOCK:
      return NF3SOCK;
    default:
      return NF3FIFO;
  }
}

/** Linux dev_t encoding (glibc gnu_dev_major/minor). */
export function rdevOf(rdev: bigint): specdata3 {
  if (rdev === 0n) return { specdata1: 0, specdata2: 0 };
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn & U32));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn & U32));
  return { specdata1: major, specdata2: minor };
}

/**
 * fileid3: the inode number, which is what the client compares across LOOKUP, READDIR and GETATTR.
 * Objects on another device below the export (a mount point) get their device folded in so they do
 * not collide with the export's own inodes. Never 0 (clients treat 0 as invalid).
 */
export function fileidOf(exp: Export, dev: bigint, ino: bigint): bigint {
  const id = dev === exp.dev ? ino : (ino ^ (dev << 40n) ^ (dev >> 24n)) & ((1n << 64n) - 1n);
  return id === 0n ? 1n : id;
}

export function fattr3FromStats(st: BigIntStats, exp: Export): fattr3 {
  return {
    type: ftype3Of(st),
    mode: low32(st.mode) & 0o7777,
    nlink: low32(st.nlink),
    uid: low32(st.uid),
    gid: low32(st.gid),
    size: st.size,
    used: st.blocks * 512n,
    rdev: rdevOf(st.rdev),
    fsid: exp.fsid,
    fileid: fileidOf(exp, st.dev, st.ino),
    atime: nfstime3FromNs(st.atimeNs),
    mtime: nfstime3FromNs(st.mtimeNs),
    ctime: nfstime3FromNs(st.ctimeNs),
  };
}

export function wccAttrFromStats(st: BigIntStats): wcc_attr {
  return { size: st.size, mtime: nfstime3FromNs(st.mtimeNs), ctime: nfstime3FromNs(st.ctimeNs) };
}

export function encodeNfstime3(w: XdrWriter, t: nfstime3): void {
  w.uint32(t.seconds).uint32(t.nseconds);
}

export function decodeNfstime3(r: XdrReader): nfstime3 {
  const seconds = r.uint32();
  const nseconds = r.uint32();
  return { seconds, nseconds };
}

export function encodeFattr3(w: XdrWriter, a: fattr3): void {
  w.uint32(a.type).uint32(a.mode).uint32(a.nlink).uint32(a.uid).uint32(a.gid);
  w.uint64(a.size).uint64(a.used);
  w.uint32(a.rdev.specdata1).uint32(a.rdev.specdata2);
  w.uint64(a.fsid).uint64(a.fileid);
  encodeNfstime3(w, a.atime);
  encodeNfstime3(w, a.mtime);
  encodeNfstime3(w, a.ctime);
}

export function decodeFattr3(r: XdrReader): fattr3 {
  const type = r.enumOf<ftype3>(FTYPE3_VALUES, 'ftype3');
  const mode = r.uint32();
  const nlink = r.uint32();
  const uid = r.uint32();
  const gid = r.uint32();
  const size = r.uint64();
  const used = r.uint64();
  const rdev = { specdata1: r.uint32(), specdata2: r.uint32() };
  const fsid = r.uint64();
  const fileid = r.uint64();
  const atime = decodeNfstime3(r);
  const mtime = decodeNfstime3(r);
  const ctime = decodeNfstime3(r);
  return { type, mode, nlink, uid, gid, size, used, rdev, fsid, fileid, atime, mtime, ctime };
}

export function encodePostOpAttr(w: XdrWriter, a: post_op_attr): void {
  w.optional(a, encodeFattr3);
}

export function decodePostOpAttr(r: XdrReader): post_op_attr {
  return r.optional(decodeFattr3);
}

export function encodeWccAttr(w: XdrWriter, a: wcc_attr): void {
  w.uint64(a.size);
  encodeNfstime3(w, a.mtime);
  encodeNfstime3(w, a.ctime);
}

export function decodeWccAttr(r: XdrReader): wcc_attr {
  const size = r.uint64();
  const mtime = decodeNfstime3(r);
  const ctime = decodeNfstime3(r);
  return { size, mtime, ctime };
}

export function encodePreOpAttr(w: XdrWriter, a: pre_op_attr): void {
  w.optional(a, encodeWccAttr);
}

export function decodePreOpAttr(r: XdrReader): pre_op_attr {
  return r.optional(decodeWccAttr);
}

export function encodeWccData(w: XdrWriter, d: wcc_data): void {
  encodePreOpAttr(w, d.before);
  encodePostOpAttr(w, d.after);
}

export function decodeWccData(r: XdrReader): wcc_data {
  const before = decodePreOpAttr(r);
  const after = decodePostOpAttr(r);
  return { before, after };
}
