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
  private readonly changed = new Set<number>();

  constructor(private readonly cache: PageCache) {}

  code(pfn: number): string {
    if (this.orphaned.has(pfn)) return GRID_CODES.orphan;
    return GRID_CODES[this.cache.stateOf(this.cache.frames[pfn]!)];
  }

  state(pfn: number): GridState {
    return this.orphaned.has(pfn) ? 'orphan' : this.cache.stateOf(this.cache.frames[pfn]!);
  }

  /** The frame may look different now. Bounded: one entry per frame at most. */
  touch(pfn: number): void {
    if (pfn >= 0 && pfn < this.cache.size) this.changed.add(pfn);
  }

  /** A page event: the frame starts a new life, so an orphan marking ends. */
  renew(pfn: number): void {
    this.orphaned.delete(pfn);
    this.touch(pfn);
  }

  markOrphaned(pfn: number): void {
    if (pfn < 0 || pfn >= this.cache.size) return;
    this.orphaned.add(pfn);
    this.changed.add(pfn);
  }

  full(): string {
    let s = '';
    for (let pfn = 0; pfn < this.cache.size; pfn++) s += this.code(pfn);
    return s;
  }

  /** Cells changed since the last drain as [pfn, code] pairs, or the whole grid when there are more than `max`. */
  drain(max: number): { cells: [number, string][] } | { grid: string } {
    const out = this.changed.size > max ? { grid: this.full() } : { cells: [...this.changed].map((pfn): [number, string] => [pfn, this.code(pfn)]) };
    this.changed.clear();
    return out;
  }
}
