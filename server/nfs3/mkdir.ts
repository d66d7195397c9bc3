import type { XdrReader } from '../../xdr/reader.ts';
import { decodeDiropargs3, decodeSattr3, type diropargs3, type sattr3 } from './xdr.ts';
import { failWcc, type NfsProcedure } from './procedure.ts';
import { refuseWrite } from './readonly.ts';

/** RFC 1813 §3.3 MKDIR */
export interface MKDIR3args { where: diropargs3; attributes: sattr3 }

export const mkdir: NfsProcedure<MKDIR3args> = {
  name: 'MKDIR',
  nonIdempotent: true,
  decode: (r: XdrReader) => ({ where: decodeDiropargs3(r), attributes: decodeSattr3(r) }),
  run: (a, call) => refuseWrite(call, a.where.dir, 'mkdir'),
  resfail: failWcc((a) => a.where.dir),
};
