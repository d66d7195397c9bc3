/**
 * RFC 1813 §3.3 results: for every procedure its resok and resfail structures, each with one encoder
 * and one decoder, and the result as a whole (the nfsstat3, then the arm it selects). The handlers'
 * results are encoded with these (procedure.ts); the replay and the test clients decode with the same
 * functions, so the layout of a result is written here and nowhere else.
 *
 * All results share one module, where each procedure's arguments live beside its handler: the
 * readers of results (replay, test clients) need every one of them, not the handlers' file-system code.
 */
import { xdrPad, type XdrReader } from '../../xdr/reader.ts';
import { XdrWriter } from '../../xdr/writer.ts';
import {
  decodeFattr3,
  decodeNfstime3,
  decodePostOpAttr,
  decodeWccData,
  encodeFattr3,
  encodeNfstime3,
  encodePostOpAttr,
  encodeWccData,
  FATTR3_SIZE,
  type fattr3,
  type nfstime3,
  type post_op_attr,
  type wcc_data,
} from './attr.ts';
import {
  NFS3_COOKIEVERFSIZE,
  NFS3_DECODE_STRING_MAX,
  NFS3_OK,
  NFS3_WRITEVERFSIZE,
  NFSSTAT3_VALUES,
  STABLE_HOW_VALUES,
  type NFSPROC3,
  type nfsstat3,
  type stable_how,
} from './constants.ts';
import { decodeFilename3, decodeNfsFh3, decodePostOpFh3, encodeNfsFh3, encodePostOpFh3, type nfs_fh3, type post_op_fh3 } from './xdr.ts';

/** A structure's encoder and decoder, paired. */
export interface XdrCodec<T> {
  encode(w: XdrWriter, v: T): void;
  decode(r: XdrReader): T;
}

/** The codec of a procedure's result: its two arms. */
export interface Nfs3ResultCodec<Ok, Fail> {
  resok: XdrCodec<Ok>;
  resfail: XdrCodec<Fail>;
}

/** A procedure's result: NFS3_OK with the resok arm, or a failure status with the resfail arm. */
export type Nfs3Res<Ok, Fail> = { status: typeof NFS3_OK; resok: Ok } | { status: Exclude<nfsstat3, typeof NFS3_OK>; resfail: Fail };

export type ResokOf<C> = C extends Nfs3ResultCodec<infer Ok, unknown> ? Ok : never;
export type ResfailOf<C> = C extends Nfs3ResultCodec<unknown, infer Fail> ? Fail : never;

export function encodeNfs3Res<Ok, Fail>(w: XdrWriter, c: Nfs3ResultCodec<Ok, Fail>, res: Nfs3Res<Ok, Fail>): void {
  w.uint32(res.status);
  if (res.status === NFS3_OK) c.resok.encode(w, res.resok);
  else c.resfail.encode(w, res.resfail);
}

export function decodeNfs3Res<Ok, Fail>(r: XdrReader, c: Nfs3ResultCodec<Ok, Fail>): Nfs3Res<Ok, Fail> {
  const status = r.enumOf<nfsstat3>(NFSSTAT3_VALUES, 'nfsstat3');
  if (status === NFS3_OK) return { status, resok: c.resok.decode(r) };
  return { status, resfail: c.resfail.decode(r) };
}

const codec = <T>(encode: (w: XdrWriter, v: T) => void, decode: (r: XdrReader) => T): XdrCodec<T> => ({ encode, decode });
const result = <Ok, Fail>(resok: XdrCodec<Ok>, resfail: XdrCodec<Fail>): Nfs3ResultCodec<Ok, Fail> => ({ resok, resfail });

/** A resfail of `void` (GETATTR). */
const VOID = codec<undefined>(
  () => undefined,
  () => undefined,
);

// §3.3.1 GETATTR

export interface GETATTR3resok {
  obj_attributes: fattr3;
}

export function encodeGETATTR3resok(w: XdrWriter, v: GETATTR3resok): void {
  encodeFattr3(w, v.obj_attributes);
}

export function decodeGETATTR3resok(r: XdrReader): GETATTR3resok {
  return { obj_attributes: decodeFattr3(r) };
}

