import { randomFillSync } from 'node:crypto';
import type { XdrReader } from '../../xdr/reader.ts';
import { ACCESS3_MODIFY } from '../exports/access.ts';
import { PageCacheFullError } from '../pagecache/page-cache.ts';
import { encodeWccData, wccAttrFromStats } from '../vfs/attr.ts';
import { cacheKeyOf, cacheVersionOf, fileSourceOf } from '../vfs/source.ts';
import { DATA_SYNC, FILE_SYNC, NFS3ERR_ACCES, NFS3ERR_FBIG, NFS3ERR_INVAL, NFS3ERR_ISDIR, STABLE_HOW_VALUES, UNSTABLE, type stable_how } from './constants.ts';
import { NfsError, errnoOf, toNfsError } from './errors.ts';
import { MAX_FILE_SIZE } from './fsinfo.ts';
import { openForWrite, wccOf, withPre } from './modify.ts';
import { failWcc, okWriter, type NfsCall, type NfsProcedure } from './procedure.ts';
import { decodeNfsFh3, type nfs_fh3 } from './xdr.ts';

/** RFC 1813 §3.3.7 */
export interface WRITE3args {
  file: nfs_fh3;
  offset: bigint;
  count: number;
  stable: stable_how;
  /** A view of the call record: copied once, into the file (and into cached pages). */
  data: Buffer;
}

/**
 * A failed write-back (fsync) may have lost unstable data the client believes written: a new
 * verifier makes every client resend what it has not committed (as knfsd does on an I/O error).
 */
export function resetWriteVerifier(call: NfsCall, cause: unknown): void {
  randomFillSync(call.ctx.writeVerifier);
  call.ctx.log.error({ err: cause }, 'nfs: write-back failed; write verifier changed');
}

/**
 * The bytes go to the file and, through `writeThrough`, into any cached pages of the range, so a
 * READ never sees the old bytes; a page the network still pins is copied first (or waited for),
 * so a reply in flight keeps the bytes it was built with. FILE_SYNC and DATA_SYNC return only after
 * fsync/fdatasync; UNSTABLE data become durable at COMMIT.
 */
export const write: NfsProcedure<WRITE3args> = {
  name: 'WRITE',
  nonIdempotent: true,
  decode: (r: XdrReader) => ({
    file: decodeNfsFh3(r),
    offset: r.uint64(),
    count: r.uint32(),
    stable: r.enumOf<stable_how>(STABLE_HOW_VALUES, 'stable_how'),
    data: r.opaque(0xffff_ffff),
  }),
  async run(a, call) {
    const n = await call.node(a.file);
    const pre = wccAttrFromStats(n.st);
    const { ctx } = call;
    const count = Math.min(a.count, a.data.length, ctx.limits.maxWrite);
    const committed = await withPre(pre, async () => {
      call.requireWritable(n.exp, 'write');
      if (n.st.isDirectory()) throw new NfsError(NFS3ERR_ISDIR, { op: 'write', path: n.rel });
      if (!n.st.isFile()) throw new NfsError(NFS3ERR_INVAL, { op: 'write', path: n.rel, reason: 'not a regular file' });
      // As knfsd: the owner may write to a file it opened before making it read-only.
      if ((call.allowed(n, ACCESS3_MODIFY) & ACCESS3_MODIFY) === 0 && call.identity(n.exp).uid !== Number(n.st.uid)) {
        throw new NfsError(NFS3ERR_ACCES, { op: 'write', path: n.rel });
      }
      if (a.offset + BigInt(count) > MAX_FILE_SIZE) throw new NfsError(NFS3ERR_FBIG, { op: 'write', path: n.rel });
      const offset = Number(a.offset);
      const data = a.data.subarray(0, count);
      const key = cacheKeyOf(n.st);
      return ctx.coherence.exclusive(key, async () => {
        const h = await openForWrite(n, 'write');
        let syncFailed = false;
        try {
          const before = await h.stat({ bigint: true });
          ctx.coherence.beforeChange(key, cacheVersionOf(before));
          let done = 0;
          while (done < data.length) {
            const { bytesWritten } = await h.write(data, done, data.length - done, offset + done);
            done += bytesWritten;
          }
          if (ctx.pinnedWrite === 'wait') await ctx.pageCache.waitUnpinned(key, offset, data.length);
          try {
            ctx.pageCache.writeThrough(fileSourceOf(n), offset, data, ctx.pinnedWrite === 'cow');
          } catch (e) {
            // No free frame for a copy-on-write: the file has the data, so drop the cached copy instead.
            if (!(e instanceof PageCacheFullError)) throw e;
            ctx.coherence.drop(key);
          }
          let level: stable_how = UNSTABLE;
          if (a.stable !== UNSTABLE) {
            try {
              if (a.stable === DATA_SYNC) await h.datasync();
              else await h.sync();
            } catch (e) {
              syncFailed = true;
              throw e;
            }
            ctx.pageCache.markClean(key);
            level = a.stable === FILE_SYNC ? FILE_SYNC : DATA_SYNC;
          }
          ctx.coherence.afterChange(key, cacheVersionOf(await h.stat({ bigint: true })));
          return level;
        } catch (e) {
          // The cached pages may hold bytes the file did not get: drop them.
          ctx.coherence.drop(key);
          if (syncFailed || errnoOf(e) === 'EIO') resetWriteVerifier(call, e);
          throw toNfsError(e, { op: 'write', path: n.rel });
        } finally {
          await h.close();
        }
      });
    });
    const wcc = await wccOf(call, n, pre);
    const w = okWriter();
    encodeWccData(w, wcc);
    w.uint32(count).uint32(committed).fixedOpaque(ctx.writeVerifier);
    return w;
  },
  resfail: failWcc((a) => a.file),
};
