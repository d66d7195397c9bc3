/**
 * The page-cache grid as the dashboard draws it: one character per frame, in pfn order, so a
 * 16384-page cache is a 16 KiB string in a snapshot and a delta carries only changed cells.
 */
import type { FrameState, PageCache } from '../pagecache/page-cache.ts';

/** A frame's state as shown: the cache's own, or orphaned by the pin budget (set by the reply path). */
export type GridState = FrameState | 'orphan';

export const GRID_CODES: Readonly<Record<GridState, string>> = Object.freeze({
  free: '.',
  clean: 'c',
  dirty: 'd',
  pinned: 'p',
  cow: 'w',
  orphan: 'o',
  filling: 'f',
});

export class PageGrid {
  /** Frames whose last pin ended by the pin budget orphaning it; cleared by the frame's next cache event. */
  private readonly orphaned = new Set<number>();
  /**
   * Changed frames: a flag per frame plus a list of the flagged ones. Every page event of every
   * READ lands here, so this is a typed-array append, not a Set insertion.
   */
  private readonly isChanged: Uint8Array;
  private readonly changed: Uint32Array;
  private nChanged = 0;
  /** full()'s bytes, reused. */
  private readonly fullBytes: Buffer;

  constructor(private readonly cache: PageCache) {
    this.fullBytes = Buffer.alloc(cache.size);
    this.isChanged = new Uint8Array(cache.size);
    this.changed = new Uint32Array(cache.size);
  }

  private mark(pfn: number): void {
    if (this.isChanged[pfn] === 1) return;
    this.isChanged[pfn] = 1;
    this.changed[this.nChanged++] = pfn;
  }

  code(pfn: number): string {
    if (this.orphaned.has(pfn)) return GRID_CODES.orphan;
    return GRID_CODES[this.cache.stateOf(this.cache.frames[pfn]!)];
  }

  state(pfn: number): GridState {
    return this.orphaned.has(pfn) ? 'orphan' : this.cache.stateOf(this.cache.frames[pfn]!);
  }

  /** The frame may look different now. Bounded: one entry per frame at most. */
  touch(pfn: number): void {
    if (pfn >= 0 && pfn < this.cache.size) this.mark(pfn);
  }

  /** A page event: the frame starts a new life, so an orphan marking ends. */
  renew(pfn: number): void {
    this.orphaned.delete(pfn);
    this.touch(pfn);
  }

  markOrphaned(pfn: number): void {
    if (pfn < 0 || pfn >= this.cache.size) return;
    this.orphaned.add(pfn);
    this.mark(pfn);
  }

  /** Drops every orphan marking (nothing renews them while lifetimes are not recorded). */
  clearOrphaned(): void {
    for (const pfn of this.orphaned) this.mark(pfn);
    this.orphaned.clear();
  }

  /**
   * The whole grid. Written as bytes and made one string: appending 16384 one-character strings
   * left as many cons-strings for the collector, ~0.5 MB per state snapshot.
   */
  full(): string {
    const b = this.fullBytes;
    for (let pfn = 0; pfn < b.length; pfn++) b[pfn] = this.code(pfn).charCodeAt(0);
    return b.toString('latin1');
  }

  /** Cells changed since the last drain as [pfn, code] pairs, or the whole grid when there are more than `max`. */
  drain(max: number): { cells: [number, string][] } | { grid: string } {
    const list = this.changed.subarray(0, this.nChanged);
    const out = this.nChanged > max ? { grid: this.full() } : { cells: Array.from(list, (pfn): [number, string] => [pfn, this.code(pfn)]) };
    for (const pfn of list) this.isChanged[pfn] = 0;
    this.nChanged = 0;
    return out;
  }
}