export type GETATTR3resfail = undefined;

export const GETATTR3res = result(codec(encodeGETATTR3resok, decodeGETATTR3resok), VOID);

// §3.3.2 SETATTR: resok and resfail are both the object's wcc_data.

export interface SETATTR3resok {
  obj_wcc: wcc_data;
}
export type SETATTR3resfail = SETATTR3resok;

export function encodeSETATTR3resok(w: XdrWriter, v: SETATTR3resok): void {
  encodeWccData(w, v.obj_wcc);
}

export function decodeSETATTR3resok(r: XdrReader): SETATTR3resok {
  return { obj_wcc: decodeWccData(r) };
}

const SETATTR3_ARM = codec(encodeSETATTR3resok, decodeSETATTR3resok);
export const SETATTR3res = result(SETATTR3_ARM, SETATTR3_ARM);

// §3.3.3 LOOKUP

export interface LOOKUP3resok {
  object: nfs_fh3;
  obj_attributes: post_op_attr;
  dir_attributes: post_op_attr;
}

export function encodeLOOKUP3resok(w: XdrWriter, v: LOOKUP3resok): void {
  encodeNfsFh3(w, v.object);
  encodePostOpAttr(w, v.obj_attributes);
  encodePostOpAttr(w, v.dir_attributes);
}

export function decodeLOOKUP3resok(r: XdrReader): LOOKUP3resok {
  const object = decodeNfsFh3(r);
  const obj_attributes = decodePostOpAttr(r);
  const dir_attributes = decodePostOpAttr(r);
  return { object, obj_attributes, dir_attributes };
}

export interface LOOKUP3resfail {
  dir_attributes: post_op_attr;
}

export function encodeLOOKUP3resfail(w: XdrWriter, v: LOOKUP3resfail): void {
  encodePostOpAttr(w, v.dir_attributes);
}

export function decodeLOOKUP3resfail(r: XdrReader): LOOKUP3resfail {
  return { dir_attributes: decodePostOpAttr(r) };
}

export const LOOKUP3res = result(codec(encodeLOOKUP3resok, decodeLOOKUP3resok), codec(encodeLOOKUP3resfail, decodeLOOKUP3resfail));

// §3.3.4 ACCESS

export interface ACCESS3resok {
  obj_attributes: post_op_attr;
  access: number;
}

export function encodeACCESS3resok(w: XdrWriter, v: ACCESS3resok): void {
  encodePostOpAttr(w, v.obj_attributes);
  w.uint32(v.access);
}

export function decodeACCESS3resok(r: XdrReader): ACCESS3resok {
  const obj_attributes = decodePostOpAttr(r);
  return { obj_attributes, access: r.uint32() };
}

export interface ACCESS3resfail {
  obj_attributes: post_op_attr;
}

export function encodeACCESS3resfail(w: XdrWriter, v: ACCESS3resfail): void {
  encodePostOpAttr(w, v.obj_attributes);
}

export function decodeACCESS3resfail(r: XdrReader): ACCESS3resfail {
  return { obj_attributes: decodePostOpAttr(r) };
}

export const ACCESS3res = result(codec(encodeACCESS3resok, decodeACCESS3resok), codec(encodeACCESS3resfail, decodeACCESS3resfail));

// §3.3.5 READLINK

export interface READLINK3resok {
  symlink_attributes: post_op_attr;
  /** nfspath3, as the bytes the link holds (a target need not be UTF-8). */
  data: Buffer;
}

export function encodeREADLINK3resok(w: XdrWriter, v: READLINK3resok): void {
  encodePostOpAttr(w, v.symlink_attributes);
  w.opaque(v.data);
}

export function decodeREADLINK3resok(r: XdrReader): READLINK3resok {
  const symlink_attributes = decodePostOpAttr(r);
  return { symlink_attributes, data: r.opaque(NFS3_DECODE_STRING_MAX) };
}

export interface READLINK3resfail {
  symlink_attributes: post_op_attr;
}

export function encodeREADLINK3resfail(w: XdrWriter, v: READLINK3resfail): void {
  encodePostOpAttr(w, v.symlink_attributes);
}

