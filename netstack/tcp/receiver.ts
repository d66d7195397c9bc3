/**
 * The TCP receive side (tcp_data_queue, tcp_ofo_queue, __tcp_ack_snd_check): reassembly,
 * in-order delivery, duplicate and overlap handling, immediate or delayed ACKs — and a check
 * that every later copy of a range carries the bytes its first copy carried.
 */
import { Timer, type Clock } from '../clock.ts';
import type { NetstackBus } from '../events.ts';
import type { WireAck, WireSegment } from '../path.ts';
import { freeSkb, TCPHDR_FIN, type SkBuff } from '../skb.ts';
import { sliceViews } from '../views.ts';
import { after, before, seqAdd, seqDiff } from './seq.ts';

export interface TcpReceiverOptions {
  mss: number;
  /** Receive buffer: bytes delivered but not yet consumed (done) count against it. */
  rcvWnd: number;
  /** Delay ACKs (RFC 1122 4.2.3.2: at least every second full segment, within ackDelay). */
  delayedAck: boolean;
  ackDelay: number;
  /** Bytes of recently delivered stream kept to check retransmissions against (rounded up to a power of two; 0 = no check). */
  staleWindow: number;
  /** The peer's ISS; the first data byte is irs + 1. */
  irs: number;
  /** Keep first copies from the start; else from keepFirstCopies() on (TcpPairOptions.firstCopies). */
  keepFirstCopies: boolean;
}

/**
 * Gets in-order bytes as views, no copy. Until `done()` the receiver keeps the segments (and
 * on a reference wire their frag references) and counts the bytes against its window.
 */
export type DeliverFn = (chunks: Buffer[], done: () => void) => void;

export class DeliveryError extends Error {
  override readonly name = 'DeliveryError';
}

/** A segment waiting in the out-of-order queue: [seq, seq + views' length), FIN after it if set. */
interface OfoSegment {
  seq: number;
  end: number;
  fin: boolean;
  views: Buffer[];
  skb: SkBuff | null;
}

function roundPow2(n: number): number {
  return n <= 0 ? 0 : 2 ** Math.ceil(Math.log2(n));
}

/**
 * Invariants:
 * - rcvNxt is the next sequence number expected; everything before it has been delivered
 *   (FIN included, once `finReceived`).
 * - `ofo` is sorted by seq, every entry starts after rcvNxt; entries may overlap (overlaps are
 *   trimmed when delivered).
 * - Stale check: `history` (a ring, power-of-two size) holds the first copy of the ranges in
 *   `seen`, the byte with sequence s at index (s − irs − 1) mod size. The first copy is taken where it is first seen: on the wire when the connection shows
 *   the receiver every segment that leaves the device (`observeWire`, so a first copy that was
 *   then lost still counts), else at delivery. Bytes rather than a digest per range, because
 *   retransmissions need not align with the first copy's boundaries (tcp_trim_head,
 *   tcp_fragment re-cut them). Older ranges go unchecked.
 */
export class TcpReceiver {
  rcvNxt: number;
  finReceived = false;
  private finNotified = false;
  private readonly ofo: OfoSegment[] = [];
  /** skbs of deliveries the consumer has not called done() for (reference wire). */
  private readonly pendingDone = new Set<SkBuff[]>();
  /** Bytes delivered and not yet released by the consumer's done(). */
  unconsumed = 0;
  private lastAdvertised: number;
  private pendingAckBytes = 0;
  /** Allocated with the first byte recorded: a connection that never carries data costs nothing. */
  private history: Buffer | null = null;
  private readonly historySize: number;
  /** Sequence ranges [s, e) whose first copy `history` holds, sorted, disjoint, within one ring size of the newest. */
  private seen: { s: number; e: number }[] = [];
  private readonly delack: Timer;
  /** Whether first copies are being kept: a later copy of a byte is compared only from then on. */
  private keeping: boolean;
  staleRetransmits = 0;
  /**
   * Segments that brought bytes already delivered while no first copies were kept, so went
   * unchecked: none while the path has no fault (TcpPairOptions.firstCopies). The first one starts
   * the keeping, so later ones are checked.
   */
  uncheckedRepeats = 0;
  duplicates = 0;
  delivered = 0;

  constructor(
    private readonly o: TcpReceiverOptions,
    private readonly clock: Clock,
    private readonly bus: NetstackBus | null,
    private readonly conn: number,
    private readonly sendAck: (ack: WireAck) => void,
    private readonly onDeliver: DeliverFn,
    private readonly onFin: () => void,
    /** Told whenever the receiver lets go of something (a segment, bytes the consumer is done with). */
    private readonly released: () => void,
  ) {
    this.rcvNxt = seqAdd(o.irs, 1);
    this.lastAdvertised = o.rcvWnd;
    this.historySize = roundPow2(o.staleWindow);
    this.keeping = o.keepFirstCopies;
    this.delack = new Timer(clock, () => this.tcpSendAck());
  }

