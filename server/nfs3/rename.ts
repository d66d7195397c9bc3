import type { XdrReader } from '../../xdr/reader.ts';
import { encodeWccData, type pre_op_attr } from '../vfs/attr.ts';
import type { NfsError } from './errors.ts';
import type { NfsCall, NfsProcedure } from './procedure.ts';
import { refuseWrite } from './readonly.ts';
import { decodeDiropargs3, type diropargs3 } from './xdr.ts';

/** RFC 1813 §3.3.14 */
export interface RENAME3args {
  from: diropargs3;
  to: diropargs3;
}

export const rename: NfsProcedure<RENAME3args> = {
  name: 'RENAME',
  nonIdempotent: true,
  decode: (r: XdrReader) => ({ from: decodeDiropargs3(r), to: decodeDiropargs3(r) }),
  run: (a, call) => refuseWrite(call, a.from.dir, 'rename'),
  // RENAME3resfail: fromdir_wcc, todir_wcc.
  async resfail(w, a, err: NfsError, call: NfsCall) {
    encodeWccData(w, { before: err.context.pre as pre_op_attr, after: await call.attrsOf(a.from.dir, err.status) });
    encodeWccData(w, { before: err.context.toPre as pre_op_attr, after: await call.attrsOf(a.to.dir, err.status) });
  },
};
