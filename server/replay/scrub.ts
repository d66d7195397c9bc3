/**
 * Canonical replies: the fields that differ between two runs over the same files (inode numbers,
 * times, owners, handles, verifiers, free space — see reply-layout.ts) are replaced, before the
 * reply is sent, by values that depend only on the order they were first seen in. Page-cache
 * chunks (READ data) are never touched: they go on by reference, as the reply path sends them.
 */
import { decodeReply } from '../../rpc/message.ts';
import type { RpcReplyOut } from '../../rpc/dispatch.ts';
import { SUCCESS } from '../../rpc/constants.ts';
import type { ProgramName } from './procedures.ts';
import { decodeResult, type Canon } from './reply-layout.ts';

/** Canonical handles start with this tag, then their number (big-endian), then zeros. */
const CANONICAL_FH_TAG = Buffer.from('PLFH');

export class CanonicalReplyError extends Error {
  override readonly name = 'CanonicalReplyError';
  constructor(
    readonly xid: number,
    readonly proc: string,
    why: string,
  ) {
    super(`reply xid ${xid >>> 0} (${proc}): ${why}`);
  }
}

/** Numbers fileids and handles by first appearance. */
export class Canonicalizer implements Canon {
  private readonly fileids = new Map<bigint, bigint>();
  private readonly handles = new Map<string, number>();

  fileid(real: bigint): bigint {
    let n = this.fileids.get(real);
    if (n === undefined) this.fileids.set(real, (n = BigInt(this.fileids.size + 1)));
    return n;
  }

  /** The canonical form of a handle: what replies show for it, and the capture of calls that carry it. */
  handle(real: Buffer): Buffer {
    const key = real.toString('hex');
    let n = this.handles.get(key);
    if (n === undefined) this.handles.set(key, (n = this.handles.size + 1));
    const out = Buffer.alloc(real.length);
    CANONICAL_FH_TAG.copy(out, 0, 0, Math.min(CANONICAL_FH_TAG.length, out.length));
    if (out.length >= CANONICAL_FH_TAG.length + 4) out.writeUInt32BE(n, CANONICAL_FH_TAG.length);
    return out;
  }

  /**
   * The reply with its run-dependent fields canonical: linear chunks are copied (never written in
   * place — a DRC entry may be one of them), page chunks (`isPage`) passed on as they are.
   */
  reply(reply: RpcReplyOut, program: ProgramName, proc: string, isPage: (chunk: Buffer) => boolean): RpcReplyOut {
    const flat = Buffer.concat(reply.chunks, reply.length);
    const d = decodeReply(flat);
    if (d.kind !== 'accepted' || d.stat !== SUCCESS) return reply;
    const start = d.body.offset;
    const result = decodeResult(program, proc, flat, start);
    if (!result) return reply;
    const canonical = result.canonical(this);
    if (canonical.length !== result.end - start) {
      throw new CanonicalReplyError(reply.xid, proc, `canonical result of ${canonical.length} bytes for one of ${result.end - start}`);
    }
    if (canonical.equals(flat.subarray(start, result.end))) return reply;
    canonical.copy(flat, start);
    const chunks: Buffer[] = [];
    let at = 0;
    for (const c of reply.chunks) {
      const end = at + c.length;
      if (!isPage(c)) chunks.push(flat.subarray(at, end));
      else if (!flat.subarray(at, end).equals(c)) throw new CanonicalReplyError(reply.xid, proc, `run-dependent field inside page-cache data at ${at}`);
      else chunks.push(c);
      at = end;
    }
    return { ...reply, chunks };
  }
}
