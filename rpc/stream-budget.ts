import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';

/** Why the server closed a stream connection (the peer closing is not counted). */
export const CLOSE_REASONS = ['framing', 'malformed', 'input-budget', 'input-pressure', 'record-timeout', 'idle', 'connection-limit'] as const;
export type CloseReason = (typeof CLOSE_REASONS)[number];

/** Limits over all stream connections of a server (named config values; server/config.ts sets them). */
export interface StreamBudgetLimits {
  /** Bytes held in partial and not-yet-executed records across all connections; past it the largest holders are closed. */
  maxBufferedTotal: number;
  /**
   * Input memory pressure (Linux's tcp_mem[1]): from this total on, a connection holding at least
   * an equal share of it (this total / connections holding input) is not read until the total
   * falls below it again, so the rest of its records waits in the kernel rather than in memory
   * that the hard limit above would throw away with the connection. Set below maxBufferedTotal by
   * a socket read or two (64 KiB each) per connection that may hold input, pressure acts first and
   * the hard limit only catches what it cannot hold; at or above it, only the hard limit acts.
   */
  bufferedPressureTotal: number;
  /**
   * Reply bytes committed across all connections: built and not yet taken by the kernel, plus a
   * reply's reserve for each call executing. Past it the connections over their share stop being read.
   */
  maxQueuedReplyBytesTotal: number;
  /** A record must complete within this long of its first byte (time spent not reading it, under backpressure, excluded). */
  recordTimeoutMs: number;
  /**
   * Under input pressure, a record waiting for room that is younger than this (ms since its first
   * byte) makes room: the connections holding a partial record older than this are closed, oldest
   * first, until the total falls below the pressure point, rather than the newcomer waiting for
   * their record time limit (a slowloris flood would otherwise stall every later client for up to
   * recordTimeoutMs). While no younger record waits, the holders are left alone.
   */
  inputPressureAgeMs: number;
  /** Stream connections open at once; a new one past it closes the one idle longest (knfsd's sv_maxconn). */
  maxConnections: number;
  /**
   * Time (ms) one turn of the event loop may spend reading stream connections and starting their
   * calls; past it the connections still reading wait for the next turn, so that replies and other
   * clients' calls get theirs (net_rx_action's netdev_budget_usecs). 0: no limit.
   */
  turnSliceMs: number;
}

export const STREAM_BUDGET_DEFAULT_LIMITS: StreamBudgetLimits = {
  maxBufferedTotal: 64 * 1024 * 1024,
  bufferedPressureTotal: 16 * 1024 * 1024,
  maxQueuedReplyBytesTotal: 128 * 1024 * 1024,
  recordTimeoutMs: 30_000,
  inputPressureAgeMs: 5_000,
  maxConnections: 1024,
  turnSliceMs: 4,
};

/** What the budget needs of one connection (RpcTcpConnection). */
export interface BudgetedStream {
  /** Memory held for input: the partial record and records read but not yet executed. */
  readonly held: number;
  readonly queuedReplyBytes: number;
  /** Queued reply bytes plus a reply's reserve per call executing: what it may soon hold. */
  readonly committedReplyBytes: number;
  readonly inflight: number;
  readonly readingPaused: boolean;
  /** Last time bytes came in or a reply went out. */
  readonly lastActive: number;
  /** Since when the connection has been waiting for the rest of a record while being read; null if not. */
  readonly partialWaitSince: number | null;
  readonly remote: string;
  /** Re-evaluates whether to read (the global reply or input budget freed up). */
  pump(): void;
  /** Reads and executes on after waiting for the next turn (turnSliceMs). */
  continueTurn(): void;
  close(reason: CloseReason): void;
}

