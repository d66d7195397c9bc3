/**
 * The one shape of an NLM procedure, served two ways: synchronously (the result is the reply) and
 * as its _MSG variant (the reply is void, and the result travels back as a call to the client's
 * _RES procedure, found through the client's portmapper).
 */
import type { CallContext, Procedure } from '../../rpc/program.ts';
import type { XdrReader } from '../../xdr/reader.ts';
import { XdrWriter } from '../../xdr/writer.ts';
import { NLM4_DENIED_GRACE_PERIOD, NLM_PROGRAM, statForVersion, type nlm4_stats } from './constants.ts';
import { lockRequestOf, type NlmContext } from './context.ts';
import type { LockRequest } from './lock-manager.ts';
import type { nlm4_lock } from './xdr.ts';

export interface NlmCall {
  ctx: NlmContext;
  rpc: CallContext;
  vers: number;
}

export interface NlmProcedure<A, R> {
  name: string;
  decode(r: XdrReader, vers: number): A;
  run(a: A, call: NlmCall): R | Promise<R>;
  encode(w: XdrWriter, res: R, vers: number): XdrWriter;
}

/** The result most procedures have (nlm4_res). */
export interface NlmRes {
  cookie: Buffer;
  stat: nlm4_stats;
}

export function toRpcProcedure<A, R>(p: NlmProcedure<A, R>, ctx: NlmContext): Procedure {
  return {
    name: p.name,
    async handler(r, rpc) {
      const a = p.decode(r, rpc.vers);
      return p.encode(new XdrWriter(), await p.run(a, { ctx, rpc, vers: rpc.vers }), rpc.vers);
    },
  };
}

/** The _MSG variant: decoded (bad arguments are GARBAGE_ARGS as usual), answered void, result sent to `resProc`. */
export function toMsgProcedure<A, R>(p: NlmProcedure<A, R>, ctx: NlmContext, resProc: number): Procedure {
  return {
    name: `${p.name}_MSG`,
    async handler(r, rpc) {
      const a = p.decode(r, rpc.vers);
      const res = p.encode(new XdrWriter(), await p.run(a, { ctx, rpc, vers: rpc.vers }), rpc.vers);
      ctx.peers.call(rpc.remoteAddress, rpc.transport, NLM_PROGRAM, rpc.vers, resProc, res).catch((e: unknown) => {
        ctx.log.info({ client: rpc.remoteAddress, proc: p.name, err: (e as Error).message }, 'nlm: _RES callback failed');
      });
      return new XdrWriter();
    },
  };
}

/** The stat as this version of the protocol can say it. */
export function stat(call: NlmCall, s: nlm4_stats): nlm4_stats {
  return statForVersion(call.vers, s);
}

/** DENIED_GRACE_PERIOD, counted. */
export function graceDenied(call: NlmCall): nlm4_stats {
  call.ctx.counters.graceDenied++;
  return NLM4_DENIED_GRACE_PERIOD;
}

/** The lock request an nlm4_lock names, or undefined when its handle is not one of ours (STALE_FH). */
export function requestOf(call: NlmCall, alock: nlm4_lock, exclusive: boolean): LockRequest | undefined {
  const file = call.ctx.fileKey(alock.fh);
  return file === undefined ? undefined : lockRequestOf(file, alock, exclusive);
}
