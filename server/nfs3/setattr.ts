import type { XdrReader } from '../../xdr/reader.ts';
import { decodeNfstime3, type nfstime3 } from '../vfs/attr.ts';
import { decodeNfsFh3, decodeSattr3, type nfs_fh3, type sattr3 } from './xdr.ts';
import { failWcc, type NfsProcedure } from './procedure.ts';
import { refuseWrite } from './readonly.ts';

/** RFC 1813 §3.3 SETATTR */
export interface SETATTR3args { object: nfs_fh3; new_attributes: sattr3; guard: nfstime3 | undefined }

export const setattr: NfsProcedure<SETATTR3args> = {
  name: 'SETATTR',
  nonIdempotent: true,
  decode: (r: XdrReader) => ({ object: decodeNfsFh3(r), new_attributes: decodeSattr3(r), guard: r.optional(decodeNfstime3) }),
  run: (a, call) => refuseWrite(call, a.object, 'setattr'),
  resfail: failWcc((a) => a.object),
};
