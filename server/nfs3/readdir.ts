import { ACCESS3_READ } from '../exports/access.ts';
import type { XdrReader } from '../../xdr/reader.ts';
import { FATTR3_SIZE, fattr3FromStats } from './attr.ts';
import { NFS3_COOKIEVERFSIZE } from './constants.ts';
import { readDirPage, xdrStringSize } from './dirlist.ts';
import type { NfsProcedure } from './procedure.ts';
import { READDIR3res, type READDIR3resfail, type READDIR3resok } from './results.ts';
import { decodeNfsFh3, type nfs_fh3 } from './xdr.ts';
import { payloadLimit } from './context.ts';

/** RFC 1813 §3.3.16 */
export interface READDIR3args {
  dir: nfs_fh3;
  cookie: bigint;
  cookieverf: Buffer;
  count: number;
}

/** status + dir_attributes + cookieverf + end of list + eof. */
export const READDIR3RESOK_FIXED = 4 + 4 + FATTR3_SIZE + NFS3_COOKIEVERFSIZE + 4 + 4;

/** One entry3, with the "value follows" word before it. */
export function entry3Size(name: string): number {
  return 4 + 8 + xdrStringSize(name) + 8;
}

export const readdir: NfsProcedure<READDIR3args, READDIR3resok, READDIR3resfail> = {
  name: 'READDIR',
  decode: (r: XdrReader) => ({ dir: decodeNfsFh3(r), cookie: r.uint64(), cookieverf: r.fixedOpaque(NFS3_COOKIEVERFSIZE), count: r.uint32() }),
  result: READDIR3res,
  async run(a, call) {
    const dir = await call.node(a.dir);
    if (dir.st.isDirectory()) call.require(dir, ACCESS3_READ, 'readdir');
    // `count` bounds the whole READDIR3resok as encoded (RFC 1813: "including all XDR overhead").
    let room = Math.min(a.count, payloadLimit(call.ctx.limits.maxReaddir, call.rpc.transport)) - READDIR3RESOK_FIXED;
    const page = await readDirPage(dir, a.cookie, call.ctx, (e) => {
      const size = entry3Size(e.name);
      if (size > room) return false;
      room -= size;
      return true;
    });
    return {
      dir_attributes: fattr3FromStats(dir.st, dir.exp),
      cookieverf: a.cookieverf,
      reply: {
        entries: page.entries.map((e) => ({ fileid: e.fileid, name: e.name, cookie: e.cookie })),
        eof: page.eof,
      },
    };
  },
  resfail: async (a, err, call) => ({ dir_attributes: await call.attrsOf(a.dir, err.status) }),
};
