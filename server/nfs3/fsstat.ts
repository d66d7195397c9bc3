import { statfs } from 'node:fs/promises';
import type { XdrReader } from '../../xdr/reader.ts';
import { fattr3FromStats } from './attr.ts';
import { toNfsError } from './errors.ts';
import type { NfsProcedure } from './procedure.ts';
import { FSSTAT3res, type FSSTAT3resfail, type FSSTAT3resok } from './results.ts';
import { decodeNfsFh3, type nfs_fh3 } from './xdr.ts';

/** RFC 1813 §3.3.18 */
export interface FSSTAT3args {
  fsroot: nfs_fh3;
}

export const fsstat: NfsProcedure<FSSTAT3args, FSSTAT3resok, FSSTAT3resfail> = {
  name: 'FSSTAT',
  decode: (r: XdrReader) => ({ fsroot: decodeNfsFh3(r) }),
  result: FSSTAT3res,
  async run(a, call) {
    const n = await call.node(a.fsroot);
    // The export's file system (the object may sit on a mount below it; df reports the export's).
    const s = await statfs(n.exp.dir, { bigint: true }).catch((e: unknown) => {
      throw toNfsError(e, { op: 'statfs', path: n.exp.path });
    });
    return {
      obj_attributes: fattr3FromStats(n.st, n.exp),
      tbytes: s.blocks * s.bsize,
      fbytes: s.bfree * s.bsize,
      abytes: s.bavail * s.bsize,
      tfiles: s.files,
      ffiles: s.ffree,
      afiles: s.ffree,
      // The figures change at any time.
      invarsec: 0,
    };
  },
  resfail: async (a, err, call) => ({ obj_attributes: await call.attrsOf(a.fsroot, err.status) }),
};
