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
 * - A frame being filled (`filling`) is on neither list, pinned or not: it is placed (LRU, or freed
 *   when detached meanwhile) only when its fill settles, so no one reuses memory a read is writing.
 *
 * Misses are filled as Linux fills them: the missing pages of a request are read in one call per
 * contiguous run (one preadv into the run's frames, as `read_pages` submits one I/O for a batch
 * rather than one per page; a run longer than FILL_PIECE_PAGES in several at once), and a
 * sequential reader gets read-ahead — the next window of the file read in the background while its
 * reply travels, the window doubling on each sequential request up to `readaheadPages`
 * (mm/readahead.c's on-demand read-ahead). The read-ahead state lives with the file's cached pages,
 * not with an open file: an NFS server opens the file per call, so the state must outlive the call,
 * as knfsd kept it in its read-ahead parameter cache (and now in its file cache's `struct file`).
 */
import type { EventSink } from '../../netstack/events.ts';
import { PAGE_SIZE } from '../../netstack/page.ts';
import { PageIndex } from './page-index.ts';

/** One page: a cache frame is what sendpage lends the netstack as a page, so one size for both. */
export { PAGE_SIZE };

/**
 * The most frames one read fills. A longer run (a 1 MiB READ's miss, a read-ahead window) is read
 * as pieces of this size, all started at once, so they run on several threadpool threads — as the
 * block layer splits a large read-ahead into bios that are in flight together. A frame's first use
 * costs a page fault inside the read (~17 µs each on the 2-vCPU virtual machine of the README, 2.2 s
 * per 512 MiB), and faults in parallel threads overlap: a fresh server's first pass over a 256 MiB
 * file ran 8–16 % faster (README, "Performance", twelfth round). Each piece's frames are ready when that piece is,
 * so a reader waiting on the start of a read-ahead window does not wait for its end.
 */
export const FILL_PIECE_PAGES = 64;

/**
 * A READ of at least twice this many pages, all cached but in frames whose runs of adjacent pfns
 * average fewer than this many pages, is moved into adjacent free frames (`collapse`). One page in
 * sixteen out of place does not trigger it, so READs of overlapping, differently aligned ranges do
 * not keep moving the same pages.
 */
export const COLLAPSE_RUN_PAGES = 16;

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
  /**
   * Largest read-ahead window, in pages; 0 or absent: no read-ahead. At most an eighth of the cache
   * is ever read ahead, so a small cache is not flushed by guesses.
   */
  readaheadPages?: number;
}

export interface FileSource {
  /** Identity of the file (stable: device and inode). */
  key: string;
  /** Changes whenever the file's contents may have changed outside the cache (size, mtime, ctime). */
  version: string;
  /** Reads up to buf.length bytes at `position`; returns bytes read (short at EOF). */
  read(buf: Buffer, position: number): Promise<number>;
  /** Reads into `bufs` in order from `position` (preadv); returns bytes read. Absent: `read` per page. */
  readv?(bufs: Buffer[], position: number): Promise<number>;
  /** The file's size in bytes at `version`; read-ahead stops there, and there is none without it. */
  size?: number;
}

export class PageCacheFullError extends Error {
  override readonly name = 'PageCacheFullError';
  constructor(readonly pages: number) {
    super(`page cache: all ${pages} frames are pinned or busy`);
  }
}

/** A file's read-ahead state (Linux `struct file_ra_state`, reduced to what a page index needs). */
interface Readahead {
  /** The page a sequential reader asks for next. */
  next: number;
  /** The current window in pages (0: the reader is not sequential). */
  window: number;
  /** The last page read ahead so far. */
  aheadTo: number;
}

interface FileEntry {
  version: string;
  /** Which frame holds each cached page of the file. */
  pages: PageIndex;
  ra: Readahead;
}

/** What happens to frames: filled from a file, evicted for reuse, pinned, unpinned, copied on write, freed. */
export type PageCacheEvent =
  /** `startedAt`: when the file read began (the cache's clock, ms); the event comes when it ended. */
  | { type: 'page-fill'; frame: PageFrame; startedAt: number }
  | { type: 'page-evict'; frame: PageFrame; was: { file: string; index: number } }
  | { type: 'page-pin'; frame: PageFrame }
  | { type: 'page-unpin'; frame: PageFrame }
  | { type: 'page-cow'; frame: PageFrame; replacement: PageFrame }
  /** The page moved to `replacement` by a collapse; `frame` is detached (freed once unpinned). */
  | { type: 'page-collapse'; frame: PageFrame; replacement: PageFrame }
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
  /** READs whose pages were moved into adjacent frames. */
  collapses: number;
}

