/**
 * A TcpPair wires one connection end to end: sender → device queue → path → receiver, ACKs
 * back, on one clock and one event bus. It is what the RPC transport talks to.
 */
import { ClockError, VirtualClock, type Clock } from './clock.ts';
import type { FragDestructor } from './destructor.ts';
import { EventBus, type NetstackBus } from './events.ts';
import type { Page } from './page.ts';
import { Path, type PathFaults, type WireAck, type WireMode, type WireSegment } from './path.ts';
import { DEFAULT_FLOW, TcpFlowCapture, type PcapWriter, type TcpFlowAddress } from './pcap.ts';
import { Rng } from './rng.ts';
import { allocSkb, skbAddFrag, skbPut, type SharedInfo, type SkBuff, type SkbOwner } from './skb.ts';
import { orphanFrags } from './skb-ops.ts';
import { TcpReceiver, type DeliverFn } from './tcp/receiver.ts';
import { TcpSender } from './tcp/sender.ts';
import { seqDiff } from './tcp/seq.ts';

/** Linux's TCP_RTO_MIN (200 ms); RFC 6298 says 1 s, Linux and this model default lower. */
export const TCP_RTO_MIN = 200;
/** TCP_RTO_MAX: the backoff ceiling. */
export const TCP_RTO_MAX = 120_000;
/** TCP_TIMEOUT_INIT: RTO before the first RTT sample (RFC 6298 2.1). */
export const TCP_TIMEOUT_INIT = 1000;
/** TCP_INIT_CWND, segments (RFC 6928). */
export const TCP_INIT_CWND = 10;
/** 1500-byte Ethernet MTU less IPv4, TCP and a 12-byte timestamp option. */
export const TCP_MSS_DEFAULT = 1448;
/** TCP_DELACK_MIN */
export const TCP_DELACK_MIN = 40;
/** Receive window (receive buffer) default. */
export const TCP_RCV_WND_DEFAULT = 256 * 1024;
/** Bytes of delivered stream the receiver keeps to detect stale retransmissions. */
export const STALE_WINDOW_DEFAULT = 1024 * 1024;

export interface TcpPairOptions {
  /** Connection id carried by every event. */
  conn: number;
  /** Defaults to a new VirtualClock. */
  clock: Clock | null;
  /** Seeds the PRNG behind random faults and the ISNs. */
  seed: number;
  bus: NetstackBus | null;
  mss: number;
  initCwnd: number;
  rtoMin: number;
  rtoMax: number;
  rtoInitial: number;
  /** Segments per write-queue skb, segmented by GSO at the device (1 = off). */
  gsoSegs: number;
  /** The device offloads segmentation and the receiver merges (TSO/GRO): see Path. */
  tso: boolean;
  rcvWnd: number;
  delayedAck: boolean;
  ackDelay: number;
  staleWindow: number;
  /**
   * When the receiver starts keeping first copies for the stale check: 'always', or 'with-faults':
   * once the path has a fault that can send a byte twice (Path.mayRepeat). Only a byte seen twice
   * is compared, so without such a fault the copy of every byte into the ring checks nothing — as
   * long as a first copy cannot change on its way either, which the sender must promise (pages
   * kept until their destructor fires, or private copies: not legacy's reused pages).
   */
  firstCopies: 'always' | 'with-faults';
  /** Initial sequence numbers; null = drawn from the seeded PRNG. */
  iss: number | null;
  irs: number | null;
  wire: WireMode;
  faults: Partial<PathFaults>;
  pcap: PcapWriter | null;
  flow: TcpFlowAddress;
  /** In-order bytes; call done() when finished with them (default: at once). */
  onDeliver: DeliverFn;
  onFin: () => void;
  onDatagram: (bytes: Buffer) => void;
  /** Virtual clock only: how much virtual time drain() may run before it gives up. */
  drainTimeout: number;
}

