import type { XdrReader } from '../../xdr/reader.ts';
import { STABLE_HOW_VALUES, type stable_how } from './constants.ts';
import { decodeNfsFh3, type nfs_fh3 } from './xdr.ts';
import { failWcc, type NfsProcedure } from './procedure.ts';
import { refuseWrite } from './readonly.ts';

/** RFC 1813 §3.3 WRITE */
export interface WRITE3args { file: nfs_fh3; offset: bigint; count: number; stable: stable_how; data: Buffer }

export const write: NfsProcedure<WRITE3args> = {
  name: 'WRITE',
  nonIdempotent: true,
  decode: (r: XdrReader) => ({ file: decodeNfsFh3(r), offset: r.uint64(), count: r.uint32(), stable: r.enumOf<stable_how>(STABLE_HOW_VALUES, "stable_how"), data: r.opaque(0xffffffff) }),
  run: (a, call) => refuseWrite(call, a.file, 'write'),
  resfail: failWcc((a) => a.file),
};
