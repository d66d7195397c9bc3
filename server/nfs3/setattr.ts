import type { XdrReader } from '../../xdr/reader.ts';
import { decodeNfstime3, nfstime3FromNs, wccAttrFromStats, type nfstime3 } from './attr.ts';
import { DONT_CHANGE, NFS3ERR_NOT_SYNC } from './constants.ts';
import { NfsError } from './errors.ts';
import { applySattr, truncateFile, wccOf, withPre } from './modify.ts';
import { failureWcc, type NfsProcedure } from './procedure.ts';
import { SETATTR3res, type SETATTR3resfail, type SETATTR3resok } from './results.ts';
import { decodeNfsFh3, decodeSattr3, type nfs_fh3, type sattr3 } from './xdr.ts';

/** RFC 1813 §3.3.2 */
export interface SETATTR3args {
  object: nfs_fh3;
  new_attributes: sattr3;
  /** sattrguard3: apply only if the object's ctime is still this. */
  guard: nfstime3 | undefined;
}

export const setattr: NfsProcedure<SETATTR3args, SETATTR3resok, SETATTR3resfail> = {
  name: 'SETATTR',
  nonIdempotent: true,
  changes: (a) => [a.object],
  result: SETATTR3res,
  decode: (r: XdrReader) => ({ object: decodeNfsFh3(r), new_attributes: decodeSattr3(r), guard: r.optional(decodeNfstime3) }),
  async run(a, call) {
    const n = await call.node(a.object);
    const pre = wccAttrFromStats(n.st);
    await withPre(pre, async () => {
      call.requireWritable(n.exp, 'setattr');
      if (a.guard) {
        const ctime = nfstime3FromNs(n.st.ctimeNs);
        if (ctime.seconds !== a.guard.seconds || ctime.nseconds !== a.guard.nseconds) {
          throw new NfsError(NFS3ERR_NOT_SYNC, { op: 'setattr', path: n.rel });
        }
      }
      const s = a.new_attributes;
      await applySattr(call, n, { ...s, atime: { how: DONT_CHANGE }, mtime: { how: DONT_CHANGE } }, 'setattr');
      if (s.size !== undefined) await truncateFile(call, n, s.size, 'setattr');
      // Times last: truncating sets mtime, and the client's explicit time must win.
      if (s.atime.how !== DONT_CHANGE || s.mtime.how !== DONT_CHANGE) await applySattr(call, n, { atime: s.atime, mtime: s.mtime }, 'setattr');
    });
    return { obj_wcc: await wccOf(call, n, pre) };
  },
  resfail: async (a, err, call) => ({ obj_wcc: await failureWcc(call, a.object, err) }),
};
