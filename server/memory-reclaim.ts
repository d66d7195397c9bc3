/**
 * Gives memory back once load has passed. V8 collects its old generation when its own allocation
 * limits say so, and counts the 64 KiB socket-read buffers of closed connections only as external
 * memory: after an overload the process keeps a heap several times its live size, and freed
 * buffers wait for a collection that a quiet server may not run for a long time. So, checked on a
 * timer: when the process's heap and array buffers have grown by `growthBytes` since the last
 * collection prompted here, or closed connections let go of that many bytes of input and replies
 * (garbage that memoryUsage() cannot tell from the live bytes it was), and the server has been
 * quiet for `quietMs` — no RPC call came in and the event loop was almost idle: the load is over,
 * and a full collection's pause (14–43 ms measured) delays nobody's call — a full collection runs.
 * While any client is calling, V8's own collections take care of the heap.
 *
 * Not at the first quiet check: a full collection while no call is in flight also throws away the
 * code V8 compiled for the call path. Optimised code refers weakly to objects of the calls it was
 * made for, and none of them is alive then: ~140 functions deoptimised at once (`--trace-deopt`,
 * "weak objects"), Node's own `fs.Stats` and timers among them; `--retain-maps-for-n-gc` does not
 * keep them. The next calls run unoptimised until V8 has compiled them again, which takes a few
 * thousand calls: 2,000 CREATEs after such a collection made 1,900–2,700 calls a second instead of
 * 6,200–7,100. So it waits out a client's pauses between bursts (a benchmark's other server, a
 * build's next step, a user reading a listing): a loaded server's memory comes back half a minute
 * after the load, as Linux lets dirty pages age 30 s before writing them back, and its code is
 * lost only to a pause longer than that.
 */
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Logger } from 'pino';
import { Exposition } from './telemetry/exposition.ts';

export interface MemoryReclaimLimits {
  /** How often the condition is checked, ms (0: never). */
  checkMs: number;
  /**
   * Event-loop utilization over the last check (0–1) at or below which the server counts as idle.
   * Low: a full collection of a grown heap pauses the loop for tens of ms (143 ms measured after a
   * greedy client, on a loaded machine), so it waits until almost nothing is being served.
   */
  quietUtilization: number;
  /** How long the server must have been quiet (every check over it), ms. */
  quietMs: number;
  /** Growth of V8's heap plus array buffers, or bytes let go by closed connections, since the last prompted collection that make one worth it. */
  growthBytes: number;
}

export const MEMORY_RECLAIM_DEFAULTS: Readonly<MemoryReclaimLimits> = Object.freeze({ checkMs: 500, quietUtilization: 0.05, quietMs: 30_000, growthBytes: 32 * 2 ** 20 });

/**
 * How far V8's old generation may grow after each full collection, in percent of what survived
 * (V8's --heap-growing-percent; 0: V8's own factor). See `configureHeapGrowth`.
 */
export const HEAP_GROWING_PERCENT_DEFAULT = 100;

/**
 * Fixes how far V8 lets the old generation grow after a full collection, as Linux keeps its
 * watermarks apart (watermark_scale_factor) so that kswapd, woken at the low one, reclaims up to
 * the high one and sleeps instead of running on every allocation.
 * V8's own factor comes from the old-generation allocation rate it measured before the collection:
 * a collection on a quiet server (V8's memory reducer 8 s after the last one, or the one prompted
 * here), or during a load that allocates little in the old generation (1 MiB WRITEs: their socket
 * buffers die young), gets the smallest, 1.1. The next limit is then the live heap + 8 MiB + the
 * young generation's capacity, and V8 starts marking as soon as less than that capacity is left,
 * counting the array buffers allocated since the collection: every ~8 MiB of socket reads. Marking
 * the page cache's frame objects (~44 MiB of heap with the default cache) took ~25 ms each time,
 * back to back: sequential WRITEs ran at 155–390 MiB/s instead of 420–1,000 until the server
 * restarted (README, "Performance"). Doubling what survived keeps the limit above a young
 * generation's worth of buffers for any heap over 32 MiB.
 */
export function configureHeapGrowth(percent: number): void {
  v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
}

/** What a prompted collection is measured by: V8's committed heap and the array buffers it holds. */
function footprint(): number {
  const m = process.memoryUsage();
  return m.heapTotal + m.arrayBuffers;
}

let gcFunction: (() => void) | null = null;

/** V8's gc() without starting node with --expose-gc: the flag, then a fresh context that has it. */
function fullGc(): void {
  if (!gcFunction) {
    v8.setFlagsFromString('--expose-gc');
    gcFunction = vm.runInNewContext('gc') as () => void;
  }
  gcFunction();
}

export class MemoryReclaimer {
  /** Collections prompted so far, and the pause of the latest (ms). */
  reclaims = 0;
  lastPauseMs = 0;
  private baseline = footprint();
  private releasedMark: number;
  private callsMark: number;
  private elu: EventLoopUtilization = performance.eventLoopUtilization();
  /** performance.now() of the last check, and since when every check found the server quiet. */
  private checkedAt = performance.now();
  private quietSince: number | null = null;
  private readonly timer: NodeJS.Timeout | null;

  /**
   * `released`: bytes closed connections let go of so far (the stream budget's count); `calls`:
   * RPC calls received so far (the dispatcher's count).
   */
  constructor(
    private readonly limits: MemoryReclaimLimits,
    private readonly log: Logger,
    private readonly released: () => number = () => 0,
    private readonly calls: () => number = () => 0,
  ) {
    this.releasedMark = released();
    this.callsMark = calls();
    this.timer = limits.checkMs > 0 ? setInterval(() => this.check(), limits.checkMs).unref() : null;
  }

  /** One check (the timer's); true when it collected. */
  check(): boolean {
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, this.elu).utilization;
    this.elu = now;
    const before = footprint();
    // Memory that went down by itself (V8's own reducer) lowers the mark growth is measured from.
    this.baseline = Math.min(this.baseline, before);
    const released = this.released();
    const calls = this.calls();
    const called = calls !== this.callsMark;
    this.callsMark = calls;
    const at = performance.now();
    const since = this.checkedAt;
    this.checkedAt = at;
    if (called || busy > this.limits.quietUtilization) {
      this.quietSince = null;
      return false;
    }
    this.quietSince ??= since;
    if (at - this.quietSince < this.limits.quietMs) return false;
    if (before - this.baseline < this.limits.growthBytes && released - this.releasedMark < this.limits.growthBytes) return false;
    const t = performance.now();
    fullGc();
    this.lastPauseMs = performance.now() - t;
    // Array buffers are freed by a background sweep after the pause: the mark settles at their
    // new level through the minimum above, at the next checks.
    this.baseline = footprint();
    this.releasedMark = released;
    this.reclaims++;
    // Its own pause is not load: the next check measures from here.
    this.elu = performance.eventLoopUtilization();
    this.log.info({ component: 'memory', pauseMs: Math.round(this.lastPauseMs), beforeMiB: Math.round(before / 2 ** 20) }, 'quiet after growth: full garbage collection');
    return true;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

/** /metrics for the reclaimer: collections prompted and the latest one's pause. */
export function reclaimExposition(r: MemoryReclaimer): string {
  return new Exposition()
    .counter('pagelife_memory_reclaims_total', 'Full garbage collections prompted once the server went quiet after its memory grew.', [{ value: r.reclaims }])
    .gauge('pagelife_memory_reclaim_last_pause_seconds', 'Pause of the latest prompted collection.', [{ value: r.lastPauseMs / 1000 }])
    .text();
}
