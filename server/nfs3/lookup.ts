import { ACCESS3_LOOKUP } from '../exports/access.ts';
import type { XdrReader } from '../../xdr/reader.ts';
import { fattr3FromStats } from './attr.ts';
import type { NfsProcedure } from './procedure.ts';
import { LOOKUP3res, type LOOKUP3resfail, type LOOKUP3resok } from './results.ts';
import { decodeDiropargs3, type diropargs3 } from './xdr.ts';

/** RFC 1813 §3.3.3 */
export interface LOOKUP3args {
  what: diropargs3;
}

export const lookup: NfsProcedure<LOOKUP3args, LOOKUP3resok, LOOKUP3resfail> = {
  name: 'LOOKUP',
  decode: (r: XdrReader) => ({ what: decodeDiropargs3(r) }),
  result: LOOKUP3res,
  async run(a, call) {
    const dir = await call.node(a.what.dir);
    // Searching a directory needs its x bit (ACCESS3_LOOKUP on a directory).
    if (dir.st.isDirectory()) call.require(dir, ACCESS3_LOOKUP, 'lookup');
    const obj = await call.ctx.vfs.lookup(dir, a.what.name);
    return { object: obj.fh, obj_attributes: fattr3FromStats(obj.st, obj.exp), dir_attributes: fattr3FromStats(dir.st, dir.exp) };
  },
  resfail: async (a, err, call) => ({ dir_attributes: await call.attrsOf(a.what.dir, err.status) }),
};
