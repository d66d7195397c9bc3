import { ACCESS3_EXECUTE, ACCESS3_READ } from '../exports/access.ts';
import type { XdrReader } from '../../xdr/reader.ts';
import { PAGE_SIZE, PageCacheFullError, type PageFrame } from '../pagecache/page-cache.ts';
import { fattr3FromStats, ftype3Of } from './attr.ts';
import { fileSourceOf } from '../vfs/source.ts';
import { NF3DIR, NF3REG, NFS3ERR_ACCES, NFS3ERR_INVAL, NFS3ERR_ISDIR, NFS3ERR_JUKEBOX } from './constants.ts';
import { payloadLimit } from './context.ts';
import { NfsError } from './errors.ts';
import { LentResok, type NfsProcedure } from './procedure.ts';
import { READ3res, type READ3resfail, type READ3resok } from './results.ts';
import { decodeNfsFh3, type nfs_fh3 } from './xdr.ts';

/** RFC 1813 §3.3.6 */
export interface READ3args {
  file: nfs_fh3;
  offset: bigint;
  count: number;
}

/**
 * READ3resok's data are page-cache pages referenced in place: the pages of the range are pinned,
 * the reply refers to subarrays of them, and the transport's release unpins each exactly once (after
 * the network is done with them, see docs/DESIGN.md). Nothing is copied here.
 */
export const read: NfsProcedure<READ3args, READ3resok, READ3resfail> = {
  name: 'READ',
  decode: (r: XdrReader) => ({ file: decodeNfsFh3(r), offset: r.uint64(), count: r.uint32() }),
  result: READ3res,
  async run(a, call) {
    const n = await call.node(a.file);
    const type = ftype3Of(n.st);
    if (type === NF3DIR) throw new NfsError(NFS3ERR_ISDIR, { op: 'read', path: n.rel });
    if (type !== NF3REG) throw new NfsError(NFS3ERR_INVAL, { op: 'read', path: n.rel, reason: 'not a regular file' });
    // As knfsd: the owner may read what it opened before a chmod, and executing needs reading.
    const id = call.identity(n.exp);
    if ((call.allowed(n, ACCESS3_READ | ACCESS3_EXECUTE) & (ACCESS3_READ | ACCESS3_EXECUTE)) === 0 && id.uid !== Number(n.st.uid)) {
      throw new NfsError(NFS3ERR_ACCES, { op: 'read', path: n.rel });
    }
    const { pageCache, limits } = call.ctx;
    const size = n.st.size;
    const asked = Math.min(a.count, payloadLimit(limits.maxRead, call.rpc.transport));
    // Number() of what is left is exact up to 2^53 and, beyond, still far above any `asked`.
    const want = a.offset >= size ? 0 : Math.min(Number(size - a.offset), asked);
    const attrs = fattr3FromStats(n.st, n.exp);
    if (want === 0) return { file_attributes: attrs, count: 0, eof: a.offset >= size, data: [] };
    const offset = Number(a.offset);
    const end = offset + want;
    const src = fileSourceOf(n);
    let pages: PageFrame[];
    try {
      // Division, not >>: offsets past 2 GiB do not fit the 32-bit shift operators.
      pages = await pageCache.getPages(src, Math.floor(offset / PAGE_SIZE), Math.floor((end - 1) / PAGE_SIZE));
    } catch (e) {
      if (e instanceof PageCacheFullError) throw new NfsError(NFS3ERR_JUKEBOX, { op: 'read', path: n.rel, reason: e.message });
      throw e;
    } finally {
      src.close();
    }
    call.ctx.coherence.noteVersion(src.key, src.version);
    let released = false;
    const release = (): void => {
      if (released) {
        call.ctx.log.error({ path: n.rel }, 'nfs: READ reply released twice');
        return;
      }
      released = true;
      for (const p of pages) pageCache.unpin(p);
    };
    try {
      // The stat's size bounds the data, not each frame's `valid`: the pages are of the stat's version
      // (getPages made sure), and a frame is zero past the bytes it was filled or written with — which
      // is what a hole reads as. (`valid` of a page that held EOF stays short when a later write
      // extends the file beyond that page.)
      return new LentResok({ file_attributes: attrs, count: want, eof: end >= size, data: pageRuns(pages, offset, end) }, release);
    } catch (e) {
      release();
      throw e;
    }
  },
  resfail: async (a, err, call) => ({ file_attributes: await call.attrsOf(a.file, err.status) }),
};

/**
 * The bytes [offset, end) of the file as views of its frames: one view per run of frames that lie
 * next to each other in the cache's pool (a frame per page, each page's at the next pfn), as
 * Linux's bio_vec merging joins physically adjacent pages, so a sequential read of frames filled
 * in order is a few views rather than one per page. Frames of one cache are views of its one pool,
 * so the next pfn is the next 4 KiB of the same memory. The reply path still splits them into page
 * fragments (lent-reply.ts), each frame's own.
 */
function pageRuns(pages: readonly PageFrame[], offset: number, end: number): Buffer[] {
  const runs: Buffer[] = [];
  let first = pages[0]!;
  let from = offset - first.index * PAGE_SIZE;
  for (let k = 1; k <= pages.length; k++) {
    const p = pages[k];
    const prev = pages[k - 1]!;
    if (p !== undefined && p.pfn === prev.pfn + 1) continue;
    const to = Math.min(end - prev.index * PAGE_SIZE, PAGE_SIZE);
    const span = (prev.pfn - first.pfn) * PAGE_SIZE + to - from;
    runs.push(Buffer.from(first.buf.buffer, first.buf.byteOffset + from, span));
    if (p !== undefined) {
      first = p;
      from = 0;
    }
  }
  return runs;
}
