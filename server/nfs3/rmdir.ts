import type { XdrReader } from '../../xdr/reader.ts';
import { failureWcc, type NfsProcedure } from './procedure.ts';
import { removeEntry, type RMDIR3args } from './remove.ts';
import { REMOVE3res, type RMDIR3resfail, type RMDIR3resok } from './results.ts';
import { decodeDiropargs3 } from './xdr.ts';

/** RFC 1813 §3.3.13 */
export const rmdir: NfsProcedure<RMDIR3args, RMDIR3resok, RMDIR3resfail> = {
  name: 'RMDIR',
  nonIdempotent: true,
  changes: (a) => [a.object.dir],
  result: REMOVE3res,
  decode: (r: XdrReader) => ({ object: decodeDiropargs3(r) }),
  run: (a, call) => removeEntry(a, call, 'rmdir'),
  resfail: async (a, err, call) => ({ dir_wcc: await failureWcc(call, a.object.dir, err) }),
};
