import type { XdrReader } from '../../xdr/reader.ts';
import { fattr3FromStats } from './attr.ts';
import type { NfsProcedure } from './procedure.ts';
import { GETATTR3res, type GETATTR3resfail, type GETATTR3resok } from './results.ts';
import { decodeNfsFh3, type nfs_fh3 } from './xdr.ts';

/** RFC 1813 §3.3.1 */
export interface GETATTR3args {
  object: nfs_fh3;
}

export const getattr: NfsProcedure<GETATTR3args, GETATTR3resok, GETATTR3resfail> = {
  name: 'GETATTR',
  decode: (r: XdrReader) => ({ object: decodeNfsFh3(r) }),
  result: GETATTR3res,
  async run(a, call) {
    const n = await call.node(a.object);
    return { obj_attributes: fattr3FromStats(n.st, n.exp) };
  },
  resfail: async () => undefined,
};
