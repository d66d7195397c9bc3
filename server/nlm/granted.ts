import { NLM4_DENIED } from './constants.ts';
import type { NlmProcedure, NlmRes } from './procedure.ts';
import { decodeTestargs, encodeRes, type nlm4_testargs } from './xdr.ts';

/** NLM_GRANTED is the server-to-client callback; this server waits for no lock of its own, so none matches. */
export const granted: NlmProcedure<nlm4_testargs, NlmRes> = {
  name: 'GRANTED',
  decode: decodeTestargs,
  run: (a) => ({ cookie: a.cookie, stat: NLM4_DENIED }),
  encode: (w, r) => encodeRes(w, r.cookie, r.stat),
};