  get window(): number {
    return Math.max(0, this.o.rcvWnd - this.unconsumed);
  }

  /** skbs held for the consumer or in the out-of-order queue (reference wire only). */
  heldSkbs(): SkBuff[] {
    const out: SkBuff[] = [];
    for (const s of this.ofo) if (s.skb) out.push(s.skb);
    for (const skbs of this.pendingDone) for (const skb of skbs) out.push(skb);
    return out;
  }

  /**
   * The connection was reset (tcp_done's skb_rbtree_purge of the out-of-order queue): segments
   * waiting there are freed. Bytes already handed to the consumer stay until its done().
   */
  purge(): void {
    this.delack.stop();
    for (const s of this.ofo.splice(0)) if (s.skb) freeSkb(s.skb);
    this.released();
  }

  /** From now on, first copies are kept and later copies checked against them. */
  keepFirstCopies(): void {
    this.keeping = true;
  }

  /**
   * A data segment left the sender's device (lost or not): its bytes are the first copy of any
   * range not seen before. Later copies are checked against them when they arrive.
   */
  observeWire(seg: WireSegment): void {
    if (seg.len === 0 || !this.keeping) return;
    let seq = seg.seq;
    let fresh = 0;
    for (const v of seg.payload) {
      fresh += this.remember(seq, v);
      seq = seqAdd(seq, v.length);
    }
    if (fresh === seg.len && stableBytes(seg)) seg.firstCopy = true;
  }

  /** tcp_rcv_established for a data segment (or a zero-window probe). */
  receive(seg: WireSegment): void {
    const fin = (seg.flags & TCPHDR_FIN) !== 0;
    if (seg.len === 0 && !fin) {
      this.tcpSendAck();
      return;
    }
    if (!this.keeping && seg.len > 0 && before(seg.seq, this.rcvNxt)) {
      this.uncheckedRepeats++;
      this.keeping = true;
    }
    if (seg.len > 0 && seg.firstCopy !== true) this.checkStale(seg);
    const dataEnd = seqAdd(seg.seq, seg.len);
    const finNew = fin && !this.finReceived;
    if (!after(dataEnd, this.rcvNxt) && !(finNew && dataEnd === this.rcvNxt)) {
      this.duplicates++;
      this.release(seg.skb);
      this.tcpSendAck();
      return;
    }
    // Bytes from seg.seq that fit the window; what lies beyond it is dropped (the ACK says where it ends).
    const allowed = seqDiff(seqAdd(this.rcvNxt, this.window), seg.seq);
    if (seg.len > 0 && allowed <= 0) {
      const bus = this.bus;
      if (bus !== null && bus.wants('segment-drop')) {
        bus.emit({ type: 'segment-drop', conn: this.conn, t: this.clock.now(), seq: seg.seq, end: dataEnd, reason: 'window' });
      }
      this.release(seg.skb);
      this.tcpSendAck();
      return;
    }
    let views = seg.payload;
    let len = seg.len;
    let finHere = fin;
    if (len > allowed) {
      len = allowed;
      views = sliceViews(views, 0, len);
      finHere = false;
    }
    const end = seqAdd(seg.seq, len);
    if (after(seg.seq, this.rcvNxt)) {
      this.ofoInsert({ seq: seg.seq, end, fin: finHere, views, skb: seg.skb });
      this.tcpSendAck();
      return;
    }
    const chunks: Buffer[] = [];
    const skbs: SkBuff[] = [];
    this.deliverInto(chunks, seg.seq, end, views, finHere);
    if (seg.skb) skbs.push(seg.skb);
    const hadOfo = this.ofo.length > 0;
    this.tcpOfoQueue(chunks, skbs);
    this.hand(chunks, skbs);
    if (hadOfo || this.finReceived || !this.o.delayedAck) {
      this.tcpSendAck();
      return;
    }
    this.pendingAckBytes += len;
    if (this.pendingAckBytes >= 2 * this.o.mss) this.tcpSendAck();
    else if (!this.delack.armed) this.delack.arm(this.o.ackDelay);
  }