export function decodeREADLINK3resfail(r: XdrReader): READLINK3resfail {
  return { symlink_attributes: decodePostOpAttr(r) };
}

export const READLINK3res = result(codec(encodeREADLINK3resok, decodeREADLINK3resok), codec(encodeREADLINK3resfail, decodeREADLINK3resfail));

// §3.3.6 READ

export interface READ3resok {
  file_attributes: post_op_attr;
  count: number;
  eof: boolean;
  /**
   * The data as fragments whose concatenation is the opaque: the handler's are page-cache slices,
   * appended to the reply by reference, never copied. Decoded, it is one view of the record.
   */
  data: readonly Buffer[];
}

export function encodeREAD3resok(w: XdrWriter, v: READ3resok): void {
  encodePostOpAttr(w, v.file_attributes);
  w.uint32(v.count).bool(v.eof).opaqueRefs(v.data);
}

export function decodeREAD3resok(r: XdrReader): READ3resok {
  const file_attributes = decodePostOpAttr(r);
  const count = r.uint32();
  const eof = r.bool();
  return { file_attributes, count, eof, data: [r.opaque(0xffff_ffff)] };
}

export interface READ3resfail {
  file_attributes: post_op_attr;
}

export function encodeREAD3resfail(w: XdrWriter, v: READ3resfail): void {
  encodePostOpAttr(w, v.file_attributes);
}

export function decodeREAD3resfail(r: XdrReader): READ3resfail {
  return { file_attributes: decodePostOpAttr(r) };
}

export const READ3res = result(codec(encodeREAD3resok, decodeREAD3resok), codec(encodeREAD3resfail, decodeREAD3resfail));

// §3.3.7 WRITE

export interface WRITE3resok {
  file_wcc: wcc_data;
  count: number;
  committed: stable_how;
  /** writeverf3 */
  verf: Buffer;
}

export function encodeWRITE3resok(w: XdrWriter, v: WRITE3resok): void {
  encodeWccData(w, v.file_wcc);
  w.uint32(v.count).uint32(v.committed).fixedOpaque(v.verf);
}

export function decodeWRITE3resok(r: XdrReader): WRITE3resok {
  const file_wcc = decodeWccData(r);
  const count = r.uint32();
  const committed = r.enumOf<stable_how>(STABLE_HOW_VALUES, 'stable_how');
  return { file_wcc, count, committed, verf: r.fixedOpaque(NFS3_WRITEVERFSIZE) };
}

export interface WRITE3resfail {
  file_wcc: wcc_data;
}

export function encodeWRITE3resfail(w: XdrWriter, v: WRITE3resfail): void {
  encodeWccData(w, v.file_wcc);
}

export function decodeWRITE3resfail(r: XdrReader): WRITE3resfail {
  return { file_wcc: decodeWccData(r) };
}

export const WRITE3res = result(codec(encodeWRITE3resok, decodeWRITE3resok), codec(encodeWRITE3resfail, decodeWRITE3resfail));

// §3.3.8-11 CREATE, MKDIR, SYMLINK, MKNOD: the same result, named here as knfsd names it (diropres).

export interface diropres3ok {
  obj: post_op_fh3;
  obj_attributes: post_op_attr;
  dir_wcc: wcc_data;
}

export function encodeDiropres3ok(w: XdrWriter, v: diropres3ok): void {
  encodePostOpFh3(w, v.obj);
  encodePostOpAttr(w, v.obj_attributes);
  encodeWccData(w, v.dir_wcc);
}

export function decodeDiropres3ok(r: XdrReader): diropres3ok {
  const obj = decodePostOpFh3(r);
  const obj_attributes = decodePostOpAttr(r);
  return { obj, obj_attributes, dir_wcc: decodeWccData(r) };
}

export interface diropres3fail {
  dir_wcc: wcc_data;
}

export function encodeDiropres3fail(w: XdrWriter, v: diropres3fail): void {
  encodeWccData(w, v.dir_wcc);
}

export function decodeDiropres3fail(r: XdrReader): diropres3fail {
  return { dir_wcc: decodeWccData(r) };
}

