import type { BigIntStats } from 'node:fs';
import { closeSync, constants, read, readSync, readv, readvSync, statfsSync } from 'node:fs';
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
 * read itself goes to the threadpool, where storage may block — unless it is small and from memory
 * (INLINE_READ_MAX_BYTES). A 4 KiB READ that missed used to wait on four threadpool round trips
 * (open, fstat, read, close), now at most one — knfsd's nfsd_read likewise opens the file in the
 * serving thread and only the read may sleep.
 */
export function fileSourceOf(n: VNode): ClosableFileSource {
  return new CallFileSource(n);
}

/**
 * File systems whose reads are copies from memory and never wait for a device (linux/magic.h):
 * tmpfs and ramfs.
 */
export const MEMORY_FS_TYPES: ReadonlySet<number> = new Set([0x01021994, 0x858458f6]);
/**
 * Reads up to this size from a memory file system run inline, in the event loop, rather than in the
 * threadpool: as io_uring issues a read inline first and hands it to a worker (io-wq) only when it
 * would block. A 4 KiB copy costs a few microseconds; handing it to a pool thread and back costs a
 * futex wake-up, an eventfd and an event-loop turn — more than the read, most of all in a VM,
 * where each cross-CPU wake-up is an interrupt through the hypervisor. Larger reads (read-ahead
 * windows) still go to the pool, where they overlap the event loop's work.
 */
export const INLINE_READ_MAX_BYTES = 64 * 1024;
/** Devices seen, and whether each is a memory file system (a device keeps its file system while mounted). */
const memoryDevices = new Map<bigint, boolean>();
/** Devices remembered at most; an export spanning more mounts than this asks statfs again. */
const MEMORY_DEVICES_MAX = 1024;

/**
 * Whether the open file `fd` (of device `dev`) lives on a memory file system; statfs once per
 * device, through the descriptor, so a path swapped meanwhile cannot answer for it.
 */
function onMemoryFs(dev: bigint, fd: number): boolean {
  let known = memoryDevices.get(dev);
  if (known === undefined) {
    try {
      known = MEMORY_FS_TYPES.has(Number(statfsSync(`/proc/self/fd/${fd}`).type));
    } catch {
      // Unknown: the threadpool is always safe.
      return false;
    }
    if (memoryDevices.size >= MEMORY_DEVICES_MAX) memoryDevices.clear();
    memoryDevices.set(dev, known);
  }
  return known;
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
    return (
      this.inline(buf.length, (d) => readSync(d, buf, 0, buf.length, position)) ??
      this.io((d) => new Promise((ok, fail) => read(d, buf, 0, buf.length, position, (e, bytes) => (e ? fail(e) : ok(bytes)))))
    );
  }

  readv(bufs: Buffer[], position: number): Promise<number> {
    let bytes = 0;
    for (const b of bufs) bytes += b.length;
    return this.inline(bytes, (d) => readvSync(d, bufs, position)) ?? this.io((d) => new Promise((ok, fail) => readv(d, bufs, position, (e, bytes) => (e ? fail(e) : ok(bytes)))));
  }

  close(): void {
    this.closing = true;
    if (this.running === 0) this.shut();
  }

  private shut(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private descriptor(): number {
    this.fd ??= openVerifiedSync(this.n.abs, constants.O_RDONLY, identityOf(this.n.st), 'open', this.n.rel).fd;
    return this.fd;
  }

  /**
   * `op` run now when the read is small and the file is in memory (its outcome, or failure, as a
   * settled promise, as the threadpool's would be); undefined when the read belongs in the pool.
   */
  private inline(bytes: number, op: (fd: number) => number): Promise<number> | undefined {
    if (bytes > INLINE_READ_MAX_BYTES) return undefined;
    try {
      const fd = this.descriptor();
      return onMemoryFs(this.n.st.dev, fd) ? Promise.resolve(op(fd)) : undefined;
    } catch (e) {
      return Promise.reject(e);
    } finally {
      if (this.running === 0 && this.closing) this.shut();
    }
  }

  private async io(op: (fd: number) => Promise<number>): Promise<number> {
    this.running++;
    try {
      return await op(this.descriptor());
    } finally {
      if (--this.running === 0 && this.closing) this.shut();
    }
  }
}
