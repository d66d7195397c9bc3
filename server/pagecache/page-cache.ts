/**
 * A fixed pool of 4 KiB page frames in one preallocated Buffer, keyed by (file, page index).
 *
 * Invariants (stated once, here):
 * - A frame is on exactly one of: the free list, the LRU (keyed, unpinned, not busy), or neither
 *   (pinned by the network, being filled, or a detached copy-on-write original awaiting its destructor).
 * - `pins` counts reply destructors that still hold the frame; only `unpin` lowers it. A frame with
 *   pins > 0 is never evicted, reused or written in place: a write to it goes to a fresh frame that
 *   takes over the key (copy-on-write) and the old one returns to the pool when its last pin drops —
 *   unless the cache runs in `legacy` trust, where callers never pin past sendpage (the bug, on purpose).
 * - `dirty` means written through to the file but not yet made durable (fsync); write-back = fsync.
 */
import type { EventSink } from '../../netstack/events.ts';
import { PAGE_SIZE } from '../../netstack/page.ts';

/** One page: a cache frame is what sendpage lends the netstack as a page, so one size for both. */
export { PAGE_SIZE };

export type FrameState = 'free' | 'clean' | 'dirty' | 'pinned' | 'cow' | 'filling';

export interface PageFrame {
  /** Frame number in the pool, stable for the life of the process. */
  readonly pfn: number;
  /** The frame's 4 KiB of memory (a view of the pool). */
  readonly buf: Buffer;
  file: string | null;
  index: number;
  /** Valid bytes in the frame (less than PAGE_SIZE for the page that holds EOF). */
  valid: number;
  dirty: boolean;
  pins: number;
  /** Detached from its key by a copy-on-write; freed when the last pin drops. */
  cow: boolean;
  /** A fill (file read) is in progress; waiters share it. */
  filling: Promise<void> | null;
  /** Time (ms, the cache's clock) the first current pin was taken. */
  pinnedAt: number;
}

export interface PageCacheOptions {
  pages: number;
  now: () => number;
  /** Where the cache tells what happens to its frames (the server's bus); none: it tells no one. */
  events?: PageCacheBus;
}

export interface FileSource {
  /** Identity of the file (stable: device and inode). */
  key: string;
  /** Changes whenever the file's contents may have changed outside the cache (size, mtime, ctime). */
  version: string;
  /** Reads up to buf.length bytes at `position`; returns bytes read (short at EOF). */
  read(buf: Buffer, position: number): Promise<number>;
}

export class PageCacheFullError extends Error {
  override readonly name = 'PageCacheFullError';
  constructor(readonly pages: number) {
    super(`page cache: all ${pages} frames are pinned or busy`);
  }
}

interface FileEntry {
  version: string;
  frames: Map<number, PageFrame>;
}

/** What happens to frames: filled from a file, evicted for reuse, pinned, unpinned, copied on write, freed. */
export type PageCacheEvent =
  /** `startedAt`: when the file read began (the cache's clock, ms); the event comes when it ended. */
  | { type: 'page-fill'; frame: PageFrame; startedAt: number }
  | { type: 'page-evict'; frame: PageFrame; was: { file: string; index: number } }
  | { type: 'page-pin'; frame: PageFrame }
  | { type: 'page-unpin'; frame: PageFrame }
  | { type: 'page-cow'; frame: PageFrame; replacement: PageFrame }
  | { type: 'page-free'; frame: PageFrame };

export type PageCacheBus = EventSink<PageCacheEvent>;

const NO_EVENTS: PageCacheBus = { wants: () => false, emit: () => undefined };

export interface PageCacheStats {
  pages: number;
  free: number;
  clean: number;
  dirty: number;
  pinned: number;
  cow: number;
  hits: number;
  misses: number;
  evictions: number;
  cowCopies: number;
}

export class PageCache {
  readonly frames: readonly PageFrame[];
  private readonly events: PageCacheBus;
  /** `waitUnpinned` callers, by the frame they wait on. */
  private readonly waiting = new Map<PageFrame, (() => void)[]>();
  private readonly pool: Buffer;
  private readonly freeList: PageFrame[] = [];
  /** Keyed, unpinned, idle frames in least-recently-used order: a list threaded through pfns. */
  private readonly lru: Lru;
  private readonly files = new Map<string, FileEntry>();
  private pinnedFrames = 0;
  private readonly counters = { hits: 0, misses: 0, evictions: 0, cowCopies: 0 };

