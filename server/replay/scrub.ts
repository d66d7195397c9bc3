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
import { resultLayout, type Patch } from './reply-layout.ts';

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
export class Canonicalizer {
  private readonly fileids = new Map<bigint, bigint>();
  private readonly handles = new Map<string, number>();

  private fileid(real: bigint): bigint {
    let n = this.fileids.get(real);
    if (n === undefined) this.fileids.set(real, (n = BigInt(this.fileids.size + 1)));
    return n;
  }

  /** The canonical form of a handle: what replies show for it, and the capture of calls that carry it. */
  handleOf(real: Buffer): Buffer {
    const key = real.toString('hex');
    let n = this.handles.get(key);
    if (n === undefined) this.handles.set(key, (n = this.handles.size + 1));
    const out = Buffer.alloc(real.length);
    CANONICAL_FH_TAG.copy(out, 0, 0, Math.min(CANONICAL_FH_TAG.length, out.length));
    if (out.length >= CANONICAL_FH_TAG.length + 4) out.writeUInt32BE(n, CANONICAL_FH_TAG.length);
    return out;
  }

  apply(flat: Buffer, p: Patch): void {
    switch (p.kind) {
      case 'zero':
        flat.fill(0, p.at, p.at + p.len);
        return;
      case 'fileid':
        flat.writeBigUInt64BE(this.fileid(flat.readBigUInt64BE(p.at)), p.at);
        return;
      case 'fh':
        this.handleOf(flat.subarray(p.at, p.at + p.len)).copy(flat, p.at);
        return;
    }
  }

  /**
   * The reply with its run-dependent fields canonical: linear chunks are copied (never written in
   * place — a DRC entry may be one of them), page chunks (`isPage`) passed on as they are.
   */
  reply(reply: RpcReplyOut, program: ProgramName, proc: string, isPage: (chunk: Buffer) => boolean): RpcReplyOut {
    const flat = Buffer.concat(reply.chunks, reply.length);
    const d = decodeReply(flat);
    if (d.kind !== 'accepted' || d.stat !== SUCCESS) return reply;
    const { patches } = resultLayout(program, proc, flat, d.body.offset);
    if (patches.length === 0) return reply;
    for (const p of patches) this.apply(flat, p);
    const chunks: Buffer[] = [];
    let at = 0;
    for (const c of reply.chunks) {
      const end = at + c.length;
      if (!isPage(c)) chunks.push(flat.subarray(at, end));
      else if (patches.some((p) => p.at < end && p.at + (p.kind === 'fileid' ? 8 : p.len) > at)) {
        throw new CanonicalReplyError(reply.xid, proc, `run-dependent field inside page-cache data at ${at}`);
      } else chunks.push(c);
      at = end;
    }
    return { ...reply, chunks };
  }
}
