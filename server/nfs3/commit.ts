import type { XdrReader } from '../../xdr/reader.ts';
import { decodeNfsFh3, type nfs_fh3 } from './xdr.ts';
import { failWcc, type NfsProcedure } from './procedure.ts';
import { refuseWrite } from './readonly.ts';

/** RFC 1813 §3.3 COMMIT */
export interface COMMIT3args { file: nfs_fh3; offset: bigint; count: number }

export const commit: NfsProcedure<COMMIT3args> = {
  name: 'COMMIT',
  nonIdempotent: true,
  decode: (r: XdrReader) => ({ file: decodeNfsFh3(r), offset: r.uint64(), count: r.uint32() }),
  run: (a, call) => refuseWrite(call, a.file, 'commit'),
  resfail: failWcc((a) => a.file),
};
