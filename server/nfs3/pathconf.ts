import type { XdrReader } from '../../xdr/reader.ts';
import { encodePostOpAttr, fattr3FromStats } from './attr.ts';
import { NFS3_NAME_MAX } from './constants.ts';
import { failAttr, okWriter, type NfsProcedure } from './procedure.ts';
import { decodeNfsFh3, type nfs_fh3 } from './xdr.ts';

/** RFC 1813 §3.3.20 */
export interface PATHCONF3args {
  object: nfs_fh3;
}

/** Hard links per object: ext4's limit (Node exposes no pathconf; the file system enforces its own with EMLINK). */
export const LINK_MAX = 65000;

export const pathconf: NfsProcedure<PATHCONF3args> = {
  name: 'PATHCONF',
  decode: (r: XdrReader) => ({ object: decodeNfsFh3(r) }),
  async run(a, call) {
    const n = await call.node(a.object);
    const w = okWriter();
    encodePostOpAttr(w, fattr3FromStats(n.st, n.exp));
    w.uint32(LINK_MAX).uint32(NFS3_NAME_MAX);
    // no_trunc (long names are refused, not cut), chown_restricted, case-sensitive, case-preserving.
    w.bool(true).bool(true).bool(false).bool(true);
    return w;
  },
  resfail: failAttr((a) => a.object),
};
