import type { BigIntStats } from 'node:fs';
import { constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { identityOf, openVerified } from './anchor.ts';
import type { FileSource } from '../pagecache/page-cache.ts';
import type { VNode } from './vfs.ts';

/** Page-cache identity of a file: device and inode, whatever its path. */
export function cacheKeyOf(st: BigIntStats): string {
  return `${st.dev}:${st.ino}`;
}

/** Changes whenever the contents may have changed: the cache drops pages of an older version. */
export function cacheVersionOf(st: BigIntStats): string {
  return `${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

export interface ClosableFileSource extends FileSource {
  close(): Promise<void>;
}

/**
 * The page cache's view of one file for the length of one call. The descriptor is opened on the first
 * fill only (a READ served from cached pages opens nothing) and closed when the caller closes the
 * source and no read of it is still running (a read-ahead outlives the READ that started it): an fd
 * cache would save an open per miss, which is small next to the reads a miss does, and would need
 * invalidation on rename/unlink. O_NOFOLLOW plus an fstat identity check make sure the descriptor is
 * the file the handle names, even if the path changed since it was resolved.
 */
export function fileSourceOf(n: VNode): ClosableFileSource {
  let fh: Promise<FileHandle> | undefined;
  let running = 0;
  let closing = false;
  const shut = async (): Promise<void> => {
    const h = fh;
    fh = undefined;
    await (await h?.catch(() => undefined))?.close();
  };
  const io = async (op: (h: FileHandle) => Promise<number>): Promise<number> => {
    running++;
    try {
      fh ??= openVerified(n.abs, constants.O_RDONLY, identityOf(n.st), 'open', n.rel);
      return await op(await fh);
    } finally {
      if (--running === 0 && closing) await shut();
    }
  };
  return {
    key: cacheKeyOf(n.st),
    version: cacheVersionOf(n.st),
    size: Number(n.st.size),
    read: (buf, position) => io(async (h) => (await h.read(buf, 0, buf.length, position)).bytesRead),
    readv: (bufs, position) => io(async (h) => (await h.readv(bufs, position)).bytesRead),
    async close() {
      closing = true;
      if (running === 0) await shut();
    },
  };
}