export class PageCache {
  readonly frames: readonly PageFrame[];
  private readonly events: PageCacheBus;
  /** `waitUnpinned` callers, by the frame they wait on. */
  private readonly waiting = new Map<PageFrame, (() => void)[]>();
  private readonly pool: Buffer;
  /** Free frames, a stack: the frame freed last is reused first (the legacy mode's bug needs that). */
  private readonly freeList: PageFrame[] = [];
  /** Each free frame's index in `freeList`, −1 for a frame not free: a block of them is taken in O(1) each. */
  private readonly freeAt: Int32Array;
  /** Where the last search for a block of free frames ended, and the frees counted then (`collapse`). */
  private blockCursor = 0;
  private freesAtFailedSearch = -Infinity;
  private frees = 0;
  /** Keyed, unpinned, idle frames in least-recently-used order: a list threaded through pfns. */
  private readonly lru: Lru;
  private readonly files = new Map<string, FileEntry>();
  private pinnedFrames = 0;
  private readonly counters = { hits: 0, misses: 0, evictions: 0, cowCopies: 0, collapses: 0 };
  private pinTransitions = 0;
  private readonly readaheadMax: number;

  constructor(private readonly opts: PageCacheOptions) {
    this.events = opts.events ?? NO_EVENTS;
    this.readaheadMax = Math.min(opts.readaheadPages ?? 0, Math.floor(opts.pages / 8));
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
    this.freeAt = new Int32Array(opts.pages);
    for (let i = frames.length - 1; i >= 0; i--) this.pushFree(frames[i]!);
  }

  get size(): number {
    return this.frames.length;
  }

  /**
   * The frame a Buffer points into, and the offset within it, or null when the memory is not the
   * pool's. The reply path uses it to turn a reply's by-reference chunks into page fragments.
   */
  frameOf(chunk: Buffer): { frame: PageFrame; offset: number } | null {
    const at = this.poolOffset(chunk);
    return at < 0 ? null : { frame: this.frames[Math.floor(at / PAGE_SIZE)]!, offset: at % PAGE_SIZE };
  }

  /**
   * Where a Buffer starts in the pool (its frame is `frames[at / PAGE_SIZE]`), or −1 when the
   * memory is not the pool's: frameOf without an object per call, for the reply path's per-page loop.
   */
  poolOffset(chunk: Buffer): number {
    if (chunk.buffer !== this.pool.buffer) return -1;
    const rel = chunk.byteOffset - this.pool.byteOffset;
    return rel < 0 || rel >= this.pool.length ? -1 : rel;
  }

  /** Frames with at least one pin (keyed or copy-on-write originals). */
  get pinned(): number {
    return this.pinnedFrames;
  }

  /** Frames that went from unpinned to pinned, since start. */
  get pinsTotal(): number {
    return this.pinTransitions;
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
    // Indexed: called a few times a second, this loop runs unoptimized, where for-of allocates a
    // result object per frame.
    for (let i = 0; i < this.frames.length; i++) {
      const s = this.stateOf(this.frames[i]!);
      if (s === 'clean') clean++;
      else if (s === 'dirty') dirty++;
      else if (s === 'cow') cow++;
      else if (s === 'pinned') pinned++;
    }
    return { pages: this.size, free: this.freeList.length, clean, dirty, pinned, cow, ...this.counters };
  }

  /**
   * Returns the frames holding the file's pages [first, last], filled and each pinned once by the
   * caller (who must `unpin` each exactly once). Pages already cached are hits; each run of missing
   * ones is read with one call. A sequential reader's next pages are read ahead, not waited for.
   */
  async getPages(src: FileSource, first: number, last: number): Promise<PageFrame[]> {
    const entry = this.entryFor(src);
    const out: PageFrame[] = [];
    const fills: Promise<void>[] = [];
    // One clock reading for the call: every page of it is pinned at the same moment.
    const now = this.opts.now();
    let run: PageFrame[] = [];
    // Runs of adjacent frames among the cached pages, for `collapse`.
    let runs = 0;
    let prevPfn = -2;
    try {
      for (let index = first; index <= last; index++) {
        const pfn = entry.pages.get(index);
        if (pfn >= 0) {
          const cached = this.frames[pfn]!;
          if (pfn !== prevPfn + 1) runs++;
          prevPfn = pfn;
          if (run.length > 0) {
            fills.push(this.fillRun(src, run));
            run = [];
          }
          this.counters.hits++;
          this.pin(cached, now);
          out.push(cached);
          if (cached.filling) fills.push(cached.filling);
          continue;
        }
        this.counters.misses++;
        const frame = this.claim(entry, src.key, index);
        this.pin(frame, now);
        out.push(frame);
        run.push(frame);
      }
      if (run.length > 0) fills.push(this.fillRun(src, run));
      run = [];
      if (fills.length === 0 && out.length >= 2 * COLLAPSE_RUN_PAGES && runs * COLLAPSE_RUN_PAGES > out.length) this.collapse(entry, out, now);
      this.readahead(src, entry, first, last);
      await Promise.all(fills);
    } catch (e) {
      // Frames claimed for a run whose read never started hold nothing: not to be found by key.
      for (const f of run) this.detach(f);
      for (const f of out) this.unpin(f);
      // Runs already started settle on their own (their frames are placed then); nobody awaits them now.
      for (const p of fills) p.catch(() => undefined);
      throw e;
    }
    return out;
  }