export const TCP_PAIR_DEFAULTS: Readonly<TcpPairOptions> = Object.freeze({
  conn: 1,
  clock: null,
  seed: 1,
  bus: null,
  mss: TCP_MSS_DEFAULT,
  initCwnd: TCP_INIT_CWND,
  rtoMin: TCP_RTO_MIN,
  rtoMax: TCP_RTO_MAX,
  rtoInitial: TCP_TIMEOUT_INIT,
  gsoSegs: 1,
  tso: true,
  rcvWnd: TCP_RCV_WND_DEFAULT,
  delayedAck: false,
  ackDelay: TCP_DELACK_MIN,
  staleWindow: STALE_WINDOW_DEFAULT,
  firstCopies: 'always',
  iss: null,
  irs: null,
  wire: 'copy',
  faults: {},
  pcap: null,
  flow: DEFAULT_FLOW,
  onDeliver: (_chunks: Buffer[], done: () => void) => done(),
  onFin: () => {},
  onDatagram: () => {},
  drainTimeout: 3600_000,
});

export interface ConnectionStats {
  bytesInFlight: number;
  bytesUnacked: number;
  bytesQueued: number;
  cwnd: number;
  ssthresh: number;
  srtt: number;
  rto: number;
  retransmits: number;
  fastRetransmits: number;
  /** Duplicate ACKs the sender received from its peer. */
  dupAcksIn: number;
  timeouts: number;
  windowProbes: number;
  staleRetransmits: number;
  /** Destructors carried by this connection that have not fired. */
  pinnedDestructors: number;
  orphanedFrags: number;
  delivered: number;
  duplicates: number;
  drops: number;
  ackDrops: number;
  deviceQueue: number;
}

/** What ConnectionStats has beside the sender's figures: the receiver's, the path's. */
export type ReceiverPathStats = Pick<ConnectionStats, 'staleRetransmits' | 'orphanedFrags' | 'delivered' | 'duplicates' | 'drops' | 'ackDrops' | 'deviceQueue'>;

/**
 * ConnectionStats from the sender's figures (in flight, queued, window, timers) and the rest. One
 * object literal: spreading the sender's part into a larger literal makes V8 build the result the
 * slow way, kilobytes per call, and a state snapshot asks this of every connection it shows.
 */
export function connectionStats(s: TcpSender, r: ReceiverPathStats): ConnectionStats {
  return {
    bytesInFlight: s.inFlight,
    bytesUnacked: seqDiff(s.sndNxt, s.sndUna),
    bytesQueued: seqDiff(s.writeSeq, s.sndUna),
    cwnd: s.cc.cwnd,
    ssthresh: s.cc.ssthresh,
    srtt: s.rtt.srtt,
    rto: s.rtt.rto,
    retransmits: s.retransmits,
    fastRetransmits: s.fastRetransmits,
    dupAcksIn: s.dupAcksIn,
    timeouts: s.timeouts,
    windowProbes: s.probes,
    pinnedDestructors: s.pinnedDestructors,
    staleRetransmits: r.staleRetransmits,
    orphanedFrags: r.orphanedFrags,
    delivered: r.delivered,
    duplicates: r.duplicates,
    drops: r.drops,
    ackDrops: r.ackDrops,
    deviceQueue: r.deviceQueue,
  };
}

export class DrainError extends Error {
  override readonly name = 'DrainError';
  constructor(
    readonly conn: number,
    readonly stats: ConnectionStats,
    why: string,
  ) {
    super(`conn ${conn}: not drained (${why}): ${JSON.stringify(stats)}`);
  }
}

/** A fragment of a page to send by reference. */
export interface PageFragment {
  page: Page;
  offset: number;
  size: number;
}

export class TcpPair {
  readonly options: TcpPairOptions;
  readonly clock: Clock;
  readonly bus: NetstackBus;
  readonly rng: Rng;
  readonly sender: TcpSender;
  readonly receiver: TcpReceiver;
  readonly path: Path;
  private readonly owner: SkbOwner;
  private readonly capture: TcpFlowCapture | null;
  private orphaned = 0;
  private waiters: (() => void)[] = [];