  constructor(private readonly opts: PageCacheOptions) {
    this.events = opts.events ?? NO_EVENTS;
    this.pool = Buffer.allocUnsafeSlow(opts.pages * PAGE_SIZE);
    const frames: PageFrame[] = [];
    for (let pfn = 0; pfn < opts.pages; pfn++) {
      const frame: PageFrame = {
        pfn,
        buf: this.pool.subarray(pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE),
        file: null,
        index: 0,
        valid: 0,
        dirty: false,
        pins: 0,
        cow: false,
        filling: null,
        pinnedAt: 0,
      };
      frames.push(frame);
    }
    this.frames = frames;
    this.lru = new Lru(opts.pages);
    for (let i = frames.length - 1; i >= 0; i--) this.freeList.push(frames[i]!);
  }

  get size(): number {
    return this.frames.length;
  }

  /**
   * The frame a Buffer points into, and the offset within it, or null when the memory is not the
   * pool's. The reply path uses it to turn a reply's by-reference chunks into page fragments.
   */
  frameOf(chunk: Buffer): { frame: PageFrame; offset: number } | null {
    if (chunk.buffer !== this.pool.buffer) return null;
    const rel = chunk.byteOffset - this.pool.byteOffset;
    if (rel < 0 || rel >= this.pool.length) return null;
    const frame = this.frames[Math.floor(rel / PAGE_SIZE)]!;
    return { frame, offset: rel % PAGE_SIZE };
  }

  /** Frames with at least one pin (keyed or copy-on-write originals). */
  get pinned(): number {
    return this.pinnedFrames;
  }

  stateOf(f: PageFrame): FrameState {
    if (f.filling) return 'filling';
    if (f.cow) return 'cow';
    if (f.pins > 0) return 'pinned';
    if (f.file === null) return 'free';
    return f.dirty ? 'dirty' : 'clean';
  }

  stats(): PageCacheStats {
    let clean = 0;
    let dirty = 0;
    let cow = 0;
    let pinned = 0;
    for (const f of this.frames) {
      const s = this.stateOf(f);
      if (s === 'clean') clean++;
      else if (s === 'dirty') dirty++;
      else if (s === 'cow') cow++;
      else if (s === 'pinned') pinned++;
    }
    return { pages: this.size, free: this.freeList.length, clean, dirty, pinned, cow, ...this.counters };
  }

  /**
   * Returns the frames holding the file's pages [first, last], filled and each pinned once by the
   * caller (who must `unpin` each exactly once). Pages already cached are hits; missing ones are read.
   */
  async getPages(src: FileSource, first: number, last: number): Promise<PageFrame[]> {
    const entry = this.entryFor(src);
    const out: PageFrame[] = [];
    try {
      for (let index = first; index <= last; index++) {
        let frame = entry.frames.get(index);
        if (frame) {
          this.counters.hits++;
          this.pin(frame);
          out.push(frame);
          if (frame.filling) await frame.filling;
          continue;
        }
        this.counters.misses++;
        frame = this.allocFrame();
        frame.file = src.key;
        frame.index = index;
        frame.valid = 0;
        entry.frames.set(index, frame);
        this.pin(frame);
        out.push(frame);
        frame.filling = this.fill(src, frame);
        await frame.filling;
      }
    } catch (e) {
      for (const f of out) this.unpin(f);
      throw e;
    }
    return out;
  }

  private async fill(src: FileSource, frame: PageFrame): Promise<void> {
    const startedAt = this.opts.now();
    try {
      let got = 0;
      while (got < PAGE_SIZE) {
        const n = await src.read(frame.buf.subarray(got), frame.index * PAGE_SIZE + got);
        if (n === 0) break;
        got += n;
      }
      frame.valid = got;
      frame.buf.fill(0, got);
      if (this.events.wants('page-fill')) this.events.emit({ type: 'page-fill', frame, startedAt });
    } catch (e) {
      // An unreadable page must not stay cached: detach it so the next reader tries again.
      this.detach(frame);
      throw e;
    } finally {
      frame.filling = null;
    }
  }

