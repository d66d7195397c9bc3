/**
 * What lies between sender and receiver: the sender's device queue, then a wire that may lose,
 * delay, jitter, reorder and duplicate segments, and a reverse direction for ACKs with its own
 * loss. The sender never knows what is behind it.
 */
import { Agenda } from './agenda.ts';
import type { Clock } from './clock.ts';
import { DeviceQueue, type DeviceQueueEntry } from './device-queue.ts';
import type { NetstackBus } from './events.ts';
import type { Rng } from './rng.ts';
import { freeSkb, skbClone, TCPHDR_FIN, type SkBuff } from './skb.ts';
import { skbSegment, skbToBuffer, skbViews } from './skb-ops.ts';
import { after, before } from './tcp/seq.ts';

/** A TCP data segment as it crossed the wire. */
export interface WireSegment {
  seq: number;
  /** Payload bytes (FIN not counted). */
  len: number;
  /** TCPHDR_* flags. */
  flags: number;
  /** The payload: one copy read from the pages at TX completion, or views of them (reference wire). */
  payload: Buffer[];
  /** Reference wire only: the transmitted skb, held until the receiver is done with the bytes. */
  skb: SkBuff | null;
  /**
   * Set by the receiver when it took this very segment's bytes as the first copy of its whole
   * range and they cannot change before it arrives: comparing it with itself would find nothing.
   */
  firstCopy?: boolean;
}

/** An ACK from the receiver. */
export interface WireAck {
  ack: number;
  window: number;
}

/** A scripted drop: every data segment overlapping [seq, end), `times` times (default 1). */
export interface DropRange {
  seq: number;
  end: number;
  times?: number;
}

/** Fault settings; all changeable at run time with Path.setFaults. */
export interface PathFaults {
  /** Probability a data segment (or datagram) is lost after it left the device queue. */
  loss: number;
  /** Probability an ACK is lost. */
  ackLoss: number;
  /** One-way delay (ms), each direction. */
  delay: number;
  /** Extra uniform random delay in [0, jitter) ms per packet (reorders when > spacing). */
  jitter: number;
  /** Probability a data segment is held back `reorderDelay` ms, letting later ones overtake. */
  reorder: number;
  reorderDelay: number;
  /** Probability a data segment arrives twice. */
  duplicate: number;
  /** Link bandwidth out of the device queue, bytes/s; 0 = unlimited. */
  bandwidth: number;
  /** Every transmitted segment waits this long (ms) in the device queue (a paused or slow NIC). */
  deviceHold: number;
  /** Data segments to drop by ordinal (1 = the first data segment to leave the device queue, retransmissions counted). */
  dropSegments: number[];
  /** Sequence ranges to drop. */
  dropRanges: DropRange[];
}

export const DEFAULT_FAULTS: Readonly<PathFaults> = Object.freeze({
  loss: 0,
  ackLoss: 0,
  delay: 0,
  jitter: 0,
  reorder: 0,
  reorderDelay: 5,
  duplicate: 0,
  bandwidth: 0,
  deviceHold: 0,
  dropSegments: [],
  dropRanges: [],
});

/**
 * How bytes cross the wire. 'copy': at TX completion the payload is read from the pages into
 * one buffer and the transmitted clone freed (a page overwritten earlier shows as stale bytes).
 * 'reference': the clone travels with the views of its pages and is freed only when the
 * receiver's consumer is done with them — live serving, where the bytes go on to a real
 * socket without a copy.
 */
export type WireMode = 'copy' | 'reference';

export interface PathEnds {
  segmentArrived(seg: WireSegment): void;
  ackArrived(ack: WireAck): void;
  datagramArrived(bytes: Buffer): void;
  /** A data segment left the device queue (the sender-side capture point), lost or not. */
  segmentSent(seg: WireSegment): void;
  /** The path let go of an skb (TX completion in copy mode, a drop, a datagram sent). */
  released(): void;
}

type WireItem = { kind: 'seg'; seg: WireSegment } | { kind: 'ack'; ack: WireAck } | { kind: 'dgram'; bytes: Buffer };

export class Path {
  readonly faults: PathFaults;
  readonly deviceQueue: DeviceQueue;
  private readonly wire: Agenda<WireItem>;
  private dropNextCount = 0;
  private holds: number[] = [];
  /** Data segments that left the device queue so far. */
  dataSegments = 0;
  drops = 0;
  ackDrops = 0;

