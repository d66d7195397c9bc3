import type net from 'node:net';
import type { Dispatcher, TransportInfo } from './dispatch.ts';
import { RecordError } from './errors.ts';
import { RecordDecoder, type RpcRecord } from './record.ts';
import type { ReplySink } from './reply-sink.ts';
import type { BudgetedStream, CloseReason, StreamBudget } from './stream-budget.ts';

/** Per-connection limits (named config values; server/config.ts sets them). */
export interface StreamLimits {
  /** Largest RPC record accepted; a larger one closes the connection. */
  maxRecord: number;
  /** Calls executing at once per connection; reading pauses at it. */
  maxInflight: number;
  /** Reply bytes built and not yet taken by the kernel (or reserved by calls executing), per connection; reading pauses at it (a client that does not read). */
  maxQueuedReplyBytes: number;
  /** A connection with no traffic either way for this long is closed (0: never). */
  idleTimeoutMs: number;
  /**
   * Reply bytes each executing call reserves against maxQueuedReplyBytes until its reply is built
   * (knfsd's xpt_reserved: sv_max_mesg per request, svc_reserve once the size is known), so calls
   * started together cannot overshoot the queue limit. The largest READ reply (rtmax, 1 MiB).
   */
  replyReserveBytes: number;
}

/**
 * Linux's client drops an idle connection after 5 minutes (XS_IDLE_DISC_TO); knfsd ages out
 * connections unused for a 6-minute period (svc_conn_age_period), so the client always closes first
 * and never finds its connection reset under an in-flight call. The same 6 minutes here.
 */
export const STREAM_DEFAULT_LIMITS: StreamLimits = {
  maxRecord: 2 * 1024 * 1024,
  maxInflight: 64,
  maxQueuedReplyBytes: 16 * 1024 * 1024,
  idleTimeoutMs: 6 * 60 * 1000,
  replyReserveBytes: 1024 * 1024,
};

/** The record mark that precedes each reply on the wire. */
const MARK_BYTES = 4;

/**
 * One ONC RPC stream connection: records are decoded, executed and answered, and the socket is
 * read only while the connection is within its limits. Like knfsd, which takes no request from a
 * transport without send-buffer space for its reply (svc_tcp_has_wspace), a connection whose
 * replies are not being taken — queued reply bytes or calls executing at their limit — stops
 * being read: records already read wait, the socket is paused, and the client's own TCP window
 * closes. It resumes as replies leave.
 */
export class RpcTcpConnection implements BudgetedStream {
  private readonly decoder: RecordDecoder;
  /** Records read and not yet executed (at most what one read brought past the limits). */
  private readonly pending: RpcRecord[] = [];
  private pendingBytes = 0;
  /** Input memory as last reported to the budget. */
  private reported = 0;
  private closed = false;
  inflight = 0;
  queuedReplyBytes = 0;
  /** Not read for backpressure (replies not taken, calls at their limit): the record clock stops. */
  readingPaused = false;
  /** Not read because input is under pressure and this connection holds its share of it. */
  private inputWaiting = false;
  /** The socket is paused, for either of the above or until the next turn. */
  private socketStopped = false;
  /** When reading last resumed: a record's clock does not run while the server is not reading it. */
  private readingSince: number;
  /** Last time bytes came in or a reply went out. */
  lastActive: number;

