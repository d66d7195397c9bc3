/**
 * The dashboard's live stream. Every tick one telemetry delta is serialized once and offered to
 * each client. A client that does not keep up (its socket's `bufferedAmount` over the bound) gets
 * nothing sent; its deltas wait in a bounded queue, and when that overflows the oldest are dropped
 * and counted — the client is then owed a fresh snapshot instead of the lost deltas. So a stalled
 * browser costs at most its queue bound plus its socket bound, and never slows the server: no
 * send ever waits.
 */
import type { Logger } from 'pino';

export interface EventStreamLimits {
  /** Time between deltas, ms. */
  intervalMs: number;
  /** Deltas queued for one slow client. */
  maxQueuedBatches: number;
  /** Bytes of deltas queued for one slow client. */
  maxQueuedBytes: number;
  /** A client whose socket has more than this unsent is left alone until it drains. */
  maxSocketBufferedBytes: number;
  /** Connected dashboards; more are refused. */
  maxClients: number;
}

export const DEFAULT_EVENT_STREAM_LIMITS: Readonly<EventStreamLimits> = Object.freeze({
  intervalMs: 100,
  maxQueuedBatches: 32,
  maxQueuedBytes: 1 << 20,
  maxSocketBufferedBytes: 256 << 10,
  maxClients: 32,
});

/** WebSocket close code "try again later" (RFC 6455 registry). */
const CLOSE_TRY_AGAIN_LATER = 1013;
const OPEN = 1;

/** The part of a `ws` WebSocket the stream uses. */
export interface StreamSocket {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface StreamSource {
  snapshot(): unknown;
  delta(): unknown;
}

interface Client {
  socket: StreamSocket;
  queue: string[];
  queuedBytes: number;
  /** Deltas this client never got (reported to it in every message). */
  dropped: number;
  /** Deltas were dropped: the next message must be a snapshot. */
  resync: boolean;
}

export interface EventStreamStats {
  clients: number;
  deltas: number;
  sent: number;
  dropped: number;
  snapshots: number;
  refused: number;
  /** Longest queue of any client now. */
  maxQueued: number;
  maxQueuedBytes: number;
  /** Most bytes any client's socket has unsent now. */
  maxSocketBuffered: number;
}

export class EventStream {
  readonly limits: Readonly<EventStreamLimits>;
  private readonly clients = new Map<StreamSocket, Client>();
  private timer: NodeJS.Timeout | null = null;
  /**
   * The snapshot serialized since the last tick, shared by every client that needs one before the
   * next: the next delta carries all changes since the last tick, so it completes any of them, and
   * dashboards opened together (or resyncing together) cost one serialization, not one each.
   */
  private snapshotBody: string | null = null;
  private readonly counts = { deltas: 0, sent: 0, dropped: 0, snapshots: 0, refused: 0 };

  constructor(
    private readonly source: StreamSource,
    private readonly log: Logger,
    limits: Partial<EventStreamLimits> = {},
    /** false: the owner calls `tick()` (tests). */
    private readonly autoTick = true,
  ) {
    this.limits = Object.freeze({ ...DEFAULT_EVENT_STREAM_LIMITS, ...limits });
  }

  /** A new dashboard: a snapshot now, then deltas. */
  add(socket: StreamSocket): void {
    if (this.clients.size >= this.limits.maxClients) {
      this.counts.refused++;
      this.log.warn({ clients: this.clients.size }, 'dashboard stream: too many clients, refusing one');
      socket.close(CLOSE_TRY_AGAIN_LATER, 'too many dashboard clients');
      return;
    }
    const c: Client = { socket, queue: [], queuedBytes: 0, dropped: 0, resync: true };
    this.clients.set(socket, c);
    this.flush(c);
    if (this.autoTick && !this.timer) {
      this.timer = setInterval(() => this.tick(), this.limits.intervalMs);
      this.timer.unref();
    }
  }

  remove(socket: StreamSocket): void {
    this.clients.delete(socket);
    if (this.clients.size === 0) {
      // No ticks until the next client: its snapshot must be its own.
      this.snapshotBody = null;
      if (this.timer) clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** The client asked for a snapshot (it saw deltas omit lifetimes). */
  resync(socket: StreamSocket): void {
    const c = this.clients.get(socket);
    if (!c) return;
    c.resync = true;
    this.flush(c);
  }

  /** One delta to every client (or to its queue). */
  tick(): void {
    if (this.clients.size === 0) return;
    this.snapshotBody = null;
    const body = JSON.stringify(this.source.delta());
    this.counts.deltas++;
    for (const c of this.clients.values()) {
      c.queue.push(body);
      c.queuedBytes += body.length;
      while (c.queue.length > this.limits.maxQueuedBatches || c.queuedBytes > this.limits.maxQueuedBytes) {
        c.queuedBytes -= c.queue.shift()!.length;
        c.dropped++;
        c.resync = true;
        this.counts.dropped++;
      }
      this.flush(c);
    }
  }

  stats(): EventStreamStats {
    let maxQueued = 0;
    let maxQueuedBytes = 0;
    let maxSocketBuffered = 0;
    for (const c of this.clients.values()) {
      maxQueued = Math.max(maxQueued, c.queue.length);
      maxQueuedBytes = Math.max(maxQueuedBytes, c.queuedBytes);
      maxSocketBuffered = Math.max(maxSocketBuffered, c.socket.bufferedAmount);
    }
    return { clients: this.clients.size, ...this.counts, maxQueued, maxQueuedBytes, maxSocketBuffered };
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const c of this.clients.values()) c.socket.close(1001, 'server closing');
    this.clients.clear();
  }

  private writable(c: Client): boolean {
    return c.socket.readyState === OPEN && c.socket.bufferedAmount <= this.limits.maxSocketBufferedBytes;
  }

  private flush(c: Client): void {
    if (!this.writable(c)) return;
    if (c.resync) {
      // A snapshot carries everything the queued (or dropped) deltas would have: discard them.
      c.queue = [];
      c.queuedBytes = 0;
      c.resync = false;
      this.counts.snapshots++;
      this.snapshotBody ??= JSON.stringify(this.source.snapshot());
      c.socket.send(`{"type":"snapshot","dropped":${c.dropped},"state":${this.snapshotBody}}`);
      return;
    }
    while (c.queue.length > 0 && this.writable(c)) {
      const body = c.queue.shift()!;
      c.queuedBytes -= body.length;
      this.counts.sent++;
      c.socket.send(`{"type":"delta","dropped":${c.dropped},"delta":${body}}`);
    }
  }
}