  constructor(
    private readonly clock: Clock,
    private readonly rng: Rng,
    private readonly bus: NetstackBus | null,
    private readonly conn: number,
    faults: Partial<PathFaults>,
    readonly mode: WireMode,
    /** Segment size for GSO at the device (the MSS); 0 = none. */
    private readonly gsoSize: number,
    private readonly ends: PathEnds,
    /**
     * The device segments in hardware (TSO) and the receiver merges the segments again (GRO), as
     * on loopback or between two hosts with offloads: a GSO skb crosses the wire as one unit, and
     * is cut into MSS segments only while a fault acts on single segments. False for a real wire,
     * whose frames are one MSS each.
     */
    private readonly tso = false,
  ) {
    this.faults = { ...DEFAULT_FAULTS, dropSegments: [], dropRanges: [] };
    this.deviceQueue = new DeviceQueue(clock, (e) => this.txComplete(e));
    this.wire = new Agenda(clock, (item) => this.arrive(item));
    this.setFaults(faults);
  }

  setFaults(partial: Partial<PathFaults>): void {
    Object.assign(this.faults, partial);
    if (partial.dropRanges) this.faults.dropRanges = partial.dropRanges.map((r) => ({ ...r }));
    if (partial.dropSegments) this.faults.dropSegments = [...partial.dropSegments];
    this.deviceQueue.bandwidth = this.faults.bandwidth;
  }

  /** Drops the next `n` data segments that leave the device queue. */
  dropNext(n = 1): void {
    this.dropNextCount += n;
  }

  /** Holds each of the next `n` transmitted segments in the device queue for `ms`. */
  holdNext(ms: number, n = 1): void {
    for (let i = 0; i < n; i++) this.holds.push(ms);
  }

  /** Nothing queued, on the wire, or held for a receiver. */
  get idle(): boolean {
    return this.deviceQueue.length === 0 && this.wire.size === 0;
  }

  /** skbs the path holds: clones in the device queue, and on the wire in reference mode. */
  heldSkbs(): SkBuff[] {
    return [...this.deviceQueue.skbs(), ...this.wireSkbs()];
  }

  /** Reference wire: skbs past TX completion, travelling with views of their pages. */
  wireSkbs(): SkBuff[] {
    const out: SkBuff[] = [];
    for (const item of this.wire.items()) if (item.kind === 'seg' && item.seg.skb) out.push(item.seg.skb);
    return out;
  }

  /**
   * dev_queue_xmit of a TCP clone. One larger than `gsoSize` is segmented first (software
   * GSO, as validate_xmit_skb does) unless the device offloads it: each segment references
   * the frags itself, and the clone is consumed at once.
   */
  xmit(skb: SkBuff): void {
    if (this.gsoSize > 0 && skb.len > this.gsoSize && (!this.tso || this.segmentFaults())) {
      const segs = skbSegment(skb, this.gsoSize);
      freeSkb(skb);
      for (const seg of segs) this.enqueue(seg);
      return;
    }
    this.enqueue(skb);
  }

  /**
   * Whether a fault may treat the segments of one skb differently: loss, duplication, reordering,
   * jitter and the scripted drops and holds, which count or pick single segments. Delay, a
   * standing device hold, bandwidth and ACK loss act on a whole skb as on each of its segments.
   */
  private segmentFaults(): boolean {
    const f = this.faults;
    return (
      f.loss > 0 ||
      f.duplicate > 0 ||
      f.reorder > 0 ||
      f.jitter > 0 ||
      this.dropNextCount > 0 ||
      this.holds.length > 0 ||
      f.dropSegments.length > 0 ||
      f.dropRanges.length > 0
    );
  }

  /**
   * Whether a fault may make the receiver see a byte twice: a loss, a drop or a hold (retransmitted
   * after an RTO or three duplicate ACKs), a duplicate, reordering, delay or bandwidth (an ACK late
   * past the RTO), a lost ACK. With none, every byte crosses the wire once.
   */
  mayRepeat(): boolean {
    const f = this.faults;
    return this.segmentFaults() || f.ackLoss > 0 || f.delay > 0 || f.deviceHold > 0 || f.bandwidth > 0;
  }

  private enqueue(skb: SkBuff): void {
    this.deviceQueue.enqueue(skb, false, this.nextHold(skb));
  }

  /** How long the next skb waits in the device queue: a scripted one-off, else the standing hold. */
  private nextHold(skb: SkBuff): number {
    const hold = this.holds.length > 0 ? this.holds.shift()! : this.faults.deviceHold;
    if (hold > 0 && this.bus !== null && this.bus.wants('segment-hold')) {
      this.bus.emit({ type: 'segment-hold', conn: this.conn, t: this.clock.now(), seq: skb.seq, end: skb.endSeq, skb: skb.id, ms: hold });
    }
    return hold;
  }

  /**
   * The connection was reset: the skbs in the device queue and on the wire are freed now (their
   * frag references with them, no copy), ACKs and datagrams on the way dropped, one-off faults
   * forgotten. Nothing already sent arrives any more.
   */
  purge(): void {
    for (const e of this.deviceQueue.clear()) freeSkb(e.skb);
    for (const item of this.wire.clear()) if (item.kind === 'seg' && item.seg.skb) freeSkb(item.seg.skb);
    this.dropNextCount = 0;
    this.holds = [];
    this.ends.released();
  }