export interface StreamBudgetStats {
  connections: number;
  pausedConnections: number;
  bufferedBytes: number;
  maxConnBufferedBytes: number;
  queuedReplyBytes: number;
  maxConnQueuedReplyBytes: number;
  inflight: number;
  maxConnInflight: number;
  /** Oldest partial record now waiting, ms. */
  oldestPartialMs: number;
  /** Oldest partial record of the connections waiting for input room now, ms (0 if none waits). */
  oldestInputWaitMs: number;
  /** Longest a connection has now gone without traffic, ms. */
  longestIdleMs: number;
  pauses: number;
  /** Connections not being read now because input is under pressure (bufferedPressureTotal). */
  inputWaitingConnections: number;
  /** Times a connection stopped being read for input pressure. */
  inputWaits: number;
  closed: Record<CloseReason, number>;
  /** Input and committed reply bytes let go by connections that closed, since start. */
  releasedBytes: number;
  /** Times a connection's reading or calls waited for the next turn (turnSliceMs). */
  turnYields: number;
  /** The longest a turn spent on stream input over about the last second, ms. */
  longestTurnMs: number;
}

/**
 * The memory and reply budget shared by every stream connection of a server (NFS and MOUNT ports
 * alike): bytes of buffered input, reply bytes queued, calls executing. Connections report their
 * changes; the budget closes the largest input holders past the global input limit, closes
 * connections whose record is late, and wakes connections paused on the global reply limit when
 * it frees up. One place holds the totals so /metrics shows them next to their limits.
 */
export class StreamBudget {
  private readonly conns = new Set<BudgetedStream>();
  private readonly pausedConns = new Set<BudgetedStream>();
  private buffered = 0;
  /** Connections holding input (held > 0): the pressure share is divided among them. */
  private holders = 0;
  private readonly inputWaiters = new Set<BudgetedStream>();
  private inputWaits = 0;
  /** A makeRoom pass is queued. */
  private roomQueued = false;
  private committed = 0;
  private committedConns = 0;
  private inflightCalls = 0;
  private pauses = 0;
  private released = 0;
  private readonly closed = Object.fromEntries(CLOSE_REASONS.map((r) => [r, 0])) as Record<CloseReason, number>;
  private timer: NodeJS.Timeout | null = null;
  /** When the current turn took its first stream input (performance.now()), and its latest; null between turns. */
  private turnStart: number | null = null;
  private turnLast = 0;
  private readonly nextTurn = new Set<BudgetedStream>();
  private turnYields = 0;
  private longestTurn = { ms: 0, at: 0 };

  constructor(
    readonly limits: StreamBudgetLimits,
    private readonly log: Logger,
    readonly now: () => number = Date.now,
    /** The fine clock turnSliceMs is measured on. */
    private readonly turnClock: () => number = () => performance.now(),
  ) {}

  add(c: BudgetedStream): void {
    if (this.conns.size >= this.limits.maxConnections) {
      // As knfsd (svc_check_conn_limits): make room by closing the connection idle longest.
      let victim: BudgetedStream | null = null;
      for (const o of this.conns) if (!victim || o.lastActive < victim.lastActive) victim = o;
      if (victim) {
        this.log.warn({ remote: victim.remote, idleMs: this.now() - victim.lastActive, limit: this.limits.maxConnections }, 'rpc: too many connections, closing the one idle longest');
        victim.close('connection-limit');
      }
    }
    this.conns.add(c);
    if (!this.timer) {
      // Record deadlines are checked on a coarse tick: a late record is closed within a quarter of its limit.
      this.timer = setInterval(() => {
        this.expireRecords();
        this.makeRoom();
      }, Math.max(10, Math.min(1000, this.limits.recordTimeoutMs / 4, this.limits.inputPressureAgeMs / 4)));
      this.timer.unref();
    }
  }

