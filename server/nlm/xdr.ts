/**
 * NLM argument and result structures. Version 4 carries 64-bit l_offset/l_len and an int32 svid;
 * versions 1 and 3 carry 32-bit ones (uppid), so every codec takes the version.
 */
import type { XdrReader } from '../../xdr/reader.ts';
import { XdrError } from '../../xdr/error.ts';
import type { XdrWriter } from '../../xdr/writer.ts';
import { LM_MAXNAMELEN, LM_MAXSTRLEN, MAXNETOBJ_SZ, NLM4_DENIED, NLM_V4, type nlm4_stats } from './constants.ts';

export interface nlm4_lock {
  caller_name: string;
  fh: Buffer;
  oh: Buffer;
  svid: number;
  l_offset: bigint;
  l_len: bigint;
}

export interface nlm4_lockargs {
  cookie: Buffer;
  block: boolean;
  exclusive: boolean;
  alock: nlm4_lock;
  reclaim: boolean;
  state: number;
}

export interface nlm4_cancargs {
  cookie: Buffer;
  block: boolean;
  exclusive: boolean;
  alock: nlm4_lock;
}

export interface nlm4_testargs {
  cookie: Buffer;
  exclusive: boolean;
  alock: nlm4_lock;
}

export interface nlm4_unlockargs {
  cookie: Buffer;
  alock: nlm4_lock;
}

export interface nlm4_holder {
  exclusive: boolean;
  svid: number;
  oh: Buffer;
  l_offset: bigint;
  l_len: bigint;
}

export interface nlm4_share {
  caller_name: string;
  fh: Buffer;
  oh: Buffer;
  mode: number;
  access: number;
}

export interface nlm4_shareargs {
  cookie: Buffer;
  share: nlm4_share;
  reclaim: boolean;
}

export interface nlm4_notify {
  name: string;
  state: number;
}

/** An enum on the wire: anything outside its values is GARBAGE_ARGS. */
function enumIn(r: XdrReader, max: number, what: string): number {
  const at = r.offset;
  const v = r.uint32();
  if (v > max) throw new XdrError(`${what} ${v} out of range`, at);
  return v;
}

export function decodeNetobj(r: XdrReader): Buffer {
  return r.opaque(MAXNETOBJ_SZ);
}

export function decodeLock(r: XdrReader, vers: number): nlm4_lock {
  const caller_name = r.string(LM_MAXSTRLEN);
  const fh = decodeNetobj(r);
  const oh = decodeNetobj(r);
  const svid = r.int32();
  const l_offset = vers === NLM_V4 ? r.uint64() : BigInt(r.uint32());
  const l_len = vers === NLM_V4 ? r.uint64() : BigInt(r.uint32());
  return { caller_name, fh, oh, svid, l_offset, l_len };
}

export function encodeLock(w: XdrWriter, l: nlm4_lock, vers: number): XdrWriter {
  w.string(l.caller_name).opaque(l.fh).opaque(l.oh).int32(l.svid);
  return vers === NLM_V4 ? w.uint64(l.l_offset).uint64(l.l_len) : w.uint32(clip32(l.l_offset)).uint32(clip32(l.l_len));
}

export function decodeLockargs(r: XdrReader, vers: number): nlm4_lockargs {
  const cookie = decodeNetobj(r);
  const block = r.bool();
  const exclusive = r.bool();
  const alock = decodeLock(r, vers);
  const reclaim = r.bool();
  const state = r.int32();
  return { cookie, block, exclusive, alock, reclaim, state };
}

export function encodeLockargs(w: XdrWriter, a: nlm4_lockargs, vers: number): XdrWriter {
  w.opaque(a.cookie).bool(a.block).bool(a.exclusive);
  return encodeLock(w, a.alock, vers).bool(a.reclaim).int32(a.state);
}

export function decodeCancargs(r: XdrReader, vers: number): nlm4_cancargs {
  const cookie = decodeNetobj(r);
  const block = r.bool();
  const exclusive = r.bool();
  return { cookie, block, exclusive, alock: decodeLock(r, vers) };
}

export function decodeTestargs(r: XdrReader, vers: number): nlm4_testargs {
  const cookie = decodeNetobj(r);
  const exclusive = r.bool();
  return { cookie, exclusive, alock: decodeLock(r, vers) };
}

export function encodeTestargs(w: XdrWriter, a: nlm4_testargs, vers: number): XdrWriter {
  return encodeLock(w.opaque(a.cookie).bool(a.exclusive), a.alock, vers);
}

export function decodeUnlockargs(r: XdrReader, vers: number): nlm4_unlockargs {
  const cookie = decodeNetobj(r);
  return { cookie, alock: decodeLock(r, vers) };
}

export function decodeShareargs(r: XdrReader): nlm4_shareargs {
  const cookie = decodeNetobj(r);
  const caller_name = r.string(LM_MAXSTRLEN);
  const fh = decodeNetobj(r);
  const oh = decodeNetobj(r);
  const mode = enumIn(r, 3, 'fsh_mode');
  const access = enumIn(r, 3, 'fsh_access');
  const reclaim = r.bool();
  return { cookie, share: { caller_name, fh, oh, mode, access }, reclaim };
}

export function decodeNotify(r: XdrReader): nlm4_notify {
  const name = r.string(LM_MAXNAMELEN);
  return { name, state: r.int32() };
}

/** nlm4_res: cookie and stat (LOCK, CANCEL, UNLOCK, GRANTED and their _RES calls). */
export function encodeRes(w: XdrWriter, cookie: Buffer, stat: nlm4_stats): XdrWriter {
  return w.opaque(cookie).uint32(stat);
}

export function decodeRes(r: XdrReader): { cookie: Buffer; stat: number } {
  const cookie = decodeNetobj(r);
  return { cookie, stat: r.uint32() };
}

/** nlm4_testres: the holder only when DENIED. A version 1/3 holder past 2^32 is clipped. */
export function encodeTestres(w: XdrWriter, cookie: Buffer, stat: nlm4_stats, holder: nlm4_holder | undefined, vers: number): XdrWriter {
  w.opaque(cookie).uint32(stat);
  if (stat !== NLM4_DENIED || !holder) return w;
  w.bool(holder.exclusive).int32(holder.svid).opaque(holder.oh);
  return vers === NLM_V4 ? w.uint64(holder.l_offset).uint64(holder.l_len) : w.uint32(clip32(holder.l_offset)).uint32(clip32(holder.l_len));
}

export function decodeTestres(r: XdrReader, vers: number): { cookie: Buffer; stat: number; holder?: nlm4_holder } {
  const cookie = decodeNetobj(r);
  const stat = r.uint32();
  if (stat !== NLM4_DENIED) return { cookie, stat };
  const exclusive = r.bool();
  const svid = r.int32();
  const oh = decodeNetobj(r);
  const l_offset = vers === NLM_V4 ? r.uint64() : BigInt(r.uint32());
  const l_len = vers === NLM_V4 ? r.uint64() : BigInt(r.uint32());
  return { cookie, stat, holder: { exclusive, svid, oh, l_offset, l_len } };
}

export function encodeShareres(w: XdrWriter, cookie: Buffer, stat: nlm4_stats): XdrWriter {
  return w.opaque(cookie).uint32(stat).int32(0);
}

function clip32(v: bigint): number {
  return v > 0xffff_ffffn ? 0xffff_ffff : Number(v);
}
