import type { XdrReader } from '../../xdr/reader.ts';
import { decodeDiropargs3, type diropargs3 } from './xdr.ts';
import { failWcc, type NfsProcedure } from './procedure.ts';
import { refuseWrite } from './readonly.ts';

/** RFC 1813 §3.3 REMOVE */
export interface REMOVE3args { object: diropargs3 }

export const remove: NfsProcedure<REMOVE3args> = {
  name: 'REMOVE',
  nonIdempotent: true,
  decode: (r: XdrReader) => ({ object: decodeDiropargs3(r) }),
  run: (a, call) => refuseWrite(call, a.object.dir, 'remove'),
  resfail: failWcc((a) => a.object.dir),
};