export type CREATE3resok = diropres3ok;
export type MKDIR3resok = diropres3ok;
export type SYMLINK3resok = diropres3ok;
export type MKNOD3resok = diropres3ok;

export const diropres3 = result(codec(encodeDiropres3ok, decodeDiropres3ok), codec(encodeDiropres3fail, decodeDiropres3fail));

// §3.3.12-13 REMOVE and RMDIR: resok and resfail are both the directory's wcc_data.

export interface REMOVE3resok {
  dir_wcc: wcc_data;
}
export type REMOVE3resfail = REMOVE3resok;
export type RMDIR3resok = REMOVE3resok;
export type RMDIR3resfail = REMOVE3resok;

export function encodeREMOVE3resok(w: XdrWriter, v: REMOVE3resok): void {
  encodeWccData(w, v.dir_wcc);
}

export function decodeREMOVE3resok(r: XdrReader): REMOVE3resok {
  return { dir_wcc: decodeWccData(r) };
}

const REMOVE3_ARM = codec(encodeREMOVE3resok, decodeREMOVE3resok);
export const REMOVE3res = result(REMOVE3_ARM, REMOVE3_ARM);

// §3.3.14 RENAME: resok and resfail are both the two directories' wcc_data.

export interface RENAME3resok {
  fromdir_wcc: wcc_data;
  todir_wcc: wcc_data;
}
export type RENAME3resfail = RENAME3resok;

export function encodeRENAME3resok(w: XdrWriter, v: RENAME3resok): void {
  encodeWccData(w, v.fromdir_wcc);
  encodeWccData(w, v.todir_wcc);
}

export function decodeRENAME3resok(r: XdrReader): RENAME3resok {
  const fromdir_wcc = decodeWccData(r);
  return { fromdir_wcc, todir_wcc: decodeWccData(r) };
}

const RENAME3_ARM = codec(encodeRENAME3resok, decodeRENAME3resok);
export const RENAME3res = result(RENAME3_ARM, RENAME3_ARM);

// §3.3.15 LINK: resok and resfail are both the file's attributes and the directory's wcc_data.

export interface LINK3resok {
  file_attributes: post_op_attr;
  linkdir_wcc: wcc_data;
}
export type LINK3resfail = LINK3resok;

export function encodeLINK3resok(w: XdrWriter, v: LINK3resok): void {
  encodePostOpAttr(w, v.file_attributes);
  encodeWccData(w, v.linkdir_wcc);
}

export function decodeLINK3resok(r: XdrReader): LINK3resok {
  const file_attributes = decodePostOpAttr(r);
  return { file_attributes, linkdir_wcc: decodeWccData(r) };
}

const LINK3_ARM = codec(encodeLINK3resok, decodeLINK3resok);
export const LINK3res = result(LINK3_ARM, LINK3_ARM);

// §3.3.16 READDIR. RFC 1813 chains entries as a linked list (`nextentry`); each link is one
// "value follows" word on the wire, so an array holds the same thing.

export interface entry3 {
  fileid: bigint;
  name: string;
  cookie: bigint;
}

export function encodeEntry3(w: XdrWriter, e: entry3): void {
  w.uint64(e.fileid).string(e.name).uint64(e.cookie);
}

export function decodeEntry3(r: XdrReader): entry3 {
  const fileid = r.uint64();
  const name = decodeFilename3(r);
  return { fileid, name, cookie: r.uint64() };
}

export interface dirlist3 {
  entries: entry3[];
  eof: boolean;
}

export function encodeDirlist3(w: XdrWriter, l: dirlist3): void {
  for (const e of l.entries) encodeEntry3(w.bool(true), e);
  w.bool(false).bool(l.eof);
}

export function decodeDirlist3(r: XdrReader): dirlist3 {
  const entries: entry3[] = [];
  while (r.bool()) entries.push(decodeEntry3(r));
  return { entries, eof: r.bool() };
}

export interface READDIR3resok {
  dir_attributes: post_op_attr;
  cookieverf: Buffer;
  reply: dirlist3;
}