  /** Callers of `waitUnpinned` waiting now (a replay runs its virtual clock only while there are some). */
  get unpinWaiters(): number {
    let n = 0;
    for (const w of this.waiting.values()) n += w.length;
    return n;
  }

  pin(frame: PageFrame): void {
    if (frame.pins++ === 0) {
      this.lru.delete(frame.pfn);
      this.pinnedFrames++;
      frame.pinnedAt = this.opts.now();
      if (this.events.wants('page-pin')) this.events.emit({ type: 'page-pin', frame });
    }
  }

  unpin(frame: PageFrame): void {
    if (frame.pins <= 0) throw new Error(`page cache: unpin of unpinned frame ${frame.pfn}`);
    if (--frame.pins > 0) return;
    this.pinnedFrames--;
    if (this.events.wants('page-unpin')) this.events.emit({ type: 'page-unpin', frame });
    const waiters = this.waiting.get(frame);
    if (waiters) {
      this.waiting.delete(frame);
      for (const w of waiters) w();
    }
    if (frame.cow || frame.file === null) this.release(frame);
    else this.lru.add(frame.pfn);
  }

  /**
   * Writes `data` at `position` into the cached pages of the file (those present), so readers see it.
   * Pages pinned by the network are copied first (copy-on-write); the caller writes the file itself.
   */
  writeThrough(src: FileSource, position: number, data: Buffer, copyOnWrite: boolean): void {
    const entry = this.files.get(src.key);
    if (!entry) return;
    const end = position + data.length;
    // Division, not >>: offsets past 2 GiB do not fit the 32-bit shift.
    for (let index = Math.floor(position / PAGE_SIZE); index <= Math.floor((end - 1) / PAGE_SIZE) && data.length > 0; index++) {
      let frame = entry.frames.get(index);
      if (!frame || frame.filling) {
        // A page being filled may read the old or new bytes: drop it rather than guess.
        if (frame) this.detach(frame);
        continue;
      }
      if (frame.pins > 0 && copyOnWrite) frame = this.copyOnWrite(entry, frame);
      const pageStart = index * PAGE_SIZE;
      const from = Math.max(position, pageStart);
      const to = Math.min(end, pageStart + PAGE_SIZE);
      data.copy(frame.buf, from - pageStart, from - position, to - position);
      frame.valid = Math.max(frame.valid, to - pageStart);
      frame.dirty = true;
    }
  }

  /**
   * Resolves once no cached page of the range is pinned (`--pinned-write wait`). Terminates because
   * every pin ends: at its destructor, or when the pin budget orphans it.
   */
  async waitUnpinned(key: string, position: number, length: number): Promise<void> {
    const first = Math.floor(position / PAGE_SIZE);
    const last = Math.floor((position + Math.max(length, 1) - 1) / PAGE_SIZE);
    for (;;) {
      const entry = this.files.get(key);
      let busy: PageFrame | undefined;
      for (let i = first; entry && i <= last && !busy; i++) {
        const f = entry.frames.get(i);
        if (f && f.pins > 0) busy = f;
      }
      if (!busy) return;
      const frame = busy;
      await new Promise<void>((resolve) => {
        const waiters = this.waiting.get(frame);
        if (waiters) waiters.push(resolve);
        else this.waiting.set(frame, [resolve]);
      });
    }
  }

  /** After the server's own write, the file's new version is the one the cache reflects. */
  setVersion(key: string, version: string): void {
    const entry = this.files.get(key);
    if (entry) entry.version = version;
  }

  /** The file's data is durable (fsync done): its cached pages are clean. */
  markClean(key: string): void {
    const entry = this.files.get(key);
    if (!entry) return;
    for (const f of entry.frames.values()) f.dirty = false;
  }

  /** Drops a file's pages (removed, truncated, or changed behind the server's back). */
  invalidate(key: string): void {
    const entry = this.files.get(key);
    if (!entry) return;
    for (const f of [...entry.frames.values()]) this.detach(f);
    this.files.delete(key);
  }