  constructor(options: Partial<TcpPairOptions> = {}) {
    const o: TcpPairOptions = { ...TCP_PAIR_DEFAULTS, ...options };
    this.options = o;
    this.clock = o.clock ?? new VirtualClock();
    this.bus = o.bus ?? new EventBus();
    this.rng = new Rng(o.seed);
    const iss = o.iss ?? Math.floor(this.rng.next() * 2 ** 32);
    const irs = o.irs ?? Math.floor(this.rng.next() * 2 ** 32);
    this.owner = { conn: o.conn, bus: this.bus, clock: this.clock };
    let wscale = 0;
    while (o.rcvWnd >> wscale > 0xffff && wscale < 14) wscale++;
    this.capture = o.pcap ? new TcpFlowCapture(o.pcap, o.flow, iss, irs, o.mss, wscale) : null;
    this.capture?.handshake(this.clock.now());
    this.path = new Path(this.clock, this.rng, this.bus, o.conn, o.faults, o.wire, o.mss, {
      segmentArrived: (seg: WireSegment) => this.receiver.receive(seg),
      ackArrived: (ack: WireAck) => {
        this.capture?.ack(this.clock.now(), ack);
        this.sender.tcpAck(ack.ack, ack.window);
      },
      datagramArrived: (bytes: Buffer) => o.onDatagram(bytes),
      segmentSent: (seg: WireSegment) => {
        this.receiver.observeWire(seg);
        this.capture?.data(this.clock.now(), seg);
      },
      released: () => this.progress(),
    }, o.tso);
    this.sender = new TcpSender(
      {
        mss: o.mss,
        initCwnd: o.initCwnd,
        rtoMin: o.rtoMin,
        rtoMax: o.rtoMax,
        rtoInitial: o.rtoInitial,
        iss,
        gsoSegs: o.gsoSegs,
        peerWindow: o.rcvWnd,
      },
      this.clock,
      this.bus,
      this.owner,
      { xmit: (skb) => this.path.xmit(skb), probe: (seq) => this.path.xmitProbe(seq) },
    );
    this.sender.onProgress = () => this.progress();
    this.receiver = new TcpReceiver(
      { mss: o.mss, rcvWnd: o.rcvWnd, delayedAck: o.delayedAck, ackDelay: o.ackDelay, staleWindow: o.staleWindow, irs: iss, keepFirstCopies: o.firstCopies === 'always' },
      this.clock,
      this.bus,
      o.conn,
      (ack) => this.path.sendAck(ack),
      o.onDeliver,
      o.onFin,
      () => this.progress(),
    );
    this.watchRepeats();
  }

  /** Captures bytes the client sent on this connection: they reach the server outside the simulated path. */
  captureClientData(bytes: Buffer): void {
    this.capture?.clientData(this.clock.now(), bytes);
  }

  sendmsg(data: Buffer, more = false): number {
    return this.sender.sendmsg(data, more);
  }

  sendpage(page: Page, offset: number, size: number, destructor: FragDestructor | null, more = false): number {
    return this.sender.sendpage(page, offset, size, destructor, more);
  }

  /** Queues a FIN after everything sent so far. */
  close(): void {
    this.sender.close();
  }

  /**
   * tcp_done after a reset — the socket is gone and nobody will read what is queued: the write and
   * retransmit queue (tcp_write_queue_purge), the device queue, the wire and the out-of-order queue
   * are dropped. Their skbs are freed, not copied, so each destructor fires as soon as the last skb
   * holding its frags goes; bytes already handed to the consumer as views go with its done().
   */
  reset(): void {
    this.sender.purge();
    this.path.purge();
    this.receiver.purge();
  }

