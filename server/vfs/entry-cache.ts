/**
 * What was made of a directory's entries (their attributes, as a listing reports them), kept
 * between listings so that a READDIRPLUS page does not lstat every entry again.
 *
 * An entry's attributes change without its directory changing (a write, a chmod), so the directory's
 * own stamps (anchor-cache.ts) cannot tell whether a kept entry is still right. Three things can:
 *   - changes made through this server: every procedure that changes anything calls `invalidate()`
 *     when it settles, which makes every kept entry stale at once (an epoch, as knfsd's change
 *     attribute moves on every change);
 *   - changes made by anything else on the host: each directory with kept entries is watched with
 *     inotify (fs.watch; IN_ATTRIB, IN_MODIFY, IN_CREATE, IN_DELETE, IN_MOVED_*), and an event on an
 *     entry drops it. The kernel queues the event before the changing syscall returns; the server
 *     reads it on its next event-loop turn, so a listing answered in that turn can still report the
 *     attributes from just before;
 *   - what inotify does not report to the directory: a hard-linked file changed through another of
 *     its names, and a subdirectory's own stamps (entries made inside it are reported to its own
 *     watchers only). Such entries are never kept (`keepable`), and every kept entry ages out after
 *     `maxAgeMs`, which also bounds what a lost event (inotify queue overflow) or a write through a
 *     shared mapping could leave stale.
 * The Linux client itself keeps attributes for 3–60 s (acregmin/acregmax); nfs-ganesha's attribute
 * cache keeps them for 60 s by default with no watch at all.
 */
import { watch, type BigIntStats, type FSWatcher } from 'node:fs';
import type { Anchor } from './anchor.ts';

/** The cache's limits (named config values: `entryCache` in server/config.ts). */
export interface EntryCacheLimits {
  /** Entries kept over all directories (0: none kept, every listing stats every entry). */
  maxEntries: number;
  /** A kept entry older than this is made again. */
  maxAgeMs: number;
}

export const ENTRY_CACHE_DEFAULT_LIMITS: Readonly<EntryCacheLimits> = { maxEntries: 32_768, maxAgeMs: 60_000 };

/**
 * Whether an entry with these attributes may be kept: not a directory, and one name only. inotify
 * reports a change to the watchers of the directory whose name it was made through.
 */
export function keepable(st: BigIntStats): boolean {
  return st.nlink === 1n && !st.isDirectory();
}

interface Kept<V> {
  value: V;
  epoch: number;
  /** performance.now() when it was made. */
  at: number;
}

/** One watched directory's kept entries. */
export class DirEntries<V> {
  readonly entries = new Map<string, Kept<V>>();
  /** performance.now() of its last use. */
  used = 0;
  /** No longer in the cache (evicted, or its watch failed): nothing more is kept here. */
  dropped = false;

  constructor(
    private readonly cache: EntryCache<V>,
    readonly watcher: FSWatcher,
  ) {}

  /** The value kept for `name`, if nothing has changed since it was made (`now`: performance.now()). */
  get(name: string, now: number): V | undefined {
    const k = this.entries.get(name);
    return k && k.epoch === this.cache.epoch && now - k.at <= this.cache.limits.maxAgeMs ? k.value : undefined;
  }

  /** Keeps `value` for `name`, made from attributes read at `now` or later. */
  set(name: string, value: V, now: number): void {
    if (this.dropped) return;
    const added = !this.entries.has(name);
    this.entries.set(name, { value, epoch: this.cache.epoch, at: now });
    if (added) this.cache.grew(1);
  }

  /** Forgets `name` (an inotify event on it) or, without a name, every entry. */
  forget(name: string | null): void {
    if (name === null) {
      this.cache.grew(-this.entries.size);
      this.entries.clear();
    } else if (this.entries.delete(name)) {
      this.cache.grew(-1);
    }
  }
}

export class EntryCache<V> {
  /** Directory key (its handle, latin1) → its entries, least recently used first. */
  private readonly dirs = new Map<string, DirEntries<V>>();
  private size = 0;
  /** Moves on with every change made through the server: entries of an older epoch are stale. */
  epoch = 0;
  /** Directories that could not be watched (inotify limits): listed without kept entries. */
  unwatchable = 0;

  private readonly sweeper: NodeJS.Timeout | undefined;

  constructor(readonly limits: Readonly<EntryCacheLimits> = ENTRY_CACHE_DEFAULT_LIMITS) {
    if (limits.maxEntries > 0) this.sweeper = setInterval(() => this.sweep(performance.now()), limits.maxAgeMs).unref();
  }

  /** Entries kept now. */
  get entries(): number {
    return this.size;
  }

  /** Every kept entry is stale: something was changed through the server. */
  invalidate(): void {
    this.epoch++;
  }

  /**
   * The kept entries of the directory `key`, watched through its anchor `a` from its first use;
   * undefined when nothing may be kept (disabled, or the directory cannot be watched).
   */
  dir(key: string, a: Anchor, now: number): DirEntries<V> | undefined {
    if (this.limits.maxEntries === 0) return undefined;
    let d = this.dirs.get(key);
    if (d) {
      this.dirs.delete(key);
    } else {
      d = this.watched(key, a);
      if (!d) return undefined;
    }
    this.dirs.set(key, d);
    d.used = now;
    return d;
  }

  private watched(key: string, a: Anchor): DirEntries<V> | undefined {
    let w: FSWatcher;
    try {
      // The anchor's /proc name: inotify watches the open directory itself, whatever its path is now.
      w = watch(a.path, { persistent: false });
    } catch {
      this.unwatchable++;
      return undefined;
    }
    const d = new DirEntries<V>(this, w);
    w.on('change', (_event, name) => d.forget(typeof name === 'string' ? name : null));
    w.on('error', () => this.drop(key));
    return d;
  }

  /** Accounts for entries added (or removed, negative) and drops the least recently used directories above the limit. */
  grew(n: number): void {
    this.size += n;
    for (const k of this.dirs.keys()) {
      if (this.size <= this.limits.maxEntries) break;
      this.drop(k);
    }
  }

  /** Forgets directory `key` and stops watching it. */
  drop(key: string): void {
    const d = this.dirs.get(key);
    if (!d) return;
    this.dirs.delete(key);
    d.dropped = true;
    d.watcher.close();
    this.size -= d.entries.size;
    d.entries.clear();
  }

  /** Drops directories unused for `maxAgeMs` (their entries are stale anyway) and their watches. */
  sweep(now: number): void {
    for (const [k, d] of this.dirs) {
      if (now - d.used <= this.limits.maxAgeMs) break;
      this.drop(k);
    }
  }

  /** Stops every watch and the sweeper (server shutdown). */
  close(): void {
    clearInterval(this.sweeper);
    for (const k of [...this.dirs.keys()]) this.drop(k);
  }
}