  /** Pinned frames, oldest pin first (for the pin budget). */
  pinnedOldestFirst(): PageFrame[] {
    return this.frames.filter((f) => f.pins > 0).sort((a, b) => a.pinnedAt - b.pinnedAt);
  }

  private entryFor(src: FileSource): FileEntry {
    let entry = this.files.get(src.key);
    if (entry && entry.version !== src.version) {
      this.invalidate(src.key);
      entry = undefined;
    }
    if (!entry) {
      entry = { version: src.version, frames: new Map() };
      this.files.set(src.key, entry);
    }
    return entry;
  }

  private copyOnWrite(entry: FileEntry, old: PageFrame): PageFrame {
    const fresh = this.allocFrame();
    old.buf.copy(fresh.buf);
    fresh.file = old.file;
    fresh.index = old.index;
    fresh.valid = old.valid;
    fresh.dirty = old.dirty;
    entry.frames.set(old.index, fresh);
    this.lru.add(fresh.pfn);
    old.cow = true;
    old.file = null;
    this.counters.cowCopies++;
    if (this.events.wants('page-cow')) this.events.emit({ type: 'page-cow', frame: old, replacement: fresh });
    return fresh;
  }

  /** Removes a frame from its file; frees it now if unpinned, else when its last pin drops. */
  private detach(frame: PageFrame): void {
    if (frame.file !== null) {
      const entry = this.files.get(frame.file);
      if (entry?.frames.get(frame.index) === frame) entry.frames.delete(frame.index);
    }
    if (frame.pins > 0) {
      frame.cow = true;
      frame.file = null;
      return;
    }
    this.lru.delete(frame.pfn);
    this.release(frame);
  }

  private release(frame: PageFrame): void {
    frame.file = null;
    frame.cow = false;
    frame.dirty = false;
    frame.valid = 0;
    this.freeList.push(frame);
    if (this.events.wants('page-free')) this.events.emit({ type: 'page-free', frame });
  }

  /** A free frame, or the least recently used idle one (evicted). A dirty victim's bytes are already
   * in the file (writes go through), so evicting it drops only the cached copy; its durability stays
   * pending on the file until COMMIT or a FILE_SYNC write fsyncs it. */
  private allocFrame(): PageFrame {
    const free = this.freeList.pop();
    if (free) return free;
    const oldest = this.lru.oldest();
    if (oldest >= 0) {
      const victim = this.frames[oldest]!;
      this.lru.delete(oldest);
      const was = { file: victim.file!, index: victim.index };
      const entry = this.files.get(was.file);
      if (entry?.frames.get(was.index) === victim) entry.frames.delete(was.index);
      victim.file = null;
      victim.dirty = false;
      victim.valid = 0;
      this.counters.evictions++;
      if (this.events.wants('page-evict')) this.events.emit({ type: 'page-evict', frame: victim, was });
      return victim;
    }
    throw new PageCacheFullError(this.size);
  }
}

/**
 * The LRU order of idle frames as a doubly linked list over pfns in typed arrays: O(1) without
 * hashing, where a Map<PageFrame> keyed by tens of thousands of frames rehashed and missed the
 * cache on every pin and unpin of a READ's 256 pages. `add` of a listed frame leaves it in place
 * (as Map.set did).
 */
class Lru {
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private readonly listed: Uint8Array;
  private head = -1;
  private tail = -1;

  constructor(n: number) {
    this.prev = new Int32Array(n).fill(-1);
    this.next = new Int32Array(n).fill(-1);
    this.listed = new Uint8Array(n);
  }

  add(pfn: number): void {
    if (this.listed[pfn]) return;
    this.listed[pfn] = 1;
    this.prev[pfn] = this.tail;
    this.next[pfn] = -1;
    if (this.tail >= 0) this.next[this.tail] = pfn;
    else this.head = pfn;
    this.tail = pfn;
  }

  delete(pfn: number): void {
    if (!this.listed[pfn]) return;
    this.listed[pfn] = 0;
    const p = this.prev[pfn]!;
    const n = this.next[pfn]!;
    if (p >= 0) this.next[p] = n;
    else this.head = n;
    if (n >= 0) this.prev[n] = p;
    else this.tail = p;
  }

  /** The least recently used frame's pfn, or -1 when none is idle. */
  oldest(): number {
    return this.head;
  }
}
