import type { XdrReader } from '../../xdr/reader.ts';
import { failWcc, type NfsProcedure } from './procedure.ts';
import { removeEntry, type RMDIR3args } from './remove.ts';
import { decodeDiropargs3 } from './xdr.ts';

/** RFC 1813 §3.3.13 */
export const rmdir: NfsProcedure<RMDIR3args> = {
  name: 'RMDIR',
  nonIdempotent: true,
  decode: (r: XdrReader) => ({ object: decodeDiropargs3(r) }),
  run: (a, call) => removeEntry(a, call, 'rmdir'),
  resfail: failWcc((a) => a.object.dir),
};
