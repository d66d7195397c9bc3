/**
 * What was made of a directory's entries (their attributes, as a listing reports them), kept
 * between listings so that a READDIRPLUS page does not lstat every entry again.
 *
 * An entry's attributes change without its directory changing (a write, a chmod), so the directory's
 * own stamps (anchor-cache.ts) cannot tell whether a kept entry is still right. Three things can:
 *   - changes made through this server: each procedure that changes anything names, by handle, the
 *     objects and directories it changes, and `changed()` drops their kept entries when it settles
 *     (as knfsd's change attribute moves with every change it makes);
 *   - changes made by anything else on the host: each directory with kept entries is watched with
 *     inotify (fs.watch; IN_ATTRIB, IN_MODIFY, IN_CREATE, IN_DELETE, IN_MOVED_*), and an event on an
 *     entry drops it. The kernel queues the event before the changing syscall returns; the server
 *     reads it on its next event-loop turn, so a listing answered in that turn can still report the
 *     attributes from just before;
 *   - what inotify does not report to the directory: a change made through another name of a
 *     hard-linked file, and a subdirectory's own stamps (entries made inside it are reported to its
 *     own watchers only). Hard-linked files and directories are never kept (`keepable`). A link
 *     made later from another directory (its count is reported to the file's own watchers only), a
 *     lost event (inotify queue overflow) or a write through a shared mapping can leave a kept entry
 *     stale until it ages out, `maxAgeMs` after it was made.
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
  /** Bytes of runs (pages made of kept entries) kept over all directories (0: none kept). */
  maxRunBytes: number;
}

export interface EntryCacheStats {
  entries: number;
  directories: number;
  unwatchable: number;
  runBytes: number;
}

export const ENTRY_CACHE_DEFAULT_LIMITS: Readonly<EntryCacheLimits> = { maxEntries: 32_768, maxAgeMs: 60_000, maxRunBytes: 8 << 20 };

/**
 * Whether an entry with these attributes may be kept: not a directory, and one name only. inotify
 * reports a change to the watchers of the directory whose name it was made through.
 */
export function keepable(st: BigIntStats): boolean {
  return st.nlink === 1n && !st.isDirectory();
}

interface Kept<V> {
  value: V;
  /** The entry's object (its handle, latin1): a change to it through the server drops the entry. */
  object: string;
  /** performance.now() when it was made. */
  at: number;
}

/** A run of consecutive kept entries, as the caller made it of them (a READDIRPLUS page). */
interface KeptRun<R> {
  value: R;
  bytes: number;
  /** When its oldest entry was made. */
  at: number;
}

/**
 * One watched directory's kept entries, and runs made of them. A run holds no reference to its
 * entries: any change to any entry (or a name added) drops every run of the directory.
 */
export class DirEntries<V, R = never> {
  readonly entries = new Map<string, Kept<V>>();
  private readonly runs = new Map<string, KeptRun<R>>();
  /** performance.now() of its last use. */
  used = 0;
  /** No longer in the cache (evicted, or its watch failed): nothing more is kept here. */
  dropped = false;

  constructor(
    private readonly cache: EntryCache<V, R>,
    readonly watcher: FSWatcher,
  ) {}

  /** The value kept for `name`, if it is younger than maxAgeMs at `now` (performance.now()). */
  get(name: string, now: number): V | undefined {
    return this.find(name, now)?.value;
  }

  /** As get, with when the value was made. */
  find(name: string, now: number): { value: V; at: number } | undefined {
    const k = this.entries.get(name);
    return k && now - k.at <= this.cache.limits.maxAgeMs ? k : undefined;
  }

  /** Keeps `value` for `name`, an entry of object `object`, made from attributes read at `now` or later. */
  set(name: string, object: string, value: V, now: number): void {
    // A directory larger than the whole cache keeps what fits, rather than evicting itself.
    const had = this.entries.has(name);
    if (this.dropped || (this.entries.size >= this.cache.limits.maxEntries && !had)) return;
    // A name kept for the first time is in no run yet: the runs stand.
    if (had) this.forget(name);
    this.entries.set(name, { value, object, at: now });
    this.cache.placed(object, this, name, 1);
  }

  /** The run kept under `key`, if its oldest entry is younger than maxAgeMs at `now`. */
  run(key: string, now: number): R | undefined {
    const r = this.runs.get(key);
    return r && now - r.at <= this.cache.limits.maxAgeMs ? r.value : undefined;
  }

  /**
   * Keeps `value`, `bytes` long, made only of entries kept here now, the oldest made at `at`. The
   * caller makes sure of that: a run kept beside an entry that is not would outlive its changes.
   */
  keepRun(key: string, value: R, bytes: number, at: number): void {
    if (this.dropped || !this.cache.roomForRun(this, bytes)) return;
    this.dropRun(key);
    this.runs.set(key, { value, bytes, at });
  }

