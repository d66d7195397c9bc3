import { ACCESS3_WRITES } from '../exports/access.ts';
import type { XdrReader } from '../../xdr/reader.ts';
import { fattr3FromStats } from './attr.ts';
import type { NfsProcedure } from './procedure.ts';
import { ACCESS3res, type ACCESS3resfail, type ACCESS3resok } from './results.ts';
import { decodeNfsFh3, type nfs_fh3 } from './xdr.ts';

/** RFC 1813 §3.3.4 */
export interface ACCESS3args {
  object: nfs_fh3;
  access: number;
}

export const access: NfsProcedure<ACCESS3args, ACCESS3resok, ACCESS3resfail> = {
  name: 'ACCESS',
  decode: (r: XdrReader) => ({ object: decodeNfsFh3(r), access: r.uint32() }),
  result: ACCESS3res,
  async run(a, call) {
    const n = await call.node(a.object);
    let granted = call.allowed(n, a.access);
    // A read-only export grants no write bits whatever the mode says.
    if (!call.grant(n.exp).opts.rw) granted &= ~ACCESS3_WRITES;
    return { obj_attributes: fattr3FromStats(n.st, n.exp), access: granted };
  },
  resfail: async (a, err, call) => ({ obj_attributes: await call.attrsOf(a.object, err.status) }),
};
