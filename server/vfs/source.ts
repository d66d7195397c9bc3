import type { BigIntStats } from 'node:fs';
import { closeSync, constants, read, readv } from 'node:fs';
import { identityOf, openVerifiedSync } from './anchor.ts';
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
  close(): void;
}

/**
 * The page cache's view of one file for the length of one call. The descriptor is opened on the first
 * fill only (a READ served from cached pages opens nothing) and closed when the caller closes the
 * source and no read of it is still running (a read-ahead outlives the READ that started it): an fd
 * cache would save an open per miss, which is small next to the reads a miss does, and would need
 * invalidation on rename/unlink. O_NOFOLLOW plus an fstat identity check make sure the descriptor is
 * the file the handle names, even if the path changed since it was resolved.
 *
 * Open, check and close are synchronous (a few microseconds each, as the anchors' calls); only the
 * read itself goes to the threadpool, where storage may block. A 4 KiB READ that missed used to wait
 * on four threadpool round trips (open, fstat, read, close), now one — knfsd's nfsd_read likewise
 * opens the file in the serving thread and only the read may sleep.
 */
export function fileSourceOf(n: VNode): ClosableFileSource {
  return new CallFileSource(n);
}

/** One object per call, its methods on the prototype: a cached READ allocates no closures here. */
class CallFileSource implements ClosableFileSource {
  readonly key: string;
  readonly version: string;
  readonly size: number;
  private fd: number | undefined;
  private running = 0;
  private closing = false;

  constructor(private readonly n: VNode) {
    this.key = cacheKeyOf(n.st);
    this.version = cacheVersionOf(n.st);
    this.size = Number(n.st.size);
  }

  read(buf: Buffer, position: number): Promise<number> {
    return this.io((d) => new Promise((ok, fail) => read(d, buf, 0, buf.length, position, (e, bytes) => (e ? fail(e) : ok(bytes)))));
  }

  readv(bufs: Buffer[], position: number): Promise<number> {
    return this.io((d) => new Promise((ok, fail) => readv(d, bufs, position, (e, bytes) => (e ? fail(e) : ok(bytes)))));
  }

  close(): void {
    this.closing = true;
    if (this.running === 0) this.shut();
  }

  private shut(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private async io(op: (fd: number) => Promise<number>): Promise<number> {
    this.running++;
    try {
      this.fd ??= openVerifiedSync(this.n.abs, constants.O_RDONLY, identityOf(this.n.st), 'open', this.n.rel).fd;
      return await op(this.fd);
    } finally {
      if (--this.running === 0 && this.closing) this.shut();
    }
  }
}
