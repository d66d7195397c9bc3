import type { XdrReader } from '../../xdr/reader.ts';
import { PAGE_SIZE } from '../pagecache/page-cache.ts';
import { fattr3FromStats } from './attr.ts';
import { payloadLimit } from './context.ts';
import { FSF3_CANSETTIME, FSF3_HOMOGENEOUS, FSF3_LINK, FSF3_SYMLINK } from './constants.ts';
import type { NfsProcedure } from './procedure.ts';
import { FSINFO3res, type FSINFO3resfail, type FSINFO3resok } from './results.ts';
import { decodeNfsFh3, type nfs_fh3 } from './xdr.ts';

/** RFC 1813 §3.3.19 */
export interface FSINFO3args {
  fsroot: nfs_fh3;
}

/** Largest file offset + 1 that Node can address exactly (2^53 - 1). */
export const MAX_FILE_SIZE = BigInt(Number.MAX_SAFE_INTEGER);

export const fsinfo: NfsProcedure<FSINFO3args, FSINFO3resok, FSINFO3resfail> = {
  name: 'FSINFO',
  decode: (r: XdrReader) => ({ fsroot: decodeNfsFh3(r) }),
  result: FSINFO3res,
  async run(a, call) {
    const n = await call.node(a.fsroot);
    const t = call.rpc.transport;
    const maxRead = payloadLimit(call.ctx.limits.maxRead, t);
    const maxWrite = payloadLimit(call.ctx.limits.maxWrite, t);
    const maxReaddir = payloadLimit(call.ctx.limits.maxReaddir, t);
    return {
      obj_attributes: fattr3FromStats(n.st, n.exp),
      // Preferred sizes equal the maxima: a client that takes less pays for it in round trips.
      rtmax: maxRead,
      rtpref: maxRead,
      rtmult: PAGE_SIZE,
      wtmax: maxWrite,
      wtpref: maxWrite,
      wtmult: PAGE_SIZE,
      dtpref: maxReaddir,
      maxfilesize: MAX_FILE_SIZE,
      // The server stores nanoseconds.
      time_delta: { seconds: 0, nseconds: 1 },
      properties: FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME,
    };
  },
  resfail: async (a, err, call) => ({ obj_attributes: await call.attrsOf(a.fsroot, err.status) }),
};