export function encodeREADDIR3resok(w: XdrWriter, v: READDIR3resok): void {
  encodePostOpAttr(w, v.dir_attributes);
  w.fixedOpaque(v.cookieverf);
  encodeDirlist3(w, v.reply);
}

export function decodeREADDIR3resok(r: XdrReader): READDIR3resok {
  const dir_attributes = decodePostOpAttr(r);
  const cookieverf = r.fixedOpaque(NFS3_COOKIEVERFSIZE);
  return { dir_attributes, cookieverf, reply: decodeDirlist3(r) };
}

export interface READDIR3resfail {
  dir_attributes: post_op_attr;
}

export function encodeREADDIR3resfail(w: XdrWriter, v: READDIR3resfail): void {
  encodePostOpAttr(w, v.dir_attributes);
}

export function decodeREADDIR3resfail(r: XdrReader): READDIR3resfail {
  return { dir_attributes: decodePostOpAttr(r) };
}

const READDIR3_FAIL = codec(encodeREADDIR3resfail, decodeREADDIR3resfail);
export const READDIR3res = result(codec(encodeREADDIR3resok, decodeREADDIR3resok), READDIR3_FAIL);

// §3.3.17 READDIRPLUS

export interface entryplus3 {
  fileid: bigint;
  name: string;
  cookie: bigint;
  name_attributes: post_op_attr;
  name_handle: post_op_fh3;
}

export function encodeEntryplus3(w: XdrWriter, e: entryplus3): void {
  w.uint64(e.fileid).string(e.name).uint64(e.cookie);
  encodePostOpAttr(w, e.name_attributes);
  encodePostOpFh3(w, e.name_handle);
}

export function decodeEntryplus3(r: XdrReader): entryplus3 {
  const fileid = r.uint64();
  const name = decodeFilename3(r);
  const cookie = r.uint64();
  const name_attributes = decodePostOpAttr(r);
  return { fileid, name, cookie, name_attributes, name_handle: decodePostOpFh3(r) };
}

/** `e` as an element of a dirlistplus3's list: its "value follows" TRUE, then the entryplus3. */
export function entryplus3Xdr(e: entryplus3): Buffer {
  const opaque = (n: number): number => 4 + n + xdrPad(n);
  const attrs = 4 + (e.name_attributes ? FATTR3_SIZE : 0);
  const handle = 4 + (e.name_handle ? opaque(e.name_handle.length) : 0);
  // Sized exactly, so that the element is encoded into one buffer.
  const w = new XdrWriter(4 + 8 + opaque(Buffer.byteLength(e.name)) + 8 + attrs + handle);
  w.bool(true);
  encodeEntryplus3(w, e);
  return w.toBuffer();
}

/**
 * Entries are decoded as entryplus3; the server may give some in their XDR form, as a listing keeps
 * them between calls (server/nfs3/dirlist.ts): a buffer is one or more list elements (entryplus3Xdr).
 */
export interface dirlistplus3<E = entryplus3> {
  entries: readonly E[];
  eof: boolean;
}

export function encodeDirlistplus3(w: XdrWriter, l: dirlistplus3<entryplus3 | Buffer>): void {
  let encoded = 0;
  for (const e of l.entries) if (Buffer.isBuffer(e)) encoded += e.length;
  if (encoded > 0) w.room(encoded + 8);
  for (const e of l.entries) {
    if (Buffer.isBuffer(e)) {
      w.encoded(e);
    } else {
      w.bool(true);
      encodeEntryplus3(w, e);
    }
  }
  w.bool(false).bool(l.eof);
}

export function decodeDirlistplus3(r: XdrReader): dirlistplus3 {
  const entries: entryplus3[] = [];
  while (r.bool()) entries.push(decodeEntryplus3(r));
  return { entries, eof: r.bool() };
}

export interface READDIRPLUS3resok<E = entryplus3> {
  dir_attributes: post_op_attr;
  cookieverf: Buffer;
  reply: dirlistplus3<E>;
}

export function encodeREADDIRPLUS3resok(w: XdrWriter, v: READDIRPLUS3resok<entryplus3 | Buffer>): void {
  encodePostOpAttr(w, v.dir_attributes);
  w.fixedOpaque(v.cookieverf);
  encodeDirlistplus3(w, v.reply);
}