  /** Appends the new part of [seq, end) to `chunks`, advancing rcvNxt (and past a FIN). */
  private deliverInto(chunks: Buffer[], seq: number, end: number, views: Buffer[], fin: boolean): void {
    const skip = seqDiff(this.rcvNxt, seq);
    const n = seqDiff(end, this.rcvNxt);
    if (n > 0) {
      const part = skip > 0 ? sliceViews(views, skip, n) : views;
      for (const v of part) {
        this.remember(this.rcvNxt, v);
        this.rcvNxt = seqAdd(this.rcvNxt, v.length);
        chunks.push(v);
      }
      this.delivered += n;
      this.unconsumed += n;
      const bus = this.bus;
      if (bus !== null && bus.wants('segment-deliver')) {
        bus.emit({ type: 'segment-deliver', conn: this.conn, t: this.clock.now(), seq: seqAdd(end, -n), end });
      }
    }
    if (fin && end === this.rcvNxt && !this.finReceived) {
      this.finReceived = true;
      this.rcvNxt = seqAdd(this.rcvNxt, 1);
    }
  }

  /** tcp_ofo_queue: moves now-contiguous out-of-order segments to the delivery. */
  private tcpOfoQueue(chunks: Buffer[], skbs: SkBuff[]): void {
    while (this.ofo.length > 0 && !after(this.ofo[0]!.seq, this.rcvNxt)) {
      const s = this.ofo.shift()!;
      if (after(s.end, this.rcvNxt) || (s.fin && s.end === this.rcvNxt && !this.finReceived)) {
        this.deliverInto(chunks, s.seq, s.end, s.views, s.fin);
        if (s.skb) skbs.push(s.skb);
      } else {
        this.release(s.skb);
      }
    }
  }

  private ofoInsert(s: OfoSegment): void {
    let i = this.ofo.length;
    while (i > 0 && after(this.ofo[i - 1]!.seq, s.seq)) i--;
    const prev = this.ofo[i - 1];
    if (prev !== undefined && !after(s.end, prev.end) && (!s.fin || prev.fin)) {
      // Already held in full: a duplicate.
      this.duplicates++;
      this.release(s.skb);
      return;
    }
    this.ofo.splice(i, 0, s);
  }

  /** Passes a batch to the consumer; its done() releases the bytes and segments. */
  private hand(chunks: Buffer[], skbs: SkBuff[]): void {
    if (chunks.length === 0) {
      for (const skb of skbs) this.release(skb);
    } else {
      this.handChunks(chunks, skbs);
    }
    if (this.finReceived && !this.finNotified) {
      this.finNotified = true;
      this.onFin();
    }
  }

  private handChunks(chunks: Buffer[], skbs: SkBuff[]): void {
    let bytes = 0;
    for (const c of chunks) bytes += c.length;
    this.pendingDone.add(skbs);
    let called = false;
    this.onDeliver(chunks, () => {
      if (called) throw new DeliveryError(`conn ${this.conn}: done() called twice for ${bytes} bytes`);
      called = true;
      this.pendingDone.delete(skbs);
      this.unconsumed -= bytes;
      for (const skb of skbs) freeSkb(skb);
      if (this.window - this.lastAdvertised >= Math.min(this.o.rcvWnd / 2, 2 * this.o.mss)) this.tcpSendAck();
      this.released();
    });
  }

  private release(skb: SkBuff | null): void {
    if (skb === null) return;
    freeSkb(skb);
    this.released();
  }

  private tcpSendAck(): void {
    this.delack.cancel();
    this.pendingAckBytes = 0;
    this.lastAdvertised = this.window;
    this.sendAck({ ack: this.rcvNxt, window: this.lastAdvertised });
  }

  /**
   * Records the bytes of [seq, seq + v.length) that no earlier copy covered (first copies only);
   * returns how many that was.
   */
  private remember(seq: number, v: Buffer): number {
    const size = this.historySize;
    if (size === 0 || v.length === 0 || !this.keeping) return 0;
    const end = seqAdd(seq, v.length);
    let at = seq;
    // Bytes older than the ring holds (newest seen − size) have no slot of their own: their slot
    // now holds a newer range's first copy, which writing them would overwrite.
    const newest = this.seen[this.seen.length - 1];
    if (newest !== undefined) {
      const oldest = seqAdd(newest.e, -size);
      if (!after(end, oldest)) return 0;
      if (before(at, oldest)) at = oldest;
    }
    if (newest !== undefined && at === newest.e) {
      // The stream's next bytes, the common case: extend the newest range in place.
      this.ringWrite(at, v.subarray(seqDiff(at, seq)));
      newest.e = end;
      this.forgetOverwritten();
      return seqDiff(end, at);
    }
    const gaps: [number, number][] = [];
    for (const r of this.seen) {
      if (!after(end, at)) break;
      if (!after(r.e, at)) continue;
      if (before(at, r.s)) gaps.push([at, before(end, r.s) ? end : r.s]);
      if (after(r.e, at)) at = r.e;
    }
    if (before(at, end)) gaps.push([at, end]);
    let n = 0;
    for (const [gs, ge] of gaps) {
      this.ringWrite(gs, v.subarray(seqDiff(gs, seq), seqDiff(ge, seq)));
      this.addSeen(gs, ge);
      n += seqDiff(ge, gs);
    }
    return n;
  }