  /**
   * Moves the pages of `out` — all cached and filled, each pinned once by the caller — into adjacent
   * free frames, if the pool has a block of them (a full cache has none: then nothing moves), and
   * moves the caller's pins with them. A file read sparsely first (random 4 KiB READs) and
   * sequentially later has its pages scattered over the pool, and every run of adjacent frames is
   * a view of its own all the way to the socket (read.ts's `pageRuns`, the conduit, an iovec of the
   * socket write): a 1 MiB READ of such a file was ~120 views instead of one, and read at ~1,600
   * instead of ~2,400 MiB/s (README, "Performance").
   * Copying the pages once, as khugepaged's collapse_file copies a file range's small pages into one
   * huge page, makes later READs of the range one view. Each old frame is detached as a
   * copy-on-write original is: freed now, or when the replies still holding it release it.
   */
  private collapse(entry: FileEntry, out: PageFrame[], now: number): void {
    const n = out.length;
    const base = this.freeBlock(n);
    if (base < 0) return;
    for (let i = 0; i < n; i++) {
      const old = out[i]!;
      const fresh = this.frames[base + i]!;
      this.takeFree(fresh);
      this.moveTo(entry, old, fresh);
      this.pin(fresh, now);
      out[i] = fresh;
      if (this.events.wants('page-collapse')) this.events.emit({ type: 'page-collapse', frame: old, replacement: fresh });
      this.unpin(old);
    }
    this.counters.collapses++;
  }

  /**
   * The first pfn of `n` adjacent free frames, searched from where the last search ended; −1 when
   * there is none. A search that found none is not repeated until `n` frames have been freed since,
   * so a full or scattered pool costs one scan per `n` frees, not one per READ.
   */
  private freeBlock(n: number): number {
    if (this.freeList.length < n || this.frees - this.freesAtFailedSearch < n) return -1;
    const size = this.frames.length;
    let start = this.blockCursor;
    for (let scanned = 0; scanned < size + n; scanned++) {
      const pfn = (this.blockCursor + scanned) % size;
      if (pfn === 0) start = 0;
      if (this.freeAt[pfn]! < 0) {
        start = pfn + 1;
        continue;
      }
      if (pfn - start + 1 === n) {
        this.blockCursor = (pfn + 1) % size;
        return start;
      }
    }
    this.freesAtFailedSearch = this.frees;
    return -1;
  }

  private pushFree(frame: PageFrame): void {
    this.freeAt[frame.pfn] = this.freeList.length;
    this.freeList.push(frame);
  }

  /** Takes a given free frame off the free list (the top one takes its place). */
  private takeFree(frame: PageFrame): void {
    const at = this.freeAt[frame.pfn]!;
    const top = this.freeList.pop()!;
    if (top !== frame) {
      this.freeList[at] = top;
      this.freeAt[top.pfn] = at;
    }
    this.freeAt[frame.pfn] = -1;
  }

  /** A frame for page `index` of the file, keyed and idle (the caller pins it or fills it). */
  private claim(entry: FileEntry, key: string, index: number): PageFrame {
    const frame = this.allocFrame();
    frame.file = key;
    frame.index = index;
    frame.valid = 0;
    entry.pages.set(index, frame.pfn);
    return frame;
  }

