import { ACCESS3_WRITES } from '../exports/access.ts';
import type { XdrReader } from '../../xdr/reader.ts';
import { encodePostOpAttr, fattr3FromStats } from './attr.ts';
import { failAttr, okWriter, type NfsProcedure } from './procedure.ts';
import { decodeNfsFh3, type nfs_fh3 } from './xdr.ts';

/** RFC 1813 §3.3.4 */
export interface ACCESS3args {
  object: nfs_fh3;
  access: number;
}

export const access: NfsProcedure<ACCESS3args> = {
  name: 'ACCESS',
  decode: (r: XdrReader) => ({ object: decodeNfsFh3(r), access: r.uint32() }),
  async run(a, call) {
    const n = await call.node(a.object);
    let granted = call.allowed(n, a.access);
    // A read-only export grants no write bits whatever the mode says.
    if (!call.grant(n.exp).opts.rw) granted &= ~ACCESS3_WRITES;
    const w = okWriter();
    encodePostOpAttr(w, fattr3FromStats(n.st, n.exp));
    w.uint32(granted);
    return w;
  },
  resfail: failAttr((a) => a.object),
};
