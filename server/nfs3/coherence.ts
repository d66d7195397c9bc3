/**
 * Keeps the page cache and the files in step under WRITE, SETATTR and COMMIT.
 *
 * The cache labels each file's pages with the version (size, mtime, ctime) they were read at. The
 * server's own write changes the version, so after writing it relabels the pages it updated in
 * place (`setVersion`) — but only when the pages were current before the write: if the file changed
 * behind the server since, its cached pages are dropped instead, so stale bytes are never relabelled
 * as current. The last version the server gave each file is remembered here for that check
 * (bounded: a forgotten file is simply treated as unknown and its pages dropped on the next write).
 *
 * Writes to one file are serialized: two overlapping writes must reach the file and the cache in
 * the same order.
 */
import type { PageCache } from '../pagecache/page-cache.ts';

/** Files whose last known cache version is remembered. */
export const COHERENCE_MAX_FILES = 65536;

export class CacheCoherence {
  private readonly versions = new Map<string, string>();
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(private readonly cache: PageCache) {}

  /** The cache now holds pages of `key` at `version` (after a READ's getPages). */
  noteVersion(key: string, version: string): void {
    this.versions.delete(key);
    this.versions.set(key, version);
    if (this.versions.size > COHERENCE_MAX_FILES) {
      const oldest = this.versions.keys().next().value;
      if (oldest !== undefined) this.versions.delete(oldest);
    }
  }

  /** Before changing a file whose current version is `version`: drop its pages unless they are of that version. */
  beforeChange(key: string, version: string): void {
    if (this.versions.get(key) !== version) {
      this.cache.invalidate(key);
      this.versions.delete(key);
    }
  }

  /** After the server changed the file (and updated its cached pages): they are of `version` now. */
  afterChange(key: string, version: string): void {
    this.cache.setVersion(key, version);
    this.noteVersion(key, version);
  }

  /** The file's contents changed in a way the cached pages do not follow (truncate, removal). */
  drop(key: string): void {
    this.cache.invalidate(key);
    this.versions.delete(key);
  }

  /** Runs `fn` with the file's lock held. */
  async exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }
}
