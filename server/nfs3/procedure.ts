/**
 * The one handler shape every NFSv3 procedure has, and the wrapper that turns it into an RPC
 * procedure: decode (XdrError → GARBAGE_ARGS in the dispatcher), run, and encode the result with the
 * procedure's codec (results.ts): NFS3_OK and the resok run returned, or on NfsError (or an errno
 * from node:fs) the status and the resfail RFC 1813 gives that procedure.
 */
import type { CallContext, Procedure, ProcedureResult } from '../../rpc/program.ts';
import type { XdrReader } from '../../xdr/reader.ts';
import { XdrWriter } from '../../xdr/writer.ts';
import { portAllowed } from '../exports/match.ts';
import type { ExportOptions, Identity } from '../exports/types.ts';
import { fattr3FromStats, ftype3Of, type post_op_attr, type pre_op_attr, type wcc_data } from './attr.ts';
import type { Export } from '../vfs/export.ts';
import type { VNode } from '../vfs/vfs.ts';
import { NF3DIR, NFS3ERR_ACCES, NFS3ERR_BADHANDLE, NFS3ERR_PERM, NFS3ERR_ROFS, NFS3ERR_STALE, NFS3_OK, NFSSTAT3_NAMES } from './constants.ts';
import type { NfsContext } from './context.ts';
import { NfsError, toNfsError } from './errors.ts';
import { encodeNfs3Res, type Nfs3Res, type Nfs3ResultCodec } from './results.ts';
import type { nfs_fh3 } from './xdr.ts';

interface Grant {
  opts: ExportOptions;
  identity: Identity;
}

/** One call: the context, the RPC call, and what was decided about the caller per export. */
export class NfsCall {
  /** The grant on the first export the call used (nearly every call uses one); others in `more`. */
  private firstExp: number | undefined;
  private first: Grant | undefined;
  private more: Map<number, Grant> | undefined;

  constructor(
    readonly ctx: NfsContext,
    readonly rpc: CallContext,
  ) {}

  /**
   * Decides the caller's options and squashed identity on `exp`; NFS3ERR_ACCES/PERM if it may not
   * use it. Synchronous when the caller's options are known (see AccessPolicy.optionsFor).
   */
  admit(exp: Export): Grant | Promise<Grant> {
    const g = this.granted(exp);
    if (g) return g;
    const opts = this.ctx.access.optionsFor(exp.clients, this.rpc.remoteAddress);
    return opts instanceof Promise ? opts.then((o) => this.decide(exp, o)) : this.decide(exp, opts);
  }

  private decide(exp: Export, opts: ExportOptions | null): Grant {
    if (!opts) throw new NfsError(NFS3ERR_ACCES, { op: 'export', path: exp.path, client: this.rpc.remoteAddress });
    // As knfsd: a `secure` export answers calls from unprivileged ports with NFS3ERR_PERM.
    if (!portAllowed(opts, this.rpc.remotePort)) {
      throw new NfsError(NFS3ERR_PERM, { op: 'export', path: exp.path, client: this.rpc.remoteAddress, port: this.rpc.remotePort });
    }
    const g = { opts, identity: this.ctx.access.effectiveIdentity(this.rpc.cred, opts) };
    if (this.firstExp === undefined) {
      this.firstExp = exp.id;
      this.first = g;
    } else {
      (this.more ??= new Map()).set(exp.id, g);
    }
    return g;
  }

  private granted(exp: Export): Grant | undefined {
    return this.firstExp === exp.id ? this.first : this.more?.get(exp.id);
  }

  /** The caller's grant on an export it was admitted to (by `node`). */
  grant(exp: Export): Grant {
    const g = this.granted(exp);
    if (!g) throw new Error(`nfs: export ${exp.path} used before the caller was admitted`);
    return g;
  }

  /**
   * Handle → node, with the caller admitted to its export. Synchronous (returns or throws) when
   * both the handle's anchor and the caller's options are known, so a cached GETATTR or READ awaits
   * nothing before its work; callers await the result either way.
   */
  node(fh: nfs_fh3): VNode | Promise<VNode> {
    const n = this.ctx.vfs.resolveNow(fh);
    if (n instanceof Promise) return n.then((v) => this.admitted(v));
    return this.admitted(n);
  }

  private admitted(n: VNode): VNode | Promise<VNode> {
    const g = this.admit(n.exp);
    return g instanceof Promise ? g.then(() => n) : n;
  }