  /**
   * A UDP-style datagram: `header` copied into the linear part, `frags` by reference with
   * `destructor`; one skb through the device queue, freed (its frag references with it) when
   * it leaves the queue.
   */
  sendDatagram(header: Buffer, frags: PageFragment[], destructor: FragDestructor | null): SkBuff {
    if (destructor !== null) this.sender.adopt(destructor);
    const skb = allocSkb(header.length, this.owner);
    skbPut(skb, header);
    for (const f of frags) skbAddFrag(skb, f.page, f.offset, f.size, destructor);
    this.path.xmitDatagram(skb);
    return skb;
  }

  setFaults(partial: Partial<PathFaults>): void {
    this.path.setFaults(partial);
    this.watchRepeats();
  }

  dropNext(n = 1): void {
    this.path.dropNext(n);
    this.watchRepeats();
  }

  holdNext(ms: number, n = 1): void {
    this.path.holdNext(ms, n);
    this.watchRepeats();
  }

  /** From the first fault that can send a byte twice on, the receiver keeps first copies (for good). */
  private watchRepeats(): void {
    if (this.path.mayRepeat()) this.receiver.keepFirstCopies();
  }

  /** Every skb this connection holds: write/retransmit queue, device queue, wire and receiver (reference wire). */
  heldSkbs(): SkBuff[] {
    return [...this.sender.heldSkbs(), ...this.path.heldSkbs(), ...this.receiver.heldSkbs()];
  }

  /**
   * skb_orphan_frags on what the connection may hold for long — the write/retransmit queue and
   * the device queue (the pin budget's lever); returns frags orphaned. On a reference wire,
   * bytes already handed out as views (on the wire, or with the consumer until done()) stay
   * where they are, and so does every skb sharing their SharedInfo: orphaning would release
   * pages those views still read. They are let go by done(), which does not wait on the peer.
   */
  orphanFrags(): number {
    const exposed = new Set<SharedInfo>();
    for (const skb of this.receiver.heldSkbs()) exposed.add(skb.shinfo);
    for (const skb of this.path.wireSkbs()) exposed.add(skb.shinfo);
    let n = 0;
    for (const skb of [...this.sender.heldSkbs(), ...this.path.deviceQueue.skbs()]) if (!exposed.has(skb.shinfo)) n += orphanFrags(skb);
    this.orphaned += n;
    return n;
  }

  stats(): ConnectionStats {
    return connectionStats(this.sender, {
      staleRetransmits: this.receiver.staleRetransmits,
      orphanedFrags: this.orphaned,
      delivered: this.receiver.delivered,
      duplicates: this.receiver.duplicates,
      drops: this.path.drops,
      ackDrops: this.path.ackDrops,
      deviceQueue: this.path.deviceQueue.length,
    });
  }

  /** Everything queued is ACKed, and nothing is left in the device queue, on the wire or with the consumer. */
  get drained(): boolean {
    return this.sender.idle && this.path.idle && this.receiver.unconsumed === 0 && this.receiver.heldSkbs().length === 0;
  }

  /**
   * Resolves once drained. On a virtual clock it runs the clock (and lets asynchronous
   * consumers call done()), rejecting with DrainError if the connection cannot drain.
   */
  async drain(): Promise<void> {
    const clock = this.clock;
    if (clock instanceof VirtualClock) {
      for (let round = 0; round < 1000; round++) {
        try {
          clock.runUntilIdle({ maxMs: this.options.drainTimeout });
        } catch (e) {
          if (e instanceof ClockError) throw new DrainError(this.options.conn, this.stats(), e.message);
          throw e;
        }
        if (this.drained) break;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      if (!this.drained) throw new DrainError(this.options.conn, this.stats(), 'idle clock, work left');
      this.sender.release();
      return;
    }
    if (this.drained) {
      this.sender.release();
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
    this.sender.release();
  }

  private progress(): void {
    if (this.waiters.length === 0 || !this.drained) return;
    const w = this.waiters;
    this.waiters = [];
    for (const resolve of w) resolve();
  }
}
