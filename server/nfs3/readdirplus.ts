import { ACCESS3_READ } from '../exports/access.ts';
import type { XdrReader } from '../../xdr/reader.ts';
import { encodePostOpAttr, FATTR3_SIZE, fattr3FromStats, fileidOf } from '../vfs/attr.ts';
import { FH_SIZE } from '../vfs/fh.ts';
import { NFS3_COOKIEVERFSIZE } from './constants.ts';
import { readDirPage, xdrStringSize } from './dirlist.ts';
import { failAttr, okWriter, type NfsProcedure } from './procedure.ts';
import { READDIR3RESOK_FIXED } from './readdir.ts';
import { decodeNfsFh3, encodePostOpFh3, type nfs_fh3 } from './xdr.ts';
import { payloadLimit } from './context.ts';

/** RFC 1813 §3.3.17 */
export interface READDIRPLUS3args {
  dir: nfs_fh3;
  cookie: bigint;
  cookieverf: Buffer;
  dircount: number;
  maxcount: number;
}

/** fileid + name + cookie: what `dircount` counts. */
function dirInfoSize(name: string): number {
  return 8 + xdrStringSize(name) + 8;
}

/** One entryplus3 with its "value follows" word, attributes and handle. */
export function entryplus3Size(name: string): number {
  return 4 + dirInfoSize(name) + 4 + FATTR3_SIZE + 4 + 4 + FH_SIZE;
}

/** Pages the same way as READDIR (same cookies), adding each entry's attributes and handle. */
export const readdirplus: NfsProcedure<READDIRPLUS3args> = {
  name: 'READDIRPLUS',
  decode: (r: XdrReader) => ({
    dir: decodeNfsFh3(r),
    cookie: r.uint64(),
    cookieverf: r.fixedOpaque(NFS3_COOKIEVERFSIZE),
    dircount: r.uint32(),
    maxcount: r.uint32(),
  }),
  async run(a, call) {
    const dir = await call.node(a.dir);
    if (dir.st.isDirectory()) call.require(dir, ACCESS3_READ, 'readdirplus');
    let room = Math.min(a.maxcount, payloadLimit(call.ctx.limits.maxReaddir, call.rpc.transport)) - READDIR3RESOK_FIXED;
    let dirRoom = a.dircount;
    const page = await readDirPage(dir, a.cookie, call.ctx.vfs, (e) => {
      const size = entryplus3Size(e.name);
      const info = dirInfoSize(e.name);
      if (size > room || info > dirRoom) return false;
      room -= size;
      dirRoom -= info;
      return true;
    });
    const w = okWriter();
    encodePostOpAttr(w, fattr3FromStats(dir.st, dir.exp));
    w.fixedOpaque(a.cookieverf);
    for (const e of page.entries) {
      const n = e.node;
      w.bool(true).uint64(fileidOf(n.exp, n.st.dev, n.st.ino)).string(e.name).uint64(e.cookie);
      encodePostOpAttr(w, fattr3FromStats(n.st, n.exp));
      encodePostOpFh3(w, n.fh);
    }
    w.bool(false).bool(page.eof);
    return w;
  },
  resfail: failAttr((a) => a.dir),
};
