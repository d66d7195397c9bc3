/**
 * Page fills not yet shown on a lifetime. A READ that misses fills its pages from the file before
 * the reply path pins them, so a fill is remembered per frame until the next `reply-pin` naming the
 * frame takes it (a fill mark on that reply's row of the timeline), or until the frame is unpinned
 * with no reply lent (copy mode, a failed READ): then no reply was held up by it. One slot per
 * frame, so it is bounded by the cache's size.
 */
import type { Mark } from './lifetimes.ts';

export class PendingFills {
  /** When each frame's fill began and ended (ms); NaN: no fill pending. */
  private readonly startedAt: Float64Array;
  private readonly endedAt: Float64Array;

  constructor(frames: number) {
    this.startedAt = new Float64Array(frames).fill(NaN);
    this.endedAt = new Float64Array(frames).fill(NaN);
  }

  record(pfn: number, startedAt: number, endedAt: number): void {
    if (pfn < 0 || pfn >= this.endedAt.length) return;
    this.startedAt[pfn] = startedAt;
    this.endedAt[pfn] = endedAt;
  }

  /** Forgets every fill (recording starts afresh). */
  reset(): void {
    this.endedAt.fill(NaN);
  }

  forget(pfn: number): void {
    if (pfn >= 0 && pfn < this.endedAt.length) this.endedAt[pfn] = NaN;
  }

  /** The fills pending for these frames as marks (t: the fill's end, n: its duration), oldest first; they are no longer pending. */
  take(pfns: readonly number[]): Mark[] {
    const out: Mark[] = [];
    for (const pfn of pfns) {
      const end = this.endedAt[pfn];
      if (end === undefined || Number.isNaN(end)) continue;
      out.push({ t: end, kind: 'fill', n: end - this.startedAt[pfn]! });
      this.endedAt[pfn] = NaN;
    }
    return out.sort((a, b) => a.t - b.t);
  }
}