  constructor(
    private readonly socket: net.Socket,
    readonly info: TransportInfo,
    private readonly sink: ReplySink,
    private readonly limits: StreamLimits,
    private readonly budget: StreamBudget,
    private readonly dispatcher: Dispatcher,
  ) {
    this.decoder = new RecordDecoder(limits.maxRecord, budget.now);
    this.readingSince = budget.now();
    this.lastActive = this.readingSince;
    budget.add(this);
    if (limits.idleTimeoutMs > 0) socket.setTimeout(limits.idleTimeoutMs, () => this.close('idle'));
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (e) => info.log.debug({ err: e.message }, 'rpc: socket error'));
    socket.on('close', () => {
      this.release();
      sink.close();
    });
  }

  get remote(): string {
    return `${this.info.remoteAddress}:${this.info.remotePort}`;
  }

  get committedReplyBytes(): number {
    return this.queuedReplyBytes + this.inflight * this.limits.replyReserveBytes;
  }

  get held(): number {
    return this.decoder.retained + this.pendingBytes;
  }

  get partialWaitSince(): number | null {
    const since = this.decoder.partialSince;
    if (since === null || this.readingPaused || this.closed) return null;
    return Math.max(since, this.readingSince);
  }

  close(reason: CloseReason): void {
    if (this.closed) return;
    this.budget.countClose(reason);
    if (reason === 'idle') this.info.log.info('rpc: idle connection closed');
    this.release();
    this.socket.destroy();
  }

  /**
   * Executes waiting records while within the limits and this turn's slice, then reads on or
   * pauses accordingly (records left for the next turn wait without counting as backpressure).
   */
  pump(): void {
    let yielded = false;
    while (this.pending.length > 0 && !this.closed && !this.mustWait()) {
      if (this.budget.sliceSpent()) {
        this.budget.yieldTurn(this);
        yielded = true;
        break;
      }
      const rec = this.pending.shift()!;
      this.pendingBytes -= rec.length;
      this.execute(rec);
    }
    if (this.closed) return;
    this.report();
    if (this.closed) return;
    if (yielded) {
      this.stopReading();
      return;
    }
    const wait = this.pending.length > 0 || this.mustWait();
    if (wait !== this.readingPaused) {
      this.readingPaused = wait;
      this.budget.paused(this, wait);
      if (!wait) this.readingSince = this.budget.now();
    }
    // Input pressure stops reading, not executing: what was read runs, and the record's clock runs on.
    const starved = !wait && this.budget.overInputShare(this.held);
    if (starved !== this.inputWaiting) {
      this.inputWaiting = starved;
      this.budget.inputWaiting(this, starved);
    }
    if (wait || starved) this.stopReading();
    else if (this.socketStopped && !this.budget.waitsForTurn(this)) {
      this.socketStopped = false;
      this.socket.resume();
    }
  }

  private stopReading(): void {
    if (this.socketStopped) return;
    this.socketStopped = true;
    this.socket.pause();
  }

  private mustWait(): boolean {
    const committed = this.committedReplyBytes;
    return this.inflight >= this.limits.maxInflight || committed >= this.limits.maxQueuedReplyBytes || this.budget.overReplyShare(committed);
  }

  private receive(chunk: Buffer): void {
    if (this.closed) return;
    this.lastActive = this.budget.now();
    let records: RpcRecord[];
    try {
      records = this.decoder.pushScattered(chunk);
    } catch (e) {
      if (!(e instanceof RecordError)) throw e;
      this.info.log.warn({ err: e.message, ...e.context }, 'rpc: bad record framing, closing connection');
      this.close('framing');
      return;
    }
    for (const rec of records) {
      this.pending.push(rec);
      this.pendingBytes += rec.length;
    }
    // The budget may close this very connection (the largest holder).
    this.report();
    if (this.closed) return;
    this.pump();
    // This turn's slice is spent: the socket waits for the next turn (pump may have paused it already).
    if (!this.closed && !this.socketStopped && this.budget.sliceSpent()) {
      this.budget.yieldTurn(this);
      this.stopReading();
    }
  }

  /** The next turn after yieldTurn: executes what waits, and reads on unless backpressure says otherwise. */
  continueTurn(): void {
    if (this.closed) return;
    this.pump();
  }

  private execute(rec: RpcRecord): void {
    this.commit(() => this.inflight++);
    this.budget.callStarted();
    void this.dispatcher.dispatch(rec, this.info).then((reply) => {
      this.budget.callEnded();
      const bytes = 'dropped' in reply || this.closed ? 0 : MARK_BYTES + reply.length;
      this.commit(() => {
        this.inflight--;
        this.queuedReplyBytes += bytes;
      });
      if ('dropped' in reply) {
        if (reply.dropped === 'malformed') this.close('malformed');
      } else if (this.closed) this.sink.send(reply);
      else {
        this.sink.send(reply, () => {
          if (this.closed) return;
          this.lastActive = this.budget.now();
          this.commit(() => (this.queuedReplyBytes -= bytes));
          this.pump();
        });
      }
      this.pump();
    });
  }

  /** Applies a change to the queued replies or calls executing, and reports it to the budget while open. */
  private commit(change: () => void): void {
    const before = this.committedReplyBytes;
    change();
    if (!this.closed) this.budget.replyCommitted(before, this.committedReplyBytes);
  }

  private report(): void {
    const held = this.held;
    const before = this.reported;
    this.reported = held;
    if (held !== before) this.budget.inputChanged(before, held);
  }

  /** Leaves the budget once: the input and queued replies it accounted for are no longer its to hold. */
  private release(): void {
    if (this.closed) return;
    this.closed = true;
    this.budget.remove(this, this.reported, this.committedReplyBytes);
    this.pending.length = 0;
    this.pendingBytes = 0;
  }
}
