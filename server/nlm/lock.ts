import { NLM4_BLOCKED, NLM4_DENIED, NLM4_DENIED_NOLOCKS, NLM4_GRANTED, NLM4_STALE_FH } from './constants.ts';
import { graceDenied, requestOf, stat, type NlmCall, type NlmProcedure, type NlmRes } from './procedure.ts';
import { decodeLockargs, encodeRes, type nlm4_lockargs } from './xdr.ts';

/**
 * LOCK and NM_LOCK (the latter without NSM monitoring). A new lock is refused during grace and a
 * reclaim outside it, as knfsd does; a blocking lock that must wait is queued and answered BLOCKED.
 */
async function lockWith(a: nlm4_lockargs, call: NlmCall, monitored: boolean): Promise<NlmRes> {
  const { ctx } = call;
  const res = (s: Parameters<typeof stat>[1]): NlmRes => ({ cookie: a.cookie, stat: stat(call, s) });
  if (ctx.hooks.inGrace() !== a.reclaim) return res(graceDenied(call));
  const req = requestOf(call, a.alock, a.exclusive);
  if (!req) return res(NLM4_STALE_FH);
  if (monitored && !(await ctx.hooks.monitor(a.alock.caller_name, call.rpc))) return res(NLM4_DENIED_NOLOCKS);
  const tag = { vers: call.vers, transport: call.rpc.transport, address: call.rpc.remoteAddress, cookie: a.cookie, alock: a.alock };
  const out = ctx.locks.lock(req, { block: a.block, tag });
  switch (out.status) {
    case 'granted':
      ctx.grants.forget(req);
      return res(NLM4_GRANTED);
    case 'denied':
      return res(NLM4_DENIED);
    case 'blocked':
      // A re-sent blocked LOCK updates where the GRANTED callback goes.
      out.waiter.tag = tag;
      return res(NLM4_BLOCKED);
    case 'nolocks':
      ctx.log.info({ caller: a.alock.caller_name, reason: out.reason }, 'nlm: lock refused (limit)');
      return res(NLM4_DENIED_NOLOCKS);
  }
}

export const lock: NlmProcedure<nlm4_lockargs, NlmRes> = {
  name: 'LOCK',
  decode: decodeLockargs,
  run: (a, call) => lockWith(a, call, true),
  encode: (w, r) => encodeRes(w, r.cookie, r.stat),
};

export const nmLock: NlmProcedure<nlm4_lockargs, NlmRes> = {
  name: 'NM_LOCK',
  decode: decodeLockargs,
  run: (a, call) => lockWith(a, call, false),
  encode: (w, r) => encodeRes(w, r.cookie, r.stat),
};