  /** The ACCESS3_* bits of `wanted` the caller holds on `n` (write bits never on a read-only export). */
  allowed(n: VNode, wanted: number): number {
    const g = this.grant(n.exp);
    const st = n.st;
    return this.ctx.access.accessGranted(
      { mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid), isDirectory: ftype3Of(st) === NF3DIR },
      g.identity,
      wanted,
    );
  }

  /** NFS3ERR_ACCES unless the caller holds every bit of `wanted` on `n`. */
  require(n: VNode, wanted: number, op: string): void {
    if ((this.allowed(n, wanted) & wanted) !== wanted) throw new NfsError(NFS3ERR_ACCES, { op, path: n.rel, wanted });
  }

  /** NFS3ERR_ROFS unless the caller may modify `exp`. */
  requireWritable(exp: Export, op: string): void {
    if (!this.grant(exp).opts.rw) throw new NfsError(NFS3ERR_ROFS, { op, path: exp.path });
  }

  identity(exp: Export): Identity {
    return this.grant(exp).identity;
  }

  /**
   * Best-effort post-op attributes of a handle, for failure replies: none if it does not resolve, or
   * if the caller may not use its export (a refused client learns nothing about its objects).
   */
  async attrsOf(fh: nfs_fh3, status: number): Promise<post_op_attr> {
    if (status === NFS3ERR_BADHANDLE || status === NFS3ERR_STALE) return undefined;
    try {
      const n = await this.node(fh);
      return fattr3FromStats(n.st, n.exp);
    } catch {
      return undefined;
    }
  }
}

/**
 * A resok whose encoding refers to bytes the procedure lent (READ's page-cache pages): the transport
 * calls `release` exactly once, when nothing on the send path refers to them any more.
 */
export class LentResok<Ok> {
  constructor(
    readonly resok: Ok,
    readonly release: () => void,
  ) {}
}

export interface NfsProcedure<A, Ok, Fail> {
  name: string;
  /** Changes state: replies go through the duplicate request cache. */
  nonIdempotent?: boolean;
  /** The objects and directories a call changes (each procedure that changes any): their kept listing entries are dropped. */
  changes?(args: A): readonly nfs_fh3[];
  decode(r: XdrReader): A;
  /** How the result is encoded (results.ts). */
  result: Nfs3ResultCodec<Ok, Fail>;
  /** Runs the procedure and returns its resok; any failure is thrown. */
  run(args: A, call: NfsCall): Promise<Ok | LentResok<Ok>>;
  /** The resfail that follows a failure status. */
  resfail(args: A, err: NfsError, call: NfsCall): Promise<Fail>;
}

/**
 * wcc_data of a failed call on `fh`: the before attributes the handler had when it failed
 * (err.context[`pre`], see modify.ts withPre), the after attributes as they are now.
 */
export async function failureWcc(call: NfsCall, fh: nfs_fh3, err: NfsError, pre: 'pre' | 'toPre' = 'pre'): Promise<wcc_data> {
  return { before: err.context[pre] as pre_op_attr, after: await call.attrsOf(fh, err.status) };
}

function encodeResult<Ok, Fail>(p: NfsProcedure<unknown, Ok, Fail>, res: Nfs3Res<Ok, Fail>): XdrWriter {
  const w = new XdrWriter();
  encodeNfs3Res(w, p.result, res);
  return w;
}

export function toRpcProcedure<A, Ok, Fail>(p: NfsProcedure<A, Ok, Fail>, ctx: NfsContext): Procedure {
  return {
    name: p.name,
    ...(p.nonIdempotent ? { nonIdempotent: true } : {}),
    async handler(r: XdrReader, rpc: CallContext): Promise<ProcedureResult> {
      const args = p.decode(r);
      const call = new NfsCall(ctx, rpc);
      let out: Ok | LentResok<Ok>;
      try {
        out = await p.run(args, call);
      } catch (e) {
        const err = toNfsError(e, { op: p.name });
        rpc.log.debug({ proc: p.name, xid: rpc.xid, status: NFSSTAT3_NAMES[err.status], ...err.context, pre: undefined, toPre: undefined }, 'nfs: failed');
        return encodeResult(p, { status: err.status, resfail: await p.resfail(args, err, call) });
      } finally {
        // Whatever it changed (a failure can be partial) is stat'ed again by the next listing.
        if (p.changes) {
          ctx.vfs.changed();
          for (const fh of p.changes(args)) ctx.entries.changed(fh.toString('latin1'));
        }
      }
      if (!(out instanceof LentResok)) return encodeResult(p, { status: NFS3_OK, resok: out });
      try {
        return { body: encodeResult(p, { status: NFS3_OK, resok: out.resok }), release: out.release };
      } catch (e) {
        out.release();
        throw e;
      }
    },
  };
}
