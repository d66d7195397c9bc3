import { statfs } from 'node:fs/promises';
import type { XdrReader } from '../../xdr/reader.ts';
import { encodePostOpAttr, fattr3FromStats } from './attr.ts';
import { toNfsError } from './errors.ts';
import { failAttr, okWriter, type NfsProcedure } from './procedure.ts';
import { decodeNfsFh3, type nfs_fh3 } from './xdr.ts';

/** RFC 1813 §3.3.18 */
export interface FSSTAT3args {
  fsroot: nfs_fh3;
}

export const fsstat: NfsProcedure<FSSTAT3args> = {
  name: 'FSSTAT',
  decode: (r: XdrReader) => ({ fsroot: decodeNfsFh3(r) }),
  async run(a, call) {
    const n = await call.node(a.fsroot);
    // The export's file system (the object may sit on a mount below it; df reports the export's).
    const s = await statfs(n.exp.dir, { bigint: true }).catch((e: unknown) => {
      throw toNfsError(e, { op: 'statfs', path: n.exp.path });
    });
    const w = okWriter();
    encodePostOpAttr(w, fattr3FromStats(n.st, n.exp));
    w.uint64(s.blocks * s.bsize).uint64(s.bfree * s.bsize).uint64(s.bavail * s.bsize);
    w.uint64(s.files).uint64(s.ffree).uint64(s.ffree);
    // invarsec 0: the figures change at any time.
    w.uint32(0);
    return w;
  },
  resfail: failAttr((a) => a.fsroot),
};