export function decodeREADDIRPLUS3resok(r: XdrReader): READDIRPLUS3resok {
  const dir_attributes = decodePostOpAttr(r);
  const cookieverf = r.fixedOpaque(NFS3_COOKIEVERFSIZE);
  return { dir_attributes, cookieverf, reply: decodeDirlistplus3(r) };
}

/** READDIRPLUS3resfail has READDIR3resfail's one field. */
export type READDIRPLUS3resfail = READDIR3resfail;

export const READDIRPLUS3res = result(codec<READDIRPLUS3resok>(encodeREADDIRPLUS3resok, decodeREADDIRPLUS3resok), READDIR3_FAIL);
/** READDIRPLUS3res as the server gives it: entries may be in their XDR form. */
export const READDIRPLUS3resServer = result(codec<READDIRPLUS3resok<entryplus3 | Buffer>>(encodeREADDIRPLUS3resok, decodeREADDIRPLUS3resok), READDIR3_FAIL);

// §3.3.18 FSSTAT

export interface FSSTAT3resok {
  obj_attributes: post_op_attr;
  tbytes: bigint;
  fbytes: bigint;
  abytes: bigint;
  tfiles: bigint;
  ffiles: bigint;
  afiles: bigint;
  invarsec: number;
}

export function encodeFSSTAT3resok(w: XdrWriter, v: FSSTAT3resok): void {
  encodePostOpAttr(w, v.obj_attributes);
  w.uint64(v.tbytes).uint64(v.fbytes).uint64(v.abytes);
  w.uint64(v.tfiles).uint64(v.ffiles).uint64(v.afiles);
  w.uint32(v.invarsec);
}

export function decodeFSSTAT3resok(r: XdrReader): FSSTAT3resok {
  const obj_attributes = decodePostOpAttr(r);
  const tbytes = r.uint64();
  const fbytes = r.uint64();
  const abytes = r.uint64();
  const tfiles = r.uint64();
  const ffiles = r.uint64();
  const afiles = r.uint64();
  return { obj_attributes, tbytes, fbytes, abytes, tfiles, ffiles, afiles, invarsec: r.uint32() };
}

/** The resfail of FSSTAT, FSINFO and PATHCONF: the object's attributes. */
export interface FSSTAT3resfail {
  obj_attributes: post_op_attr;
}
export type FSINFO3resfail = FSSTAT3resfail;
export type PATHCONF3resfail = FSSTAT3resfail;

export function encodeFSSTAT3resfail(w: XdrWriter, v: FSSTAT3resfail): void {
  encodePostOpAttr(w, v.obj_attributes);
}

export function decodeFSSTAT3resfail(r: XdrReader): FSSTAT3resfail {
  return { obj_attributes: decodePostOpAttr(r) };
}

const FSSTAT3_FAIL = codec(encodeFSSTAT3resfail, decodeFSSTAT3resfail);
export const FSSTAT3res = result(codec(encodeFSSTAT3resok, decodeFSSTAT3resok), FSSTAT3_FAIL);

// §3.3.19 FSINFO

export interface FSINFO3resok {
  obj_attributes: post_op_attr;
  rtmax: number;
  rtpref: number;
  rtmult: number;
  wtmax: number;
  wtpref: number;
  wtmult: number;
  dtpref: number;
  maxfilesize: bigint;
  time_delta: nfstime3;
  properties: number;
}

export function encodeFSINFO3resok(w: XdrWriter, v: FSINFO3resok): void {
  encodePostOpAttr(w, v.obj_attributes);
  w.uint32(v.rtmax).uint32(v.rtpref).uint32(v.rtmult);
  w.uint32(v.wtmax).uint32(v.wtpref).uint32(v.wtmult);
  w.uint32(v.dtpref).uint64(v.maxfilesize);
  encodeNfstime3(w, v.time_delta);
  w.uint32(v.properties);
}