  /** Drops from `seen` what lies more than one ring size behind its newest byte (the ring reused those slots). */
  private forgetOverwritten(): void {
    const oldest = seqAdd(this.seen[this.seen.length - 1]!.e, -this.historySize);
    while (this.seen.length > 0 && !after(this.seen[0]!.e, oldest)) this.seen.shift();
    const first = this.seen[0];
    if (first !== undefined && before(first.s, oldest)) first.s = oldest;
  }

  private ringWrite(seq: number, src: Buffer): void {
    const size = this.historySize;
    let pos = seqDiff(seq, seqAdd(this.o.irs, 1)) & (size - 1);
    let off = 0;
    while (off < src.length) {
      const n = Math.min(src.length - off, size - pos);
      src.copy((this.history ??= Buffer.allocUnsafe(size)), pos, off, off + n);
      off += n;
      pos = (pos + n) & (size - 1);
    }
  }

  /** Adds [s, e) to `seen`, merging neighbours and forgetting what the ring has overwritten. */
  private addSeen(s: number, e: number): void {
    const out: { s: number; e: number }[] = [];
    let cur = { s, e };
    let placed = false;
    for (const r of this.seen) {
      if (before(r.e, cur.s)) out.push(r);
      else if (after(r.s, cur.e)) {
        if (!placed) out.push(cur);
        placed = true;
        out.push(r);
      } else cur = { s: before(r.s, cur.s) ? r.s : cur.s, e: after(r.e, cur.e) ? r.e : cur.e };
    }
    if (!placed) out.push(cur);
    this.seen = out;
    this.forgetOverwritten();
  }



  /** Compares the bytes of `seg` that were seen before (delivered, or queued out of order) with their first copy. */
  private checkStale(seg: WireSegment): void {
    const segEnd = seqAdd(seg.seq, seg.len);
    let stale: [number, number] | null = null;
    for (const r of this.seen) {
      const a = after(seg.seq, r.s) ? seg.seq : r.s;
      const b = before(segEnd, r.e) ? segEnd : r.e;
      if (before(a, b) && !this.historyEquals(a, sliceViews(seg.payload, seqDiff(a, seg.seq), seqDiff(b, a)))) {
        stale = [a, b];
        break;
      }
    }
    for (const s of this.ofo) {
      if (stale) break;
      const x = after(seg.seq, s.seq) ? seg.seq : s.seq;
      const y = before(segEnd, s.end) ? segEnd : s.end;
      if (!before(x, y)) continue;
      const n = seqDiff(y, x);
      const mine = Buffer.concat(sliceViews(seg.payload, seqDiff(x, seg.seq), n));
      const theirs = Buffer.concat(sliceViews(s.views, seqDiff(x, s.seq), n));
      if (!mine.equals(theirs)) stale = [x, y];
    }
    if (stale === null) return;
    this.staleRetransmits++;
    const bus = this.bus;
    if (bus !== null && bus.wants('stale-retransmit')) {
      bus.emit({ type: 'stale-retransmit', conn: this.conn, t: this.clock.now(), seq: stale[0], end: stale[1] });
    }
  }

  private historyEquals(seq: number, views: Buffer[]): boolean {
    const size = this.historySize;
    let pos = seqDiff(seq, seqAdd(this.o.irs, 1)) & (size - 1);
    for (const v of views) {
      let off = 0;
      while (off < v.length) {
        const n = Math.min(v.length - off, size - pos);
        if (this.history!.compare(v, off, off + n, pos, pos + n) !== 0) return false;
        off += n;
        pos = (pos + n) & (size - 1);
      }
    }
    return true;
  }
}

/**
 * The segment's bytes stay what they were at TX completion until it arrives: a private copy (copy
 * wire), or frags whose pages the injector keeps until their destructor fires (never reused early).
 */
function stableBytes(seg: WireSegment): boolean {
  if (seg.skb === null) return true;
  for (const f of seg.skb.shinfo.frags) if (f.destructor !== null && f.destructor.pagesReused) return false;
  return true;
}
