import type { XdrReader } from '../../xdr/reader.ts';
import { CREATEMODE3_VALUES, EXCLUSIVE, NFS3_CREATEVERFSIZE, type createmode3 } from './constants.ts';
import { failWcc, type NfsProcedure } from './procedure.ts';
import { refuseWrite } from './readonly.ts';
import { decodeDiropargs3, decodeSattr3, type diropargs3, type sattr3 } from './xdr.ts';

/** RFC 1813 §3.3.8 createhow3 */
export type createhow3 = { mode: typeof EXCLUSIVE; verf: Buffer } | { mode: Exclude<createmode3, typeof EXCLUSIVE>; obj_attributes: sattr3 };

export interface CREATE3args {
  where: diropargs3;
  how: createhow3;
}

function decodeCreatehow3(r: XdrReader): createhow3 {
  const mode = r.enumOf<createmode3>(CREATEMODE3_VALUES, 'createmode3');
  if (mode === EXCLUSIVE) return { mode, verf: r.fixedOpaque(NFS3_CREATEVERFSIZE) };
  return { mode, obj_attributes: decodeSattr3(r) };
}

export const create: NfsProcedure<CREATE3args> = {
  name: 'CREATE',
  nonIdempotent: true,
  decode: (r: XdrReader) => ({ where: decodeDiropargs3(r), how: decodeCreatehow3(r) }),
  run: (a, call) => refuseWrite(call, a.where.dir, 'create'),
  resfail: failWcc((a) => a.where.dir),
};
