import type { Logger } from 'pino';
import type { XdrReader } from '../xdr/reader.ts';
import type { XdrWriter } from '../xdr/writer.ts';

/** RFC 5531 §8.2 auth flavours that this server understands. */
export const AUTH_NONE = 0;
export const AUTH_SYS = 1;

/** RFC 5531 appendix A: AUTH_SYS credential body. */
export interface AuthSysParms {
  stamp: number;
  machinename: string;
  uid: number;
  gid: number;
  gids: number[];
}

export type Credential = { flavor: typeof AUTH_NONE } | { flavor: typeof AUTH_SYS; sys: AuthSysParms };

export type TransportKind = 'tcp' | 'udp';

/** What a procedure handler knows about the call it serves. */
export interface CallContext {
  xid: number;
  prog: number;
  vers: number;
  proc: number;
  cred: Credential;
  /** The raw credential body as received (the duplicate request cache keys on it). */
  rawCred: Buffer;
  transport: TransportKind;
  remoteAddress: string;
  remotePort: number;
  /** Address and port the call arrived on (rpcbind answers with the address the client reached). */
  localAddress?: string;
  localPort: number;
  log: Logger;
}

/**
 * A procedure: decodes its arguments from `args` (an XdrError there becomes GARBAGE_ARGS),
 * and returns the encoded results (the body after the accepted-reply header).
 * Throwing RpcAcceptError yields that accept_stat; any other exception yields SYSTEM_ERR with a log line.
 */
export interface Procedure {
  name: string;
  /**
   * Executing it twice is not the same as once (CREATE, REMOVE, WRITE…): its replies go through the
   * duplicate request cache, so a retransmitted call is answered from there instead of re-executed.
   */
  nonIdempotent?: boolean;
  handler: (args: XdrReader, ctx: CallContext) => ProcedureResult | Promise<ProcedureResult>;
}

/**
 * A reply body whose by-reference chunks (XdrWriter.ref/opaqueRef) belong to someone else,
 * typically page-cache pages. The transport calls `release` exactly once, when nothing on the
 * send path references those chunks any more: at once after a copy, or from the fragment
 * destructor when they went out by reference (see docs/DESIGN.md, reply-path modes).
 */
export interface PinnedReply {
  body: XdrWriter;
  release: () => void;
}

export type ProcedureResult = XdrWriter | PinnedReply;

export function isPinnedReply(r: ProcedureResult): r is PinnedReply {
  return 'release' in r && typeof r.release === 'function';
}

export interface RpcProgram {
  prog: number;
  name: string;
  /** version → procedures indexed by procedure number (holes are PROC_UNAVAIL). */
  versions: ReadonlyMap<number, ReadonlyArray<Procedure | undefined>>;
}