export function decodeFSINFO3resok(r: XdrReader): FSINFO3resok {
  const obj_attributes = decodePostOpAttr(r);
  const rtmax = r.uint32();
  const rtpref = r.uint32();
  const rtmult = r.uint32();
  const wtmax = r.uint32();
  const wtpref = r.uint32();
  const wtmult = r.uint32();
  const dtpref = r.uint32();
  const maxfilesize = r.uint64();
  const time_delta = decodeNfstime3(r);
  return { obj_attributes, rtmax, rtpref, rtmult, wtmax, wtpref, wtmult, dtpref, maxfilesize, time_delta, properties: r.uint32() };
}

export const FSINFO3res = result(codec(encodeFSINFO3resok, decodeFSINFO3resok), FSSTAT3_FAIL);

// §3.3.20 PATHCONF

export interface PATHCONF3resok {
  obj_attributes: post_op_attr;
  linkmax: number;
  name_max: number;
  no_trunc: boolean;
  chown_restricted: boolean;
  case_insensitive: boolean;
  case_preserving: boolean;
}

export function encodePATHCONF3resok(w: XdrWriter, v: PATHCONF3resok): void {
  encodePostOpAttr(w, v.obj_attributes);
  w.uint32(v.linkmax).uint32(v.name_max);
  w.bool(v.no_trunc).bool(v.chown_restricted).bool(v.case_insensitive).bool(v.case_preserving);
}

export function decodePATHCONF3resok(r: XdrReader): PATHCONF3resok {
  const obj_attributes = decodePostOpAttr(r);
  const linkmax = r.uint32();
  const name_max = r.uint32();
  const no_trunc = r.bool();
  const chown_restricted = r.bool();
  const case_insensitive = r.bool();
  return { obj_attributes, linkmax, name_max, no_trunc, chown_restricted, case_insensitive, case_preserving: r.bool() };
}

export const PATHCONF3res = result(codec(encodePATHCONF3resok, decodePATHCONF3resok), FSSTAT3_FAIL);

// §3.3.21 COMMIT

export interface COMMIT3resok {
  file_wcc: wcc_data;
  /** writeverf3 */
  verf: Buffer;
}

export function encodeCOMMIT3resok(w: XdrWriter, v: COMMIT3resok): void {
  encodeWccData(w, v.file_wcc);
  w.fixedOpaque(v.verf);
}

export function decodeCOMMIT3resok(r: XdrReader): COMMIT3resok {
  const file_wcc = decodeWccData(r);
  return { file_wcc, verf: r.fixedOpaque(NFS3_WRITEVERFSIZE) };
}

/** COMMIT3resfail has WRITE3resfail's one field. */
export type COMMIT3resfail = WRITE3resfail;

export const COMMIT3res = result(codec(encodeCOMMIT3resok, decodeCOMMIT3resok), codec(encodeWRITE3resfail, decodeWRITE3resfail));

/** Every procedure's result codec by name (NULL has no result). */
export const NFS3_RESULTS = {
  GETATTR: GETATTR3res,
  SETATTR: SETATTR3res,
  LOOKUP: LOOKUP3res,
  ACCESS: ACCESS3res,
  READLINK: READLINK3res,
  READ: READ3res,
  WRITE: WRITE3res,
  CREATE: diropres3,
  MKDIR: diropres3,
  SYMLINK: diropres3,
  MKNOD: diropres3,
  REMOVE: REMOVE3res,
  RMDIR: REMOVE3res,
  RENAME: RENAME3res,
  LINK: LINK3res,
  READDIR: READDIR3res,
  READDIRPLUS: READDIRPLUS3res,
  FSSTAT: FSSTAT3res,
  FSINFO: FSINFO3res,
  PATHCONF: PATHCONF3res,
  COMMIT: COMMIT3res,
} as const satisfies Record<Exclude<keyof typeof NFSPROC3, 'NULL'>, Nfs3ResultCodec<unknown, unknown>>;

export type Nfs3ResultProc = keyof typeof NFS3_RESULTS;

/** The decoded result of procedure `K`. */
export type Nfs3ResOf<K extends Nfs3ResultProc> = Nfs3Res<ResokOf<(typeof NFS3_RESULTS)[K]>, ResfailOf<(typeof NFS3_RESULTS)[K]>>;
