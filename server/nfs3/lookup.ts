import { ACCESS3_LOOKUP } from '../exports/access.ts';
import type { XdrReader } from '../../xdr/reader.ts';
import { encodePostOpAttr, fattr3FromStats } from './attr.ts';
import { failAttr, okWriter, type NfsProcedure } from './procedure.ts';
import { decodeDiropargs3, encodeNfsFh3, type diropargs3 } from './xdr.ts';

/** RFC 1813 §3.3.3 */
export interface LOOKUP3args {
  what: diropargs3;
}

export const lookup: NfsProcedure<LOOKUP3args> = {
  name: 'LOOKUP',
  decode: (r: XdrReader) => ({ what: decodeDiropargs3(r) }),
  async run(a, call) {
    const dir = await call.node(a.what.dir);
    // Searching a directory needs its x bit (ACCESS3_LOOKUP on a directory).
    if (dir.st.isDirectory()) call.require(dir, ACCESS3_LOOKUP, 'lookup');
    const obj = await call.ctx.vfs.lookup(dir, a.what.name);
    const w = okWriter();
    encodeNfsFh3(w, obj.fh);
    encodePostOpAttr(w, fattr3FromStats(obj.st, obj.exp));
    encodePostOpAttr(w, fattr3FromStats(dir.st, dir.exp));
    return w;
  },
  resfail: failAttr((a) => a.what.dir),
};
