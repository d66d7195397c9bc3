import type { XdrReader } from '../../xdr/reader.ts';
import { fattr3FromStats } from './attr.ts';
import { NFS3_NAME_MAX } from './constants.ts';
import type { NfsProcedure } from './procedure.ts';
import { PATHCONF3res, type PATHCONF3resfail, type PATHCONF3resok } from './results.ts';
import { decodeNfsFh3, type nfs_fh3 } from './xdr.ts';

/** RFC 1813 §3.3.20 */
export interface PATHCONF3args {
  object: nfs_fh3;
}

/** Hard links per object: ext4's limit (Node exposes no pathconf; the file system enforces its own with EMLINK). */
export const LINK_MAX = 65000;

export const pathconf: NfsProcedure<PATHCONF3args, PATHCONF3resok, PATHCONF3resfail> = {
  name: 'PATHCONF',
  decode: (r: XdrReader) => ({ object: decodeNfsFh3(r) }),
  result: PATHCONF3res,
  async run(a, call) {
    const n = await call.node(a.object);
    return {
      obj_attributes: fattr3FromStats(n.st, n.exp),
      linkmax: LINK_MAX,
      name_max: NFS3_NAME_MAX,
      // Long names are refused, not cut.
      no_trunc: true,
      chown_restricted: true,
      case_insensitive: false,
      case_preserving: true,
    };
  },
  resfail: async (a, err, call) => ({ obj_attributes: await call.attrsOf(a.object, err.status) }),
};
