import { XdrReader } from '../xdr/reader.ts';
import type { XdrInput } from '../xdr/xdr-buf.ts';
import { XdrWriter } from '../xdr/writer.ts';
import { XdrError } from '../xdr/error.ts';
import {
  AUTH_ERROR,
  CALL,
  MAX_AUTH_BYTES,
  MSG_ACCEPTED,
  MSG_DENIED,
  PROG_MISMATCH,
  REPLY,
  RPC_MISMATCH,
  RPC_VERSION,
  type AcceptStat,
  type AuthStat,
} from './constants.ts';
import { AUTH_NONE } from './program.ts';

/** RFC 5531 §9 opaque_auth, as received (body is a view of the record). */
export interface OpaqueAuth {
  flavor: number;
  body: Buffer;
}

/** RFC 5531 call_body with the arguments left in place: `argsOffset` is where they start in `record`. */
export interface RpcCallHeader {
  xid: number;
  rpcvers: number;
  prog: number;
  vers: number;
  proc: number;
  cred: OpaqueAuth;
  verf: OpaqueAuth;
  record: XdrInput;
  argsOffset: number;
}

export type CallDecodeResult =
  | { kind: 'call'; call: RpcCallHeader }
  /** Not a call we can answer at all (too short for an xid, or a REPLY): dropped. */
  | { kind: 'drop'; reason: string; xid?: number }
  /** A CALL whose header is malformed after the xid: answered with GARBAGE_ARGS. */
  | { kind: 'garbage'; xid: number; reason: string };

function opaqueAuth(r: XdrReader): OpaqueAuth {
  const flavor = r.uint32();
  return { flavor, body: r.opaque(MAX_AUTH_BYTES) };
}

/** Decodes the call header of one record. Never throws. */
export function decodeCall(record: XdrInput): CallDecodeResult {
  if (record.length < 8) return { kind: 'drop', reason: `record of ${record.length} bytes is too short for a message header` };
  const r = new XdrReader(record);
  const xid = r.uint32();
  const mtype = r.uint32();
  if (mtype !== CALL) return { kind: 'drop', reason: `msg_type ${mtype} is not CALL`, xid };
  try {
    const rpcvers = r.uint32();
    const prog = r.uint32();
    const vers = r.uint32();
    const proc = r.uint32();
    const cred = opaqueAuth(r);
    const verf = opaqueAuth(r);
    return { kind: 'call', call: { xid, rpcvers, prog, vers, proc, cred, verf, record, argsOffset: r.offset } };
  } catch (e) {
    if (e instanceof XdrError) return { kind: 'garbage', xid, reason: e.message };
    throw e;
  }
}

function replyHeader(w: XdrWriter, xid: number, replyStat: number): XdrWriter {
  return w.uint32(xid).uint32(REPLY).uint32(replyStat);
}

/** Accepted reply header up to and including accept_stat; SUCCESS results follow it. */
export function encodeAcceptedHeader(xid: number, stat: AcceptStat, mismatch?: { low: number; high: number }): XdrWriter {
  const w = replyHeader(new XdrWriter(64), xid, MSG_ACCEPTED).uint32(AUTH_NONE).uint32(0).uint32(stat);
  if (mismatch) w.uint32(mismatch.low).uint32(mismatch.high);
  return w;
}

export function encodeRpcMismatch(xid: number): XdrWriter {
  return replyHeader(new XdrWriter(32), xid, MSG_DENIED).uint32(RPC_MISMATCH).uint32(RPC_VERSION).uint32(RPC_VERSION);
}

export function encodeAuthError(xid: number, stat: AuthStat): XdrWriter {
  return replyHeader(new XdrWriter(32), xid, MSG_DENIED).uint32(AUTH_ERROR).uint32(stat);
}

/** A decoded reply, as the client sees it. */
export type RpcReply =
  | { xid: number; kind: 'accepted'; stat: AcceptStat; mismatch?: { low: number; high: number }; body: XdrReader }
  | { xid: number; kind: 'rpc-mismatch'; low: number; high: number }
  | { xid: number; kind: 'auth-error'; stat: AuthStat };

/** Decodes a reply message (client side). Throws XdrError on malformed input. */
export function decodeReply(record: Buffer): RpcReply {
  const r = new XdrReader(record);
  const xid = r.uint32();
  const mtype = r.uint32();
  if (mtype !== REPLY) throw new XdrError(`msg_type ${mtype} is not REPLY`, 4);
  const replyStat = r.uint32();
  if (replyStat === MSG_ACCEPTED) {
    opaqueAuth(r);
    const stat = r.uint32();
    if (stat > 5) throw new XdrError(`invalid accept_stat ${stat}`, r.offset - 4);
    const accepted = stat as AcceptStat;
    if (accepted === PROG_MISMATCH) return { xid, kind: 'accepted', stat: accepted, mismatch: { low: r.uint32(), high: r.uint32() }, body: r };
    return { xid, kind: 'accepted', stat: accepted, body: r };
  }
  if (replyStat !== MSG_DENIED) throw new XdrError(`invalid reply_stat ${replyStat}`, 8);
  const reject = r.uint32();
  if (reject === RPC_MISMATCH) return { xid, kind: 'rpc-mismatch', low: r.uint32(), high: r.uint32() };
  if (reject !== AUTH_ERROR) throw new XdrError(`invalid reject_stat ${reject}`, 12);
  const stat = r.uint32();
  if (stat > 7) throw new XdrError(`invalid auth_stat ${stat}`, 16);
  return { xid, kind: 'auth-error', stat: stat as AuthStat };
}

/** Encodes a call header (client side); the arguments follow. */
export function encodeCallHeader(w: XdrWriter, c: { xid: number; prog: number; vers: number; proc: number; cred: OpaqueAuth; verf?: OpaqueAuth }): XdrWriter {
  w.uint32(c.xid).uint32(CALL).uint32(RPC_VERSION).uint32(c.prog).uint32(c.vers).uint32(c.proc);
  w.uint32(c.cred.flavor).opaque(c.cred.body);
  const verf = c.verf ?? { flavor: AUTH_NONE, body: Buffer.alloc(0) };
  return w.uint32(verf.flavor).opaque(verf.body);
}
