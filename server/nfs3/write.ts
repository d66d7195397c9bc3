import { randomFillSync } from 'node:crypto';
import { closeSync, fdatasync, fstatSync, fsync, writev as writevCb } from 'node:fs';
import { promisify } from 'node:util';
import type { XdrReader } from '../../xdr/reader.ts';
import { ACCESS3_MODIFY } from '../exports/access.ts';
import { PageCacheFullError } from '../pagecache/page-cache.ts';
import { fattr3FromStats, wccAttrFromStats } from './attr.ts';
import { cacheKeyOf, cacheVersionOf } from '../vfs/source.ts';
import { DATA_SYNC, FILE_SYNC, NFS3ERR_ACCES, NFS3ERR_FBIG, NFS3ERR_INVAL, NFS3ERR_IO, NFS3ERR_ISDIR, STABLE_HOW_VALUES, UNSTABLE, type stable_how } from './constants.ts';
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
  /**
   * The payload as views of the pieces the call record was received in (no copy of its own):
   * copied once, into the file (and into any cached pages of the range).
   */
  data: Buffer[];
}

const fsyncAsync = promisify(fsync);
const fdatasyncAsync = promisify(fdatasync);
const writevAsync = promisify(writevCb);

/** The first `count` bytes of `pieces`, as views. */
export function firstBytes(pieces: readonly Buffer[], count: number): Buffer[] {
  const out: Buffer[] = [];
  for (const p of pieces) {
    if (count <= 0) break;
    out.push(p.length <= count ? p : p.subarray(0, count));
    count -= p.length;
  }
  return out;
}

/** What is left of `pieces` once their first `taken` bytes are gone, as views; no empty piece first. */
export function afterBytes(pieces: readonly Buffer[], taken: number): Buffer[] {
  let i = 0;
  while (i < pieces.length && taken >= pieces[i]!.length) taken -= pieces[i++]!.length;
  const rest = pieces.slice(i);
  if (taken > 0) rest[0] = rest[0]!.subarray(taken);
  return rest;
}

/**
 * All of `pieces` at `position`: one pwritev (vfs_iter_write of the request's pages, as knfsd's
 * nfsd_vfs_write), more only if the kernel took part of them. An UNSTABLE write is a copy into the
 * host's page cache (no fsync). It runs in the threadpool, as each WRITE runs in an nfsd thread:
 * the event loop meanwhile reads and prepares the next calls (measured: as fast as writing from
 * this thread at depth 1, faster at depth 8).
 */
export async function pwritevAll(fd: number, pieces: readonly Buffer[], position: number): Promise<void> {
  let left = afterBytes(pieces, 0);
  while (left.length > 0) {
    const n = (await writevAsync(fd, left, position)).bytesWritten;
    // A regular file that takes nothing would be retried forever.
    if (n === 0) throw new NfsError(NFS3ERR_IO, { op: 'write', reason: 'the file took none of the bytes' });
    position += n;
    left = afterBytes(left, n);
  }
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
  changes: (a) => [a.file],
  result: WRITE3res,
  decode: (r: XdrReader) => ({
    file: decodeNfsFh3(r),
    offset: r.uint64(),
    count: r.uint32(),
    stable: r.enumOf<stable_how>(STABLE_HOW_VALUES, 'stable_how'),
    data: r.opaqueSegments(0xffff_ffff),
  }),
  async run(a, call) {
    const n = await call.node(a.file);
    const pre = wccAttrFromStats(n.st);
    const { ctx } = call;
    let sent = 0;
    for (const p of a.data) sent += p.length;
    const count = Math.min(a.count, sent, ctx.limits.maxWrite);
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
      const data = firstBytes(a.data, count);
      const key = cacheKeyOf(n.st);
      return ctx.coherence.exclusive(key, async () => {
        const { fd, st: before } = openForWriteSync(n, 'write');
        let syncFailed = false;
        try {
          ctx.coherence.beforeChange(key, cacheVersionOf(before));
          await pwritevAll(fd, data, offset);
          if (ctx.pinnedWrite === 'wait') await ctx.pageCache.waitUnpinned(key, offset, count);
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
