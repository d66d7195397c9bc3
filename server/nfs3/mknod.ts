import type { XdrReader } from '../../xdr/reader.ts';
import type { specdata3 } from '../vfs/attr.ts';
import { FTYPE3_VALUES, NF3BLK, NF3CHR, NF3FIFO, NF3SOCK, type ftype3 } from './constants.ts';
import { failWcc, type NfsProcedure } from './procedure.ts';
import { refuseWrite } from './readonly.ts';
import { decodeDiropargs3, decodeSattr3, type diropargs3, type sattr3 } from './xdr.ts';

/** RFC 1813 §3.3.11 mknoddata3: devices carry attributes and numbers, FIFO/socket attributes only. */
export type mknoddata3 =
  | { type: typeof NF3CHR | typeof NF3BLK; dev_attributes: sattr3; spec: specdata3 }
  | { type: typeof NF3SOCK | typeof NF3FIFO; pipe_attributes: sattr3 }
  | { type: Exclude<ftype3, typeof NF3CHR | typeof NF3BLK | typeof NF3SOCK | typeof NF3FIFO> };

export interface MKNOD3args {
  where: diropargs3;
  what: mknoddata3;
}

function decodeMknoddata3(r: XdrReader): mknoddata3 {
  const type = r.enumOf<ftype3>(FTYPE3_VALUES, 'ftype3');
  if (type === NF3CHR || type === NF3BLK) {
    const dev_attributes = decodeSattr3(r);
    return { type, dev_attributes, spec: { specdata1: r.uint32(), specdata2: r.uint32() } };
  }
  if (type === NF3SOCK || type === NF3FIFO) return { type, pipe_attributes: decodeSattr3(r) };
  return { type };
}

export const mknod: NfsProcedure<MKNOD3args> = {
  name: 'MKNOD',
  nonIdempotent: true,
  decode: (r: XdrReader) => ({ where: decodeDiropargs3(r), what: decodeMknoddata3(r) }),
  run: (a, call) => refuseWrite(call, a.where.dir, 'mknod'),
  resfail: failWcc((a) => a.where.dir),
};
