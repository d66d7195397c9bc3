import { NLM4_DENIED, NLM4_DENIED_NOLOCKS, NLM4_GRANTED, NLM4_STALE_FH, type nlm4_stats } from './constants.ts';
import { graceDenied, type NlmProcedure } from './procedure.ts';
import { decodeShareargs, encodeShareres, type nlm4_shareargs } from './xdr.ts';

interface ShareRes {
  cookie: Buffer;
  stat: nlm4_stats;
}

const STALE = (v: number): nlm4_stats => (v === 4 ? NLM4_STALE_FH : NLM4_DENIED_NOLOCKS);

/** NLM_SHARE (versions 3 and 4): a DOS share reservation; new ones are refused during grace. */
export const share: NlmProcedure<nlm4_shareargs, ShareRes> = {
  name: 'SHARE',
  decode: (r) => decodeShareargs(r),
  run(a, call) {
    if (call.ctx.hooks.inGrace() !== a.reclaim) return { cookie: a.cookie, stat: graceDenied(call) };
    const file = call.ctx.fileKey(a.share.fh);
    if (file === undefined) return { cookie: a.cookie, stat: STALE(call.vers) };
    const r = call.ctx.shares.share({ file, caller: a.share.caller_name, oh: a.share.oh, mode: a.share.mode, access: a.share.access });
    return { cookie: a.cookie, stat: r === 'granted' ? NLM4_GRANTED : r === 'denied' ? NLM4_DENIED : NLM4_DENIED_NOLOCKS };
  },
  encode: (w, r) => encodeShareres(w, r.cookie, r.stat),
};

/** NLM_UNSHARE: removes the caller's reservation (none: still GRANTED). */
export const unshare: NlmProcedure<nlm4_shareargs, ShareRes> = {
  name: 'UNSHARE',
  decode: (r) => decodeShareargs(r),
  run(a, call) {
    if (call.ctx.hooks.inGrace()) return { cookie: a.cookie, stat: graceDenied(call) };
    const file = call.ctx.fileKey(a.share.fh);
    if (file === undefined) return { cookie: a.cookie, stat: STALE(call.vers) };
    call.ctx.shares.unshare(file, a.share.caller_name, a.share.oh);
    return { cookie: a.cookie, stat: NLM4_GRANTED };
  },
  encode: (w, r) => encodeShareres(w, r.cookie, r.stat),
};
