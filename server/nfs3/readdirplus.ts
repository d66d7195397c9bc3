import { ACCESS3_READ } from '../exports/access.ts';
import type { XdrReader } from '../../xdr/reader.ts';
import { fattr3FromStats } from './attr.ts';
import { NFS3_COOKIEVERFSIZE } from './constants.ts';
import { dirInfoSize, readDirPage } from './dirlist.ts';
import type { NfsProcedure } from './procedure.ts';
import { READDIR3RESOK_FIXED } from './readdir.ts';
import { READDIRPLUS3resServer, type entryplus3, type READDIRPLUS3resfail, type READDIRPLUS3resok } from './results.ts';
import { decodeNfsFh3, type nfs_fh3 } from './xdr.ts';
import { payloadLimit } from './context.ts';

/** RFC 1813 §3.3.17 */
export interface READDIRPLUS3args {
  dir: nfs_fh3;
  cookie: bigint;
  cookieverf: Buffer;
  dircount: number;
  maxcount: number;
}

/** Pages the same way as READDIR (same cookies), adding each entry's attributes and handle. */
export const readdirplus: NfsProcedure<READDIRPLUS3args, READDIRPLUS3resok<entryplus3 | Buffer>, READDIRPLUS3resfail> = {
  name: 'READDIRPLUS',
  result: READDIRPLUS3resServer,
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
    const page = await readDirPage(
      dir,
      a.cookie,
      call.ctx,
      (e) => {
        const info = dirInfoSize(e.name);
        if (e.xdr.length > room || info > dirRoom) return false;
        room -= e.xdr.length;
        dirRoom -= info;
        return true;
      },
      () => `${room}/${dirRoom}`,
    );
    const entries = page.entries.map((e) => e.xdr);
    if (page.run) entries.push(page.run);
    return {
      dir_attributes: fattr3FromStats(dir.st, dir.exp),
      cookieverf: a.cookieverf,
      reply: { entries, eof: page.eof },
    };
  },
  resfail: async (a, err, call) => ({ dir_attributes: await call.attrsOf(a.dir, err.status) }),
};