  /** A UDP-style datagram: one skb through the device queue, freed (destructors and all) at TX completion. */
  xmitDatagram(skb: SkBuff): void {
    this.deviceQueue.enqueue(skb, true, this.nextHold(skb));
  }

  /** A zero-window probe: no payload, elicits an ACK. */
  xmitProbe(seq: number): void {
    this.schedule({ kind: 'seg', seg: { seq, len: 0, flags: 0, payload: [], skb: null } }, this.clock.now() + this.faults.delay);
  }

  sendAck(ack: WireAck): void {
    if (this.rng.chance(this.faults.ackLoss)) {
      this.ackDrops++;
      if (this.bus !== null && this.bus.wants('ack')) {
        this.bus.emit({ type: 'ack', conn: this.conn, t: this.clock.now(), ack: ack.ack, window: ack.window, dup: false, lost: true });
      }
      return;
    }
    this.schedule({ kind: 'ack', ack }, this.clock.now() + this.propagation());
  }

  private propagation(): number {
    const f = this.faults;
    return f.delay + (f.jitter > 0 ? this.rng.next() * f.jitter : 0);
  }

  private schedule(item: WireItem, at: number): void {
    this.wire.schedule(at, item);
  }

  /** TX completion: the driver is done with the skb; the bytes are read from the pages now. */
  private txComplete(e: DeviceQueueEntry): void {
    const skb = e.skb;
    if (e.datagram) {
      const bytes = skbToBuffer(skb);
      if (this.bus !== null && this.bus.wants('datagram-complete')) {
        this.bus.emit({ type: 'datagram-complete', conn: this.conn, t: this.clock.now(), skb: skb.id, len: skb.len });
      }
      freeSkb(skb);
      this.ends.released();
      if (!this.rng.chance(this.faults.loss)) this.schedule({ kind: 'dgram', bytes }, this.clock.now() + this.propagation());
      return;
    }
    const seg: WireSegment = {
      seq: skb.seq,
      len: skb.len,
      flags: skb.tcpFlags,
      payload: this.mode === 'copy' ? [skbToBuffer(skb)] : skbViews(skb),
      skb: this.mode === 'copy' ? null : skb,
    };
    if (this.mode === 'copy') freeSkb(skb);
    this.dataSegments++;
    this.ends.segmentSent(seg);
    const reason = this.dropReason(seg);
    if (reason !== null) {
      this.drops++;
      if (this.bus !== null && this.bus.wants('segment-drop')) {
        const end = (seg.seq + seg.len + (seg.flags & TCPHDR_FIN ? 1 : 0)) >>> 0;
        this.bus.emit({ type: 'segment-drop', conn: this.conn, t: this.clock.now(), seq: seg.seq, end, reason });
      }
      if (seg.skb) freeSkb(seg.skb);
      this.ends.released();
      return;
    }
    const f = this.faults;
    const now = this.clock.now();
    if (this.rng.chance(f.duplicate)) {
      const dup: WireSegment = { ...seg, skb: seg.skb ? skbClone(seg.skb) : null };
      this.schedule({ kind: 'seg', seg: dup }, now + this.propagation());
    }
    const extra = this.rng.chance(f.reorder) ? f.reorderDelay : 0;
    this.schedule({ kind: 'seg', seg }, now + this.propagation() + extra);
    if (seg.skb === null) this.ends.released();
  }

  private dropReason(seg: WireSegment): 'scripted' | 'loss' | null {
    if (this.dropNextCount > 0) {
      this.dropNextCount--;
      return 'scripted';
    }
    const f = this.faults;
    const n = f.dropSegments.indexOf(this.dataSegments);
    if (n >= 0) {
      f.dropSegments.splice(n, 1);
      return 'scripted';
    }
    const end = (seg.seq + Math.max(seg.len, 1)) >>> 0;
    for (let i = 0; i < f.dropRanges.length; i++) {
      const r = f.dropRanges[i]!;
      if (before(seg.seq, r.end) && after(end, r.seq)) {
        r.times = (r.times ?? 1) - 1;
        if (r.times <= 0) f.dropRanges.splice(i, 1);
        return 'scripted';
      }
    }
    return this.rng.chance(f.loss) ? 'loss' : null;
  }

  private arrive(item: WireItem): void {
    switch (item.kind) {
      case 'seg':
        this.ends.segmentArrived(item.seg);
        break;
      case 'ack':
        this.ends.ackArrived(item.ack);
        break;
      case 'dgram':
        this.ends.datagramArrived(item.bytes);
        break;
    }
  }
}
