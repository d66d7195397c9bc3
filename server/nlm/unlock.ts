import { NLM4_DENIED_NOLOCKS, NLM4_GRANTED, NLM4_STALE_FH } from './constants.ts';
import { rangeOf } from './lock-manager.ts';
import { ownerOf } from './context.ts';
import { graceDenied, stat, type NlmProcedure, type NlmRes } from './procedure.ts';
import { decodeUnlockargs, encodeRes, type nlm4_unlockargs } from './xdr.ts';

/** NLM_UNLOCK (F_UNLCK): an unlock of a range never locked succeeds, as in POSIX. */
export const unlock: NlmProcedure<nlm4_unlockargs, NlmRes> = {
  name: 'UNLOCK',
  decode: decodeUnlockargs,
  run(a, call) {
    const res = (s: Parameters<typeof stat>[1]): NlmRes => ({ cookie: a.cookie, stat: stat(call, s) });
    if (call.ctx.hooks.inGrace()) return res(graceDenied(call));
    const file = call.ctx.fileKey(a.alock.fh);
    if (file === undefined) return res(NLM4_STALE_FH);
    const r = call.ctx.locks.unlock(file, ownerOf(a.alock), rangeOf(a.alock.l_offset, a.alock.l_len));
    if (r === true) return res(NLM4_GRANTED);
    call.ctx.log.info({ caller: a.alock.caller_name, reason: r }, 'nlm: unlock refused (limit)');
    return res(NLM4_DENIED_NOLOCKS);
  },
  encode: (w, r) => encodeRes(w, r.cookie, r.stat),
};
