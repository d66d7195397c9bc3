/**
 * Every netstack timer goes through a Clock: real (Node timers) or virtual (advanced by hand,
 * deterministic). `defer` runs a callback soon, after the current work, batching the deferred
 * callbacks of one run of work together (on the real clock: a microtask, then setImmediate).
 */
import { DueHeap } from './heap.ts';

export interface TimerHandle {
  readonly at: number;
}

export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  setTimer(delayMs: number, fn: () => void): TimerHandle;
  clearTimer(handle: TimerHandle): void;
  /** Runs `fn` after the current call stack, in FIFO order with other deferred callbacks. */
  defer(fn: () => void): void;
}

export class ClockError extends Error {
  override readonly name = 'ClockError';
}

interface VirtualTimer extends TimerHandle {
  readonly at: number;
  readonly order: number;
  fn: (() => void) | null;
}

/**
 * A clock that only moves when told to. Timers due at the same instant run in the order they
 * were set; deferred callbacks are timers due now.
 */
export class VirtualClock implements Clock {
  private t: number;
  private order = 0;
  private readonly heap = new DueHeap<VirtualTimer>();

  constructor(start = 0) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    const timer: VirtualTimer = { at: this.t + Math.max(0, delayMs), order: this.order++, fn };
    this.heap.push(timer);
    return timer;
  }

  clearTimer(handle: TimerHandle): void {
    (handle as VirtualTimer).fn = null;
  }

  defer(fn: () => void): void {
    this.setTimer(0, fn);
  }

  /** Pending (not cancelled) timers. */
  get pending(): number {
    let n = 0;
    for (const t of this.heap.items) if (t.fn) n++;
    return n;
  }

  /** Moves time forward by `ms`, running every timer that falls due, each at its own instant. */
  advance(ms: number): void {
    const until = this.t + ms;
    for (;;) {
      const top = this.heap.peek();
      if (!top || top.at > until) break;
      this.runTop();
    }
    this.t = until;
  }

  /**
   * Runs timers until none is left. A stack that never goes idle (a persist timer probing a
   * window nobody opens) would loop forever, so give up after `maxMs` of virtual time or
   * `maxTimers` callbacks and report where it stood.
   */
  runUntilIdle(opts: { maxMs?: number; maxTimers?: number } = {}): void {
    const deadline = this.t + (opts.maxMs ?? 24 * 3600_000);
    const maxTimers = opts.maxTimers ?? 10_000_000;
    let ran = 0;
    for (let top = this.heap.peek(); top !== undefined; top = this.heap.peek()) {
      if (top.at > deadline) throw new ClockError(`virtual clock not idle after ${opts.maxMs ?? 86_400_000} ms (t=${this.t}, ${this.pending} timers pending)`);
      if (this.runTop() && ++ran > maxTimers) throw new ClockError(`virtual clock not idle after ${maxTimers} timers (t=${this.t})`);
    }
  }

  /** Pops the earliest timer and runs it; false if it had been cancelled. */
  private runTop(): boolean {
    const top = this.heap.pop()!;
    if (top.at > this.t) this.t = top.at;
    const fn = top.fn;
    if (!fn) return false;
    top.fn = null;
    fn();
    return true;
  }
}

interface RealTimer extends TimerHandle {
  timeout: NodeJS.Timeout;
}

/**
 * Node timers. `defer` batches callbacks and runs the batch as soon as the current work is done (a
 * microtask): a reply's first hop through the model (the device queue) runs in the turn that made
 * it, as Linux runs the softirq a transmit raised when bottom halves are enabled again. What that
 * batch defers in turn (the wire, the receiver's ACK…) waits for setImmediate, which still runs in
 * this turn of the event loop when the call was read from a socket (the check phase follows the
 * poll phase), and lets the loop read its sockets between the hops of a long chain, as Linux hands
 * softirq work that keeps coming to ksoftirqd. A setImmediate for the first hop too cost every call
 * a turn: the second hop, scheduled from the check phase, waited for the next one (an `epoll_wait`
 * between a call's last syscall and its reply's `writev`). Running every hop as a microtask
 * instead cost a 1 MiB READ's long chain more CPU than it saved (depth 1: ~1,250 against
 * ~1,650 MiB/s in alternated runs).
 */
export class RealClock implements Clock {
  private readonly origin = performance.now();
  private deferred: (() => void)[] = [];
  /** A batch runs as a microtask now: what it defers goes to setImmediate. */
  private inMicrotask = false;
  private readonly flush = (): void => {
    const batch = this.deferred;
    this.deferred = [];
    for (const fn of batch) fn();
  };
  private readonly flushNow = (): void => {
    this.inMicrotask = true;
    try {
      this.flush();
    } finally {
      this.inMicrotask = false;
    }
  };

  /** The time read first in the current run of synchronous work, until the next microtask (−1: none). */
  private cached = -1;
  private readonly expire = (): void => {
    this.cached = -1;
  };

  /**
   * Read once per run of synchronous work, as Linux's TCP reads its clock once per batch
   * (`tcp_mstamp_refresh`): a READ's sendpage of 256 pages, its skbs and their events share one
   * reading, where each used to call performance.now().
   */
  now(): number {
    if (this.cached < 0) {
      this.cached = performance.now() - this.origin;
      queueMicrotask(this.expire);
    }
    return this.cached;
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    const timer: RealTimer = { at: this.now() + delayMs, timeout: setTimeout(fn, Math.max(0, delayMs)) };
    return timer;
  }

  clearTimer(handle: TimerHandle): void {
    clearTimeout((handle as RealTimer).timeout);
  }

  defer(fn: () => void): void {
    if (this.deferred.length === 0) {
      if (this.inMicrotask) setImmediate(this.flush);
      else queueMicrotask(this.flushNow);
    }
    this.deferred.push(fn);
  }
}

/**
 * A re-armable one-shot timer (sk_reset_timer). Re-arming later than the pending expiry does
 * not touch the clock: the pending callback notices the new deadline and re-arms itself, so a
 * timer pushed forward on every ACK costs no setTimeout/clearTimeout pair per ACK.
 */
export class Timer {
  private handle: TimerHandle | null = null;
  private deadline = Infinity;
  private readonly expire = (): void => {
    this.handle = null;
    if (this.deadline === Infinity) return;
    const left = this.deadline - this.clock.now();
    if (left > 0) {
      this.handle = this.clock.setTimer(left, this.expire);
      return;
    }
    this.deadline = Infinity;
    this.fn();
  };

  constructor(
    private readonly clock: Clock,
    private readonly fn: () => void,
  ) {}

  get armed(): boolean {
    return this.deadline !== Infinity;
  }

  get expires(): number {
    return this.deadline;
  }

  /** Fires `fn` at now + delayMs (replacing any pending expiry). */
  arm(delayMs: number): void {
    this.deadline = this.clock.now() + delayMs;
    if (this.handle && this.handle.at <= this.deadline) return;
    if (this.handle) this.clock.clearTimer(this.handle);
    this.handle = this.clock.setTimer(delayMs, this.expire);
  }

  /**
   * Nothing fires until the next arm. The clock's timer is left to expire unheeded, as Linux's
   * inet_csk_clear_xmit_timer leaves sk_timer pending: an RTO timer cleared by every ACK and armed
   * by every send costs no setTimeout/clearTimeout pair per round trip.
   */
  cancel(): void {
    this.deadline = Infinity;
  }

  /** Cancels and gives the clock's timer back at once (sk_stop_timer): the connection is going away. */
  stop(): void {
    this.cancel();
    if (this.handle) this.clock.clearTimer(this.handle);
    this.handle = null;
  }
}
