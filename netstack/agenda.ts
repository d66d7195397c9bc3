import { Timer, type Clock } from './clock.ts';
import { DueHeap, dueBefore } from './heap.ts';

interface Entry<T> {
  at: number;
  order: number;
  item: T;
}

/**
 * Things due at given times, run by one handler, on at most one clock timer at a time: items
 * due now go out in one deferred batch (one setImmediate per turn on the real clock, not one
 * timer per packet); later ones share a single timer armed for the earliest.
 *
 * Items due at once (the fault-free fast path) skip the heap: they wait in a FIFO, which is
 * ordered by (at, order) by construction, and a flush merges it with the heap.
 */
export class Agenda<T> {
  private readonly heap = new DueHeap<Entry<T>>();
  private fifo: Entry<T>[] = [];
  private fifoHead = 0;
  private order = 0;
  private flushQueued = false;
  private readonly timer: Timer;
  private readonly flush = (): void => {
    this.flushQueued = false;
    const now = this.clock.now();
    for (;;) {
      const top = this.heap.peek();
      const first = this.fifoHead < this.fifo.length ? this.fifo[this.fifoHead]! : undefined;
      if (first !== undefined && (top === undefined || !dueBefore(top, first))) {
        this.fifoHead++;
        this.run(first.item);
        continue;
      }
      if (top === undefined || top.at > now) break;
      this.heap.pop();
      this.run(top.item);
    }
    this.fifo = [];
    this.fifoHead = 0;
    this.rearm();
  };

  constructor(
    private readonly clock: Clock,
    private readonly run: (item: T) => void,
  ) {
    this.timer = new Timer(clock, this.flush);
  }

  get size(): number {
    return this.heap.size + this.fifo.length - this.fifoHead;
  }

  /** Every pending item, in no particular order. */
  items(): T[] {
    const out = this.heap.items.map((e) => e.item);
    for (let i = this.fifoHead; i < this.fifo.length; i++) out.push(this.fifo[i]!.item);
    return out;
  }

  /** Removes every pending item (returned, in no particular order) and stops the timer. */
  clear(): T[] {
    const out = this.items();
    this.heap.items.length = 0;
    this.fifo = [];
    this.fifoHead = 0;
    this.timer.stop();
    return out;
  }

  schedule(at: number, item: T): void {
    const now = this.clock.now();
    const entry = { at, order: this.order++, item };
    if (at <= now) {
      this.fifo.push(entry);
      if (!this.flushQueued) {
        this.flushQueued = true;
        this.timer.cancel();
        this.clock.defer(this.flush);
      }
      return;
    }
    this.heap.push(entry);
    const top = this.heap.peek()!;
    if (!this.flushQueued && (!this.timer.armed || top.at < this.timer.expires)) this.timer.arm(top.at - now);
  }

  private rearm(): void {
    if (this.flushQueued) return;
    const top = this.heap.peek();
    if (!top) {
      this.timer.cancel();
      return;
    }
    const delay = top.at - this.clock.now();
    if (delay <= 0) {
      this.flushQueued = true;
      this.clock.defer(this.flush);
    } else {
      this.timer.arm(delay);
    }
  }
}