  /** The connection is gone: its input, committed replies and pause leave the totals. */
  remove(c: BudgetedStream, held: number, committed: number): void {
    if (!this.conns.delete(c)) return;
    this.pausedConns.delete(c);
    this.inputWaiters.delete(c);
    this.released += held + committed;
    this.inputChanged(held, 0);
    this.replyCommitted(committed, 0);
    if (this.conns.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  countClose(reason: CloseReason): void {
    this.closed[reason]++;
  }

  /**
   * A connection's input memory went from `before` to `after`; past the global limit, the largest
   * holders are closed; below the pressure point, connections waiting on it are read again.
   */
  inputChanged(before: number, after: number): void {
    this.buffered += after - before;
    if (before === 0 && after > 0) this.holders++;
    else if (before > 0 && after === 0) this.holders--;
    // One linear scan per victim: past the limit this runs on every chunk read, so no sorting.
    while (this.buffered > this.limits.maxBufferedTotal) {
      let victim: BudgetedStream | null = null;
      for (const c of this.conns) if (c.held > 0 && (!victim || c.held > victim.held || (c.held === victim.held && (c.partialWaitSince ?? Infinity) < (victim.partialWaitSince ?? Infinity)))) victim = c;
      if (!victim) break;
      this.log.warn({ remote: victim.remote, held: victim.held, total: this.buffered, limit: this.limits.maxBufferedTotal }, 'rpc: input budget exceeded, closing the connection holding the largest partial records');
      victim.close('input-budget');
    }
    if (this.inputWaiters.size > 0 && this.buffered < this.limits.bufferedPressureTotal) for (const c of [...this.inputWaiters]) c.pump();
  }

  /** A connection's committed reply bytes went from `before` to `after`. */
  replyCommitted(before: number, after: number): void {
    const wasOver = this.committed >= this.limits.maxQueuedReplyBytesTotal;
    this.committed += after - before;
    if (before === 0 && after > 0) this.committedConns++;
    else if (before > 0 && after === 0) this.committedConns--;
    if (wasOver && this.committed < this.limits.maxQueuedReplyBytesTotal) for (const c of [...this.pausedConns]) c.pump();
  }

  /**
   * Past the global reply limit, a connection committed to at least an equal share of it waits.
   * Calls executing count with their reserve, so a burst of calls started in one turn cannot
   * carry the total past the limit before their replies are queued; a connection holding nothing
   * may always start one call.
   */
  overReplyShare(own: number): boolean {
    return this.committed >= this.limits.maxQueuedReplyBytesTotal && own > 0 && own >= this.limits.maxQueuedReplyBytesTotal / Math.max(1, this.committedConns);
  }

  /**
   * Under input pressure, a connection holding at least an equal share of the pressure point waits
   * (it is not read); one holding less (a client whose records complete as they come) reads on.
   */
  overInputShare(held: number): boolean {
    const pressure = this.limits.bufferedPressureTotal;
    return held > 0 && this.buffered >= pressure && held >= pressure / Math.max(1, this.holders);
  }

  /** `c` stopped (or resumed) being read for input pressure. */
  inputWaiting(c: BudgetedStream, waiting: boolean): void {
    if (waiting) {
      this.inputWaits++;
      this.inputWaiters.add(c);
      // After the connection's own pump has stopped its socket: closing others pumps the waiters.
      if (!this.roomQueued) {
        this.roomQueued = true;
        queueMicrotask(() => {
          this.roomQueued = false;
          this.makeRoom();
        });
      }
    } else this.inputWaiters.delete(c);
  }

  /**
   * While a record younger than inputPressureAgeMs waits for input room, closes the connections
   * holding a partial record older than that, oldest first, until the total falls below the
   * pressure point (which reads the waiters again). Runs when a connection starts waiting and on
   * the record tick (a holder ages past the limit while the newcomer waits).
   */
  private makeRoom(): void {
    const now = this.now();
    const limit = this.limits.inputPressureAgeMs;
    let younger = false;
    for (const c of this.inputWaiters) {
      const since = c.partialWaitSince;
      if (since !== null && now - since < limit) younger = true;
    }
    if (!younger) return;
    const older: { c: BudgetedStream; since: number }[] = [];
    for (const c of this.conns) {
      const since = c.partialWaitSince;
      if (since !== null && now - since >= limit && c.held > 0) older.push({ c, since });
    }
    older.sort((a, b) => a.since - b.since);
    for (const { c, since } of older) {
      if (this.buffered < this.limits.bufferedPressureTotal) break;
      if (!this.conns.has(c)) continue;
      this.log.warn({ remote: c.remote, held: c.held, ageMs: now - since, limit }, 'rpc: input pressure, closing a connection whose partial record is older than the limit to make room for a younger one');
      c.close('input-pressure');
    }
  }

  callStarted(): void {
    this.inflightCalls++;
  }

  callEnded(): void {
    this.inflightCalls--;
  }

  paused(c: BudgetedStream, paused: boolean): void {
    if (paused) {
      this.pauses++;
      this.pausedConns.add(c);
    } else this.pausedConns.delete(c);
  }

  /**
   * Whether this turn of the event loop has spent its slice (turnSliceMs) on stream input; the
   * first call of a turn starts the turn's clock, which a setImmediate (right after the poll phase
   * that reads sockets) stops.
   */
  sliceSpent(): boolean {
    const slice = this.limits.turnSliceMs;
    if (slice === 0) return false;
    const now = this.turnClock();
    if (this.turnStart === null) {
      this.turnStart = now;
      setImmediate(this.endTurn);
    }
    this.turnLast = now;
    return now - this.turnStart >= slice;
  }

  /** `c` stops here for this turn: its continueTurn() runs at the next. */
  yieldTurn(c: BudgetedStream): void {
    if (this.nextTurn.has(c)) return;
    this.nextTurn.add(c);
    this.turnYields++;
  }

  /** Whether `c` waits for the next turn (its socket stays paused until then). */
  waitsForTurn(c: BudgetedStream): boolean {
    return this.nextTurn.has(c);
  }

  private readonly endTurn = (): void => {
    const ms = this.turnLast - (this.turnStart ?? this.turnLast);
    if (ms >= this.longestTurn.ms || this.turnLast - this.longestTurn.at > 1000) this.longestTurn = { ms, at: this.turnLast };
    this.turnStart = null;
    const waiting = [...this.nextTurn];
    this.nextTurn.clear();
    for (const c of waiting) if (this.conns.has(c)) c.continueTurn();
  };

  /** Closes connections whose partial record has waited past the record time limit. */
  expireRecords(): void {
    const now = this.now();
    // A Set may lose the entry just visited while iterating it: no copy of every connection per tick.
    for (const c of this.conns) {
      const since = c.partialWaitSince;
      if (since === null || now - since <= this.limits.recordTimeoutMs) continue;
      this.log.warn({ remote: c.remote, held: c.held, waitedMs: now - since, limit: this.limits.recordTimeoutMs }, 'rpc: record not completed in time, closing connection');
      c.close('record-timeout');
    }
  }

  stats(): StreamBudgetStats {
    const now = this.now();
    let maxHeld = 0;
    let queued = 0;
    let maxQueued = 0;
    let maxInflight = 0;
    let oldest = 0;
    let oldestWait = 0;
    let idle = 0;
    for (const c of this.conns) {
      idle = Math.max(idle, now - c.lastActive);
      maxHeld = Math.max(maxHeld, c.held);
      queued += c.queuedReplyBytes;
      maxQueued = Math.max(maxQueued, c.queuedReplyBytes);
      maxInflight = Math.max(maxInflight, c.inflight);
      if (c.partialWaitSince !== null) oldest = Math.max(oldest, now - c.partialWaitSince);
    }
    for (const c of this.inputWaiters) if (c.partialWaitSince !== null) oldestWait = Math.max(oldestWait, now - c.partialWaitSince);
    return {
      connections: this.conns.size,
      pausedConnections: this.pausedConns.size,
      bufferedBytes: this.buffered,
      maxConnBufferedBytes: maxHeld,
      queuedReplyBytes: queued,
      maxConnQueuedReplyBytes: maxQueued,
      inflight: this.inflightCalls,
      maxConnInflight: maxInflight,
      oldestPartialMs: oldest,
      oldestInputWaitMs: oldestWait,
      longestIdleMs: idle,
      pauses: this.pauses,
      inputWaitingConnections: this.inputWaiters.size,
      inputWaits: this.inputWaits,
      closed: { ...this.closed },
      releasedBytes: this.released,
      turnYields: this.turnYields,
      longestTurnMs: this.turnClock() - this.longestTurn.at > 1000 ? 0 : this.longestTurn.ms,
    };
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
