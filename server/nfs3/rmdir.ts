import type { XdrReader } from '../../xdr/reader.ts';
import { decodeDiropargs3, type diropargs3 } from './xdr.ts';
import { failWcc, type NfsProcedure } from './procedure.ts';
import { refuseWrite } from './readonly.ts';

/** RFC 1813 §3.3 RMDIR */
export interface RMDIR3args { object: diropargs3 }

export const rmdir: NfsProcedure<RMDIR3args> = {
  name: 'RMDIR',
  nonIdempotent: true,
  decode: (r: XdrReader) => ({ object: decodeDiropargs3(r) }),
  run: (a, call) => refuseWrite(call, a.object.dir, 'rmdir'),
  resfail: failWcc((a) => a.object.dir),
};
