/**
 * RFC 1813 §2.6 structures shared by several procedures, each declared once with its decoder and
 * encoder. Structures used by one procedure live in that procedure's file.
 */
import { isUtf8 } from 'node:buffer';
import { XdrError } from '../../xdr/error.ts';
import type { XdrReader } from '../../xdr/reader.ts';
import type { XdrWriter } from '../../xdr/writer.ts';
import { decodeNfstime3, encodeNfstime3, type nfstime3 } from './attr.ts';
import {
  DONT_CHANGE,
  NFS3_DECODE_STRING_MAX,
  NFS3_FHSIZE,
  SET_TO_CLIENT_TIME,
  SET_TO_SERVER_TIME,
  TIME_HOW_VALUES,
} from './constants.ts';

/** nfs_fh3: opaque<NFS3_FHSIZE>. Returned as a view of the call record. */
export type nfs_fh3 = Buffer;

export function decodeNfsFh3(r: XdrReader): nfs_fh3 {
  return r.opaque(NFS3_FHSIZE);
}

export function encodeNfsFh3(w: XdrWriter, fh: nfs_fh3): void {
  w.opaque(fh);
}

/**
 * filename3 / nfspath3 as UTF-8. Bytes that are not UTF-8 are refused (GARBAGE_ARGS) rather than
 * decoded lossily: a lossy name would create or find a different file than the client named.
 */
export function decodeFilename3(r: XdrReader): string {
  const at = r.offset;
  const bytes = r.opaque(NFS3_DECODE_STRING_MAX);
  if (!isUtf8(bytes)) throw new XdrError('name is not UTF-8', at);
  return bytes.toString('utf8');
}

export interface diropargs3 {
  dir: nfs_fh3;
  name: string;
}

export function decodeDiropargs3(r: XdrReader): diropargs3 {
  const dir = decodeNfsFh3(r);
  const name = decodeFilename3(r);
  return { dir, name };
}

export function encodeDiropargs3(w: XdrWriter, a: diropargs3): void {
  encodeNfsFh3(w, a.dir);
  w.string(a.name);
}

export type post_op_fh3 = nfs_fh3 | undefined;

export function encodePostOpFh3(w: XdrWriter, fh: post_op_fh3): void {
  w.optional(fh, encodeNfsFh3);
}

export function decodePostOpFh3(r: XdrReader): post_op_fh3 {
  return r.optional(decodeNfsFh3);
}

/** set_atime / set_mtime: absent (DONT_CHANGE), the server's clock, or the client's time. */
export type set_time = { how: typeof DONT_CHANGE } | { how: typeof SET_TO_SERVER_TIME } | { how: typeof SET_TO_CLIENT_TIME; time: nfstime3 };

export interface sattr3 {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: bigint;
  atime: set_time;
  mtime: set_time;
}

function decodeSetTime(r: XdrReader): set_time {
  const how = r.enumOf<0 | 1 | 2>(TIME_HOW_VALUES, 'time_how');
  if (how === SET_TO_CLIENT_TIME) return { how, time: decodeNfstime3(r) };
  return how === SET_TO_SERVER_TIME ? { how } : { how: DONT_CHANGE };
}

function encodeSetTime(w: XdrWriter, t: set_time): void {
  w.uint32(t.how);
  if (t.how === SET_TO_CLIENT_TIME) encodeNfstime3(w, t.time);
}

export function decodeSattr3(r: XdrReader): sattr3 {
  const mode = r.optional((x) => x.uint32());
  const uid = r.optional((x) => x.uint32());
  const gid = r.optional((x) => x.uint32());
  const size = r.optional((x) => x.uint64());
  const atime = decodeSetTime(r);
  const mtime = decodeSetTime(r);
  return { mode, uid, gid, size, atime, mtime };
}

export function encodeSattr3(w: XdrWriter, a: sattr3): void {
  w.optional(a.mode, (x, v) => x.uint32(v));
  w.optional(a.uid, (x, v) => x.uint32(v));
  w.optional(a.gid, (x, v) => x.uint32(v));
  w.optional(a.size, (x, v) => x.uint64(v));
  encodeSetTime(w, a.atime);
  encodeSetTime(w, a.mtime);
}

export const EMPTY_SATTR3: sattr3 = { atime: { how: DONT_CHANGE }, mtime: { how: DONT_CHANGE } };
