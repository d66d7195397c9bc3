/**
 * Anchors kept open between calls, by file handle; a directory's with its listing.
 *
 * A descriptor is the same object for as long as it is open (anchor.ts), so a call on a handle need
 * not open, check and close one every time: knfsd finds a handle's dentry in the dcache, and
 * ganesha's VFS backend keeps a descriptor with each cached handle. What can change is where the
 * object is (renamed, moved out of the export) and whether it still exists, so every use still
 * checks both (Vfs: fstat for a link count above 0, readlink of `/proc/self/fd/N` inside the export).
 * A kept descriptor holds its inode, so a file removed behind the server keeps its blocks until the
 * descriptor closes: descriptors unused for `idleMs` (2 s) are closed, as knfsd's file cache closes
 * idle files after two seconds (its laundrette).
 *
 * A listing (a directory's names, as the caller orders them) is kept by the directory's handle and
 * reused while the directory is unchanged, so the pages of one READDIRPLUS listing do not each read
 * and sort the whole directory again. It outlives the descriptor's idle close, as the dcache outlives
 * knfsd's closed files: a client listing the directory again a minute later finds it (and the
 * READDIRPLUS pages made of it, server/nfs3/dirlist.ts) still good. It goes when the handle is
 * dropped (the object moved, removed, or no longer the handle's), when the directory is seen
 * changed, and least recently used first beyond `maxEntries` listings or `maxListedNames` names.
 * Unchanged: the same ctime, mtime, size and link count, as knfsd's change
 * attribute falls back to ctime where a file system has no i_version. The kernel stamps those times
 * from a coarse clock (one tick, up to 10 ms), so two changes in one tick can leave the same stamp; a
 * listing is kept only when read LISTING_SETTLE_NS after the directory's last change (git's rule for
 * racily clean index entries): any later change then stamps a later time.
 */
import type { BigIntStats } from 'node:fs';
import type { Anchor } from './anchor.ts';

/** The cache's limits (named config values: `anchorCache` in server/config.ts). */
export interface AnchorCacheLimits {
  /** Descriptors kept open (least recently used closed first), and listings kept. */
  maxEntries: number;
  /** A kept descriptor unused this long is closed. */
  idleMs: number;
  /** Names held by all kept listings together (~100 bytes each). */
  maxListedNames: number;
}

export const ANCHOR_CACHE_DEFAULT_LIMITS: Readonly<AnchorCacheLimits> = { maxEntries: 256, idleMs: 2000, maxListedNames: 200_000 };
/** How long after a directory's last change its listing may be kept (ns): well above a clock tick. */
export const LISTING_SETTLE_NS = 100_000_000n;

interface Listing {
  ctimeNs: bigint;
  mtimeNs: bigint;
  size: bigint;
  nlink: bigint;
  value: unknown;
  names: number;
}

interface Entry {
  anchor: Anchor;
  /** performance.now() of its last use. */
  used: number;
}

const unchanged = (l: Listing, st: BigIntStats): boolean => l.ctimeNs === st.ctimeNs && l.mtimeNs === st.mtimeNs && l.size === st.size && l.nlink === st.nlink;

export class AnchorCache {
  /** Handle bytes (latin1) → entry, least recently used first. */
  private readonly entries = new Map<string, Entry>();
  /** Handle bytes (latin1) → the directory's listing, least recently used first. */
  private readonly listings = new Map<string, Listing>();
  /** Names held by `listings`. */
  private names = 0;
  /** The key last kept or moved to the end of `entries`: while it is there, it is the last. */
  private newest: string | undefined;

  constructor(readonly limits: Readonly<AnchorCacheLimits> = ANCHOR_CACHE_DEFAULT_LIMITS) {}

  get size(): number {
    return this.entries.size;
  }

  /** The kept anchor of handle `key`: for synchronous use, or `hold()` it to use it across awaits. */
  peek(key: string): Anchor | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    // Calls in a row on one handle (a client reading a file) leave the order as it is.
    if (key !== this.newest) {
      this.entries.delete(key);
      this.entries.set(key, e);
      this.newest = key;
    }
    e.used = performance.now();
    return e.anchor;
  }

  /** Keeps `a` (a new owner of its descriptor: the caller still closes its own). */
  keep(key: string, a: Anchor): void {
    // A handle names one object: its listing stays good with the new descriptor.
    this.close(key);
    this.entries.set(key, { anchor: a.hold(), used: performance.now() });
    this.newest = key;
    for (const k of this.entries.keys()) {
      if (this.entries.size <= this.limits.maxEntries) break;
      this.close(k);
    }
  }

  /** Forgets handle `key` and its listing; its descriptor closes once no call still uses it. */
  drop(key: string): void {
    this.dropListing(key);
    this.close(key);
  }

  /** Closes the kept descriptor of `key` (once no call still uses it); a listing stays. */
  private close(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    e.anchor.close();
  }

  private dropListing(key: string): void {
    const l = this.listings.get(key);
    if (!l) return;
    this.listings.delete(key);
    this.names -= l.names;
  }

  /** The listing kept for `key` if the directory (its fstat now: `st`) has not changed since. */
  listing<T>(key: string, st: BigIntStats): T | undefined {
    const l = this.listings.get(key);
    if (!l) return undefined;
    if (!unchanged(l, st)) {
      this.dropListing(key);
      return undefined;
    }
    this.listings.delete(key);
    this.listings.set(key, l);
    return l.value as T;
  }

  /**
   * Keeps `value`, a listing of `names` entries read after an fstat `st` taken at `nowNs` (wall
   * clock), unless the directory changed too recently to tell a later change from this one.
   */
  keepListing(key: string, st: BigIntStats, nowNs: bigint, value: unknown, names: number): void {
    this.dropListing(key);
    if (names > this.limits.maxListedNames) return;
    const settled = nowNs - LISTING_SETTLE_NS;
    if (st.ctimeNs >= settled || st.mtimeNs >= settled) return;
    for (const k of this.listings.keys()) {
      if (this.names + names <= this.limits.maxListedNames && this.listings.size < this.limits.maxEntries) break;
      this.dropListing(k);
    }
    this.listings.set(key, { ctimeNs: st.ctimeNs, mtimeNs: st.mtimeNs, size: st.size, nlink: st.nlink, value, names });
    this.names += names;
  }

  /** Closes the descriptors unused for `idleMs` (the least recently used come first); listings stay. */
  sweep(idleMs = this.limits.idleMs): void {
    const before = performance.now() - idleMs;
    for (const [k, e] of this.entries) {
      if (e.used > before) break;
      this.close(k);
    }
  }

  /** Closes every kept descriptor and forgets every listing (server shutdown). */
  clear(): void {
    for (const k of [...this.entries.keys()]) this.drop(k);
    for (const k of [...this.listings.keys()]) this.dropListing(k);
  }
}
