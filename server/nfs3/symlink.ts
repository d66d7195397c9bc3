import type { XdrReader } from '../../xdr/reader.ts';
import { decodeDiropargs3, decodeFilename3, decodeSattr3, type diropargs3, type sattr3 } from './xdr.ts';
import { failWcc, type NfsProcedure } from './procedure.ts';
import { refuseWrite } from './readonly.ts';

/** RFC 1813 §3.3 SYMLINK */
export interface SYMLINK3args { where: diropargs3; symlink_attributes: sattr3; symlink_data: string }

export const symlink: NfsProcedure<SYMLINK3args> = {
  name: 'SYMLINK',
  nonIdempotent: true,
  decode: (r: XdrReader) => ({ where: decodeDiropargs3(r), symlink_attributes: decodeSattr3(r), symlink_data: decodeFilename3(r) }),
  run: (a, call) => refuseWrite(call, a.where.dir, 'symlink'),
  resfail: failWcc((a) => a.where.dir),
};
