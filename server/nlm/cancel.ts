import { NLM4_DENIED, NLM4_GRANTED, NLM4_STALE_FH } from './constants.ts';
import { graceDenied, requestOf, stat, type NlmProcedure, type NlmRes } from './procedure.ts';
import { decodeCancargs, encodeRes, type nlm4_cancargs } from './xdr.ts';

/**
 * NLM_CANCEL: withdraws a blocked LOCK; if it was granted meanwhile and the client has not yet
 * acknowledged the GRANTED callback, the lock is released. A cancel of nothing is DENIED.
 */
export const cancel: NlmProcedure<nlm4_cancargs, NlmRes> = {
  name: 'CANCEL',
  decode: decodeCancargs,
  run(a, call) {
    const res = (s: Parameters<typeof stat>[1]): NlmRes => ({ cookie: a.cookie, stat: stat(call, s) });
    if (call.ctx.hooks.inGrace()) return res(graceDenied(call));
    const req = requestOf(call, a.alock, a.exclusive);
    if (!req) return res(NLM4_STALE_FH);
    return res(call.ctx.locks.cancel(req) || call.ctx.grants.cancel(req) ? NLM4_GRANTED : NLM4_DENIED);
  },
  encode: (w, r) => encodeRes(w, r.cookie, r.stat),
};