  /** Forgets every run. */
  dropRuns(): void {
    for (const r of this.runs.values()) this.cache.ranRun(-r.bytes);
    this.runs.clear();
  }

  private dropRun(key: string): void {
    const r = this.runs.get(key);
    if (!r) return;
    this.runs.delete(key);
    this.cache.ranRun(-r.bytes);
  }

  /** Forgets `name` (an inotify event on it, a change through the server) or, without a name, every entry. */
  forget(name: string | null): void {
    // Whatever changed may be in, or belong in, any run.
    if (this.runs.size > 0) this.dropRuns();
    if (name === null) {
      for (const [n, k] of this.entries) this.cache.placed(k.object, this, n, -1);
      this.entries.clear();
      return;
    }
    const k = this.entries.get(name);
    if (!k) return;
    this.entries.delete(name);
    this.cache.placed(k.object, this, name, -1);
  }
}

export class EntryCache<V, R = never> {
  /** Directory key (its handle, latin1) → its entries, least recently used first. */
  private readonly dirs = new Map<string, DirEntries<V, R>>();
  /** Object key → where its one kept entry is (a kept entry's object has one name: `keepable`). */
  private readonly objects = new Map<string, { dir: DirEntries<V, R>; name: string }>();
  /** Directories that could not be watched (inotify limits): listed without kept entries. */
  unwatchable = 0;
  /** Bytes of runs kept over all directories. */
  private runBytes = 0;

  private readonly sweeper: NodeJS.Timeout | undefined;

  constructor(readonly limits: Readonly<EntryCacheLimits> = ENTRY_CACHE_DEFAULT_LIMITS) {
    if (limits.maxEntries > 0) this.sweeper = setInterval(() => this.sweep(performance.now()), limits.maxAgeMs).unref();
  }

  /** Entries kept now. */
  get entries(): number {
    return this.objects.size;
  }

  /** For /metrics: entries and watched directories now, directories that could not be watched so far. */
  stats(): EntryCacheStats {
    return { entries: this.objects.size, directories: this.dirs.size, unwatchable: this.unwatchable, runBytes: this.runBytes };
  }

  /**
   * The object or directory `key` (a handle, latin1) was changed through the server: its own kept
   * entry, and a directory's kept entries, are dropped.
   */
  changed(key: string): void {
    this.objects.get(key)?.dir.forget(this.objects.get(key)!.name);
    this.dirs.get(key)?.forget(null);
  }

  /**
   * The kept entries of the directory `key`, watched through its anchor `a` from its first use;
   * undefined when nothing may be kept (disabled, or the directory cannot be watched).
   */
  dir(key: string, a: Anchor, now: number): DirEntries<V, R> | undefined {
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

  private watched(key: string, a: Anchor): DirEntries<V, R> | undefined {
    let w: FSWatcher;
    try {
      // The anchor's /proc name: inotify watches the open directory itself, whatever its path is now.
      w = watch(a.path, { persistent: false });
    } catch {
      this.unwatchable++;
      return undefined;
    }
    const d = new DirEntries<V, R>(this, w);
    w.on('change', (_event, name) => d.forget(typeof name === 'string' ? name : null));
    w.on('error', () => this.drop(key));
    return d;
  }

  /**
   * Accounts for object `object`'s entry `name` of `dir` kept (+1) or forgotten (-1), and drops the
   * least recently used directories above the limit.
   */
  placed(object: string, dir: DirEntries<V, R>, name: string, n: 1 | -1): void {
    if (n === -1) {
      const at = this.objects.get(object);
      if (at?.dir === dir && at.name === name) this.objects.delete(object);
      return;
    }
    this.objects.get(object)?.dir.forget(this.objects.get(object)!.name);
    this.objects.set(object, { dir, name });
    for (const k of this.dirs.keys()) {
      if (this.objects.size <= this.limits.maxEntries) break;
      this.drop(k);
    }
  }

  /**
   * Makes room for a run of `bytes` in `dir` by dropping the runs of the least recently used
   * directories; false when the run could never fit (it is then not kept). Accounts for it when true.
   */
  roomForRun(dir: DirEntries<V, R>, bytes: number): boolean {
    if (bytes > this.limits.maxRunBytes) return false;
    for (const d of this.dirs.values()) {
      if (this.runBytes + bytes <= this.limits.maxRunBytes) break;
      if (d !== dir) d.dropRuns();
    }
    if (this.runBytes + bytes > this.limits.maxRunBytes) dir.dropRuns();
    this.runBytes += bytes;
    return true;
  }

  /** Accounts for a run dropped (negative `bytes`). */
  ranRun(bytes: number): void {
    this.runBytes += bytes;
  }

  /** Forgets directory `key` and stops watching it. */
  drop(key: string): void {
    const d = this.dirs.get(key);
    if (!d) return;
    this.dirs.delete(key);
    d.dropped = true;
    d.watcher.close();
    d.forget(null);
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