  /**
   * On-demand read-ahead: a request at the start of the file, or where the last one ended (or in its
   * last page), is sequential, and the window — twice the request at first, then doubling — is read beyond it once
   * less than half a window is left ahead, so each background read is a large one. Any other request
   * resets the window. Read-ahead only takes frames that are free or idle, and stops at a full cache.
   */
  private readahead(src: FileSource, entry: FileEntry, first: number, last: number): void {
    const ra = entry.ra;
    const sequential = first === 0 || first === ra.next || first === ra.next - 1;
    ra.next = last + 1;
    if (!sequential || this.readaheadMax === 0 || src.size === undefined) {
      ra.window = 0;
      ra.aheadTo = last;
      return;
    }
    ra.window = Math.min(this.readaheadMax, Math.max(ra.window * 2, (last - first + 1) * 2));
    if (ra.aheadTo - last >= ra.window / 2) return;
    const to = Math.min(last + ra.window, Math.ceil(src.size / PAGE_SIZE) - 1);
    let run: PageFrame[] = [];
    const start = (): void => {
      // A failed read-ahead detaches its frames; the reader that wants them reads them again itself.
      if (run.length > 0) this.fillRun(src, run).catch(() => undefined);
      run = [];
    };
    try {
      for (let index = Math.max(last + 1, ra.aheadTo + 1); index <= to; index++) {
        if (entry.pages.has(index)) {
          // Cached already: ahead as much as a page read ahead, so the next request does not look again.
          ra.aheadTo = index;
          start();
          continue;
        }
        run.push(this.claim(entry, src.key, index));
        ra.aheadTo = index;
      }
    } catch (e) {
      if (!(e instanceof PageCacheFullError)) throw e;
    }
    start();
  }

  /** Starts reading a run of consecutive frames, in pieces (FILL_PIECE_PAGES); each frame is `filling` until its piece settles. */
  private fillRun(src: FileSource, run: PageFrame[]): Promise<void> {
    if (run.length <= FILL_PIECE_PAGES) return this.fillPiece(src, run);
    const pieces: Promise<void>[] = [];
    for (let i = 0; i < run.length; i += FILL_PIECE_PAGES) pieces.push(this.fillPiece(src, run.slice(i, i + FILL_PIECE_PAGES)));
    return Promise.all(pieces).then(() => undefined);
  }

  private fillPiece(src: FileSource, piece: PageFrame[]): Promise<void> {
    const done = this.readRun(src, piece);
    for (const f of piece) f.filling = done;
    return done;
  }

  private async readRun(src: FileSource, run: PageFrame[]): Promise<void> {
    const startedAt = this.opts.now();
    try {
      const position = run[0]!.index * PAGE_SIZE;
      // A known size ends the read at EOF without a read that returns 0 to say so.
      const total = Math.min(run.length * PAGE_SIZE, src.size === undefined ? Infinity : Math.max(0, src.size - position));
      let got = 0;
      while (got < total) {
        const page = Math.floor(got / PAGE_SIZE);
        const into = run[page]!.buf.subarray(got % PAGE_SIZE);
        const n = src.readv ? await src.readv([into, ...run.slice(page + 1).map((f) => f.buf)], position + got) : await src.read(into, position + got);
        if (n === 0) break;
        got += n;
      }
      for (let i = 0; i < run.length; i++) {
        const frame = run[i]!;
        frame.valid = Math.min(PAGE_SIZE, Math.max(0, got - i * PAGE_SIZE));
        frame.buf.fill(0, frame.valid);
        if (this.events.wants('page-fill')) this.events.emit({ type: 'page-fill', frame, startedAt });
      }
    } catch (e) {
      // An unreadable page must not stay cached: detach it so the next reader tries again.
      for (const f of run) this.detach(f);
      throw e;
    } finally {
      for (const f of run) {
        f.filling = null;
        if (f.pins === 0) this.place(f);
      }
    }
  }

  /** Callers of `waitUnpinned` waiting now (a replay runs its virtual clock only while there are some). */
  get unpinWaiters(): number {
    let n = 0;
    for (const w of this.waiting.values()) n += w.length;
    return n;
  }

  pin(frame: PageFrame, now = this.opts.now()): void {
    if (frame.pins++ === 0) {
      this.lru.delete(frame.pfn);
      this.pinnedFrames++;
      this.pinTransitions++;
      frame.pinnedAt = now;
      if (this.events.wants('page-pin')) this.events.emit({ type: 'page-pin', frame });
    }
  }

  unpin(frame: PageFrame): void {
    if (frame.pins <= 0) throw new Error(`page cache: unpin of unpinned frame ${frame.pfn}`);
    if (--frame.pins > 0) return;
    this.pinnedFrames--;
    if (this.events.wants('page-unpin')) this.events.emit({ type: 'page-unpin', frame });
    const waiters = this.waiting.size === 0 ? undefined : this.waiting.get(frame);
    if (waiters) {
      this.waiting.delete(frame);
      for (const w of waiters) w();
    }
    // A frame still being filled is placed when its fill settles.
    if (!frame.filling) this.place(frame);
  }

