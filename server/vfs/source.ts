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
 * fill only (a READ served from cached pages opens nothing) and closed by the caller when getPages
 * returns: an fd cache would save an open per miss, which is small next to the reads a miss does,
 * and would need invalidation on rename/unlink. O_NOFOLLOW plus an fstat identity check make sure
 * the descriptor is the file the handle names, even if the path changed since it was resolved.
 */
export function fileSourceOf(n: VNode): ClosableFileSource {
  let fh: Promise<FileHandle> | undefined;
  const openChecked = (): Promise<FileHandle> => openVerified(n.abs, constants.O_RDONLY, identityOf(n.st), 'open', n.rel);
  return {
    key: cacheKeyOf(n.st),
    version: cacheVersionOf(n.st),
    async read(buf, position) {
      fh ??= openChecked();
      const { bytesRead } = await (await fh).read(buf, 0, buf.length, position);
      return bytesRead;
    },
    async close() {
      if (!fh) return;
      const h = fh;
      fh = undefined;
      await (await h.catch(() => undefined))?.close();
    },
  };
}
