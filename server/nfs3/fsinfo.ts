import type { XdrReader } from '../../xdr/reader.ts';
import { PAGE_SIZE } from '../pagecache/page-cache.ts';
import { encodePostOpAttr, fattr3FromStats } from '../vfs/attr.ts';
import { payloadLimit } from './context.ts';
import { FSF3_CANSETTIME, FSF3_HOMOGENEOUS, FSF3_LINK, FSF3_SYMLINK } from './constants.ts';
import { failAttr, okWriter, type NfsProcedure } from './procedure.ts';
import { decodeNfsFh3, type nfs_fh3 } from './xdr.ts';

/** RFC 1813 §3.3.19 */
export interface FSINFO3args {
  fsroot: nfs_fh3;
}

/** Largest file offset + 1 that Node can address exactly (2^53 - 1). */
export const MAX_FILE_SIZE = BigInt(Number.MAX_SAFE_INTEGER);

export const fsinfo: NfsProcedure<FSINFO3args> = {
  name: 'FSINFO',
  decode: (r: XdrReader) => ({ fsroot: decodeNfsFh3(r) }),
  async run(a, call) {
    const n = await call.node(a.fsroot);
    const t = call.rpc.transport;
    const maxRead = payloadLimit(call.ctx.limits.maxRead, t);
    const maxWrite = payloadLimit(call.ctx.limits.maxWrite, t);
    const maxReaddir = payloadLimit(call.ctx.limits.maxReaddir, t);
    const w = okWriter();
    encodePostOpAttr(w, fattr3FromStats(n.st, n.exp));
    // Preferred sizes equal the maxima: a client that takes less pays for it in round trips.
    w.uint32(maxRead).uint32(maxRead).uint32(PAGE_SIZE);
    w.uint32(maxWrite).uint32(maxWrite).uint32(PAGE_SIZE);
    w.uint32(maxReaddir);
    w.uint64(MAX_FILE_SIZE);
    // time_delta: the server stores nanoseconds.
    w.uint32(0).uint32(1);
    w.uint32(FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME);
    return w;
  },
  resfail: failAttr((a) => a.fsroot),
};
