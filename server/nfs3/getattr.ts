import type { XdrReader } from '../../xdr/reader.ts';
import { encodeFattr3, fattr3FromStats } from './attr.ts';
import { failVoid, okWriter, type NfsProcedure } from './procedure.ts';
import { decodeNfsFh3, type nfs_fh3 } from './xdr.ts';

/** RFC 1813 §3.3.1 */
export interface GETATTR3args {
  object: nfs_fh3;
}

export const getattr: NfsProcedure<GETATTR3args> = {
  name: 'GETATTR',
  decode: (r: XdrReader) => ({ object: decodeNfsFh3(r) }),
  async run(a, call) {
    const n = await call.node(a.object);
    const w = okWriter();
    encodeFattr3(w, fattr3FromStats(n.st, n.exp));
    return w;
  },
  resfail: failVoid,
};
