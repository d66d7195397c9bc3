import { randomFillSync } from 'node:crypto';
import { closeSync, fdatasync, fstatSync, fsync, write as writeCb } from 'node:fs';
import { promisify } from 'node:util';
import type { XdrReader } from '../../xdr/reader.ts';
import { ACCESS3_MODIFY } from '../exports/access.ts';
import { PageCacheFullError } from '../pagecache/page-cache.ts';
import { fattr3FromStats, wccAttrFromStats } from './attr.ts';
import { cacheKeyOf, cacheVersionOf } from '../vfs/source.ts';
import { DATA_SYNC, FILE_SYNC, NFS3ERR_ACCES, NFS3ERR_FBIG, NFS3ERR_INVAL, NFS3ERR_ISDIR, STABLE_HOW_VALUES, UNSTABLE, type stable_how } from './constants.ts';
import { NfsError, errnoOf, toNfsError } from './errors.ts';
import { MAX_FILE_SIZE } from './fsinfo.ts';
import { openForWriteSync, withPre } from './modify.ts';
import { failureWcc, type NfsCall, type NfsProcedure } from './procedure.ts';
import { WRITE3res, type WRITE3resfail, type WRITE3resok } from './results.ts';
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

const fsyncAsync = promisify(fsync);
const fdatasyncAsync = promisify(fdatasync);
const writeAsync = promisify(writeCb);

/**
 * The whole buffer at `position`: one pwrite, more only if the kernel took part of it. An UNSTABLE
 * write is a copy into the host's page cache (no fsync). It runs in the threadpool, as each WRITE
 * runs in an nfsd thread: the event loop meanwhile reads and prepares the next calls (measured: as
 * fast as writing from this thread at depth 1, faster at depth 8).
 */
async function pwriteAll(fd: number, data: Buffer, position: number): Promise<void> {
  for (let done = 0; done < data.length; ) done += (await writeAsync(fd, data, done, data.length - done, position + done)).bytesWritten;
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
export const write: NfsProcedure<WRITE3args, WRITE3resok, WRITE3resfail> = {
  name: 'WRITE',
  nonIdempotent: true,
  result: WRITE3res,
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
    const { committed, before, after } = await withPre(pre, async () => {
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
        const { fd, st: before } = openForWriteSync(n, 'write');
        let syncFailed = false;
        try {
          ctx.coherence.beforeChange(key, cacheVersionOf(before));
          await pwriteAll(fd, data, offset);
          if (ctx.pinnedWrite === 'wait') await ctx.pageCache.waitUnpinned(key, offset, data.length);
          try {
            ctx.pageCache.writeThrough({ key }, offset, data, ctx.pinnedWrite === 'cow');
          } catch (e) {
            // No free frame for a copy-on-write: the file has the data, so drop the cached copy instead.
            if (!(e instanceof PageCacheFullError)) throw e;
            ctx.coherence.drop(key);
          }
          let level: stable_how = UNSTABLE;
          if (a.stable !== UNSTABLE) {
            try {
              await (a.stable === DATA_SYNC ? fdatasyncAsync(fd) : fsyncAsync(fd));
            } catch (e) {
              syncFailed = true;
              throw e;
            }
            ctx.pageCache.markClean(key);
            level = a.stable === FILE_SYNC ? FILE_SYNC : DATA_SYNC;
          }
          // wcc_data from the file written, under its lock: knfsd's pre- and post-op attributes.
          const st = fstatSync(fd, { bigint: true });
          ctx.coherence.afterChange(key, cacheVersionOf(st));
          return { committed: level, before, after: st };
        } catch (e) {
          // The cached pages may hold bytes the file did not get: drop them.
          ctx.coherence.drop(key);
          if (syncFailed || errnoOf(e) === 'EIO') resetWriteVerifier(call, e);
          throw toNfsError(e, { op: 'write', path: n.rel });
        } finally {
          closeSync(fd);
        }
      });
    });
    return { file_wcc: { before: wccAttrFromStats(before), after: fattr3FromStats(after, n.exp) }, count, committed, verf: ctx.writeVerifier };
  },
  resfail: async (a, err, call) => ({ file_wcc: await failureWcc(call, a.file, err) }),
};
