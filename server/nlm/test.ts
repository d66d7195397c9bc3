import { NLM4_DENIED, NLM4_GRANTED, NLM4_STALE_FH, type nlm4_stats } from './constants.ts';
import { lengthOf } from './lock-manager.ts';
import { graceDenied, requestOf, stat, type NlmProcedure } from './procedure.ts';
import { decodeTestargs, encodeTestres, type nlm4_holder, type nlm4_testargs } from './xdr.ts';

export interface TestRes {
  cookie: Buffer;
  stat: nlm4_stats;
  holder?: nlm4_holder;
}

/** NLM_TEST (F_GETLK): the first conflicting lock of another owner, if any. Refused during grace, as knfsd does. */
export const test: NlmProcedure<nlm4_testargs, TestRes> = {
  name: 'TEST',
  decode: decodeTestargs,
  run(a, call) {
    if (call.ctx.hooks.inGrace()) return { cookie: a.cookie, stat: graceDenied(call) };
    const req = requestOf(call, a.alock, a.exclusive);
    if (!req) return { cookie: a.cookie, stat: stat(call, NLM4_STALE_FH) };
    const h = call.ctx.locks.test(req);
    if (!h) return { cookie: a.cookie, stat: NLM4_GRANTED };
    return { cookie: a.cookie, stat: NLM4_DENIED, holder: { exclusive: h.exclusive, svid: h.owner.svid, oh: h.owner.oh, l_offset: h.start, l_len: lengthOf(h) } };
  },
  encode: (w, r, vers) => encodeTestres(w, r.cookie, r.stat, r.holder, vers),
};