  /** An unpinned, filled frame goes back: to the pool when detached, else to the LRU. */
  private place(frame: PageFrame): void {
    if (frame.cow || frame.file === null) this.release(frame);
    else this.lru.add(frame.pfn);
  }

  /**
   * Writes `data` (one buffer, or the pieces of a WRITE's payload in order) at `position` into the
   * cached pages of the file (those present), so readers see it; pages not cached are not filled.
   * Pages pinned by the network are copied first (copy-on-write); the caller writes the file itself.
   */
  writeThrough(src: Pick<FileSource, 'key'>, position: number, data: Buffer | readonly Buffer[], copyOnWrite: boolean): void {
    const entry = this.files.get(src.key);
    if (!entry) return;
    if (Buffer.isBuffer(data)) return this.writePages(entry, position, data, copyOnWrite);
    for (const piece of data) {
      this.writePages(entry, position, piece, copyOnWrite);
      position += piece.length;
    }
  }

  private writePages(entry: FileEntry, position: number, data: Buffer, copyOnWrite: boolean): void {
    const end = position + data.length;
    // Division, not >>: offsets past 2 GiB do not fit the 32-bit shift.
    for (let index = Math.floor(position / PAGE_SIZE); index <= Math.floor((end - 1) / PAGE_SIZE) && data.length > 0; index++) {
      const pfn = entry.pages.get(index);
      let frame = pfn < 0 ? undefined : this.frames[pfn]!;
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
        const pfn = entry.pages.get(i);
        if (pfn >= 0 && this.frames[pfn]!.pins > 0) busy = this.frames[pfn];
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
    for (const pfn of entry.pages.pfns()) this.frames[pfn]!.dirty = false;
  }

  /** Drops a file's pages (removed, truncated, or changed behind the server's back). */
  invalidate(key: string): void {
    const entry = this.files.get(key);
    if (!entry) return;
    for (const pfn of entry.pages.pfns()) this.detach(this.frames[pfn]!);
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
      entry = { version: src.version, pages: new PageIndex(), ra: { next: -1, window: 0, aheadTo: -1 } };
      this.files.set(src.key, entry);
    }
    return entry;
  }

  private copyOnWrite(entry: FileEntry, old: PageFrame): PageFrame {
    const fresh = this.allocFrame();
    this.moveTo(entry, old, fresh);
    this.lru.add(fresh.pfn);
    this.counters.cowCopies++;
    if (this.events.wants('page-cow')) this.events.emit({ type: 'page-cow', frame: old, replacement: fresh });
    return fresh;
  }

  /** Copies `old`'s page into `fresh`, which takes over its key; `old` is left detached, a copy-on-write original. */
  private moveTo(entry: FileEntry, old: PageFrame, fresh: PageFrame): void {
    old.buf.copy(fresh.buf);
    fresh.file = old.file;
    fresh.index = old.index;
    fresh.valid = old.valid;
    fresh.dirty = old.dirty;
    entry.pages.set(old.index, fresh.pfn);
    old.cow = true;
    old.file = null;
  }

  /** Removes a frame from its file; frees it now if idle, else when its last pin drops or its fill settles. */
  private detach(frame: PageFrame): void {
    if (frame.file !== null) {
      const entry = this.files.get(frame.file);
      entry?.pages.deleteIf(frame.index, frame.pfn);
    }
    if (frame.pins > 0 || frame.filling) {
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
    this.pushFree(frame);
    this.frees++;
    if (this.events.wants('page-free')) this.events.emit({ type: 'page-free', frame });
  }

  /** A free frame, or the least recently used idle one (evicted). A dirty victim's bytes are already
   * in the file (writes go through), so evicting it drops only the cached copy; its durability stays
   * pending on the file until COMMIT or a FILE_SYNC write fsyncs it. */
  private allocFrame(): PageFrame {
    const free = this.freeList.pop();
    if (free) {
      this.freeAt[free.pfn] = -1;
      return free;
    }
    const oldest = this.lru.oldest();
    if (oldest >= 0) {
      const victim = this.frames[oldest]!;
      this.lru.delete(oldest);
      const was = { file: victim.file!, index: victim.index };
      const entry = this.files.get(was.file);
      entry?.pages.deleteIf(was.index, victim.pfn);
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
