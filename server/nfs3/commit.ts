import { constants } from 'node:fs';
import type { XdrReader } from '../../xdr/reader.ts';
import { identityOf, openVerified } from '../vfs/anchor.ts';
import { wccAttrFromStats } from './attr.ts';
import { cacheKeyOf } from '../vfs/source.ts';
import { NFS3ERR_INVAL, NFS3ERR_ISDIR } from './constants.ts';
import { NfsError, toNfsError } from './errors.ts';
import { wccOf, withPre } from './modify.ts';
import { failureWcc, type NfsProcedure } from './procedure.ts';
import { COMMIT3res, type COMMIT3resfail, type COMMIT3resok } from './results.ts';
import { decodeNfsFh3, type nfs_fh3 } from './xdr.ts';
import { resetWriteVerifier } from './write.ts';

/** RFC 1813 §3.3.21 */
export interface COMMIT3args {
  file: nfs_fh3;
  offset: bigint;
  count: number;
}

/**
 * Makes the file's unstable writes durable: one fsync of the whole file (the range is a hint a
 * server may widen). Answers after the data are on disk, with the verifier the writes got — unless
 * the fsync failed, which changes the verifier so the client resends.
 */
export const commit: NfsProcedure<COMMIT3args, COMMIT3resok, COMMIT3resfail> = {
  name: 'COMMIT',
  result: COMMIT3res,
  decode: (r: XdrReader) => ({ file: decodeNfsFh3(r), offset: r.uint64(), count: r.uint32() }),
  async run(a, call) {
    const n = await call.node(a.file);
    const pre = wccAttrFromStats(n.st);
    await withPre(pre, async () => {
      call.requireWritable(n.exp, 'commit');
      if (n.st.isDirectory()) throw new NfsError(NFS3ERR_ISDIR, { op: 'commit', path: n.rel });
      if (!n.st.isFile()) throw new NfsError(NFS3ERR_INVAL, { op: 'commit', path: n.rel });
      const h = await openVerified(n.abs, constants.O_RDONLY, identityOf(n.st), 'commit', n.rel).catch((e: unknown) => {
        throw toNfsError(e, { op: 'commit', path: n.rel });
      });
      try {
        await h.sync();
      } catch (e) {
        if (e instanceof NfsError) throw e;
        resetWriteVerifier(call, e);
        throw toNfsError(e, { op: 'commit', path: n.rel });
      } finally {
        await h.close();
      }
      call.ctx.pageCache.markClean(cacheKeyOf(n.st));
    });
    return { file_wcc: await wccOf(call, n, pre), verf: call.ctx.writeVerifier };
  },
  resfail: async (a, err, call) => ({ file_wcc: await failureWcc(call, a.file, err) }),
};
