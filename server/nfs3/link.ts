import type { XdrReader } from '../../xdr/reader.ts';
import { encodePostOpAttr, encodeWccData, type pre_op_attr } from '../vfs/attr.ts';
import type { NfsError } from './errors.ts';
import type { NfsCall, NfsProcedure } from './procedure.ts';
import { refuseWrite } from './readonly.ts';
import { decodeDiropargs3, decodeNfsFh3, type diropargs3, type nfs_fh3 } from './xdr.ts';

/** RFC 1813 §3.3.15 */
export interface LINK3args {
  file: nfs_fh3;
  link: diropargs3;
}

export const link: NfsProcedure<LINK3args> = {
  name: 'LINK',
  nonIdempotent: true,
  decode: (r: XdrReader) => ({ file: decodeNfsFh3(r), link: decodeDiropargs3(r) }),
  run: (a, call) => refuseWrite(call, a.link.dir, 'link'),
  // LINK3resfail: file_attributes, linkdir_wcc.
  async resfail(w, a, err: NfsError, call: NfsCall) {
    encodePostOpAttr(w, await call.attrsOf(a.file, err.status));
    encodeWccData(w, { before: err.context.pre as pre_op_attr, after: await call.attrsOf(a.link.dir, err.status) });
  },
};
