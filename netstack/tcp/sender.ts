/**
 * The TCP send side (tcp.c's sendmsg/sendpage, tcp_output.c, the sender half of tcp_input.c):
 * a write queue of skbs, each transmission a clone while the original stays queued until
 * ACKed; Reno congestion control; RFC 6298 RTO; RFC 5681 fast retransmit and recovery; FIN.
 */
import { Timer, type Clock } from '../clock.ts';
import type { DestructorOwner, FragDestructor } from '../destructor.ts';
import type { NetstackBus } from '../events.ts';
import { Page, putPage } from '../page.ts';
import {
  allocSkb,
  freeSkb,
  MAX_SKB_FRAGS,
  SKBTX_SHARED_FRAG,
  skbAddFrag,
  skbClone,
  skbCloned,
  skbCoalesce,
  TCPCB_EVER_RETRANS,
  TCPCB_LOST,
  TCPCB_SACKED_RETRANS,
  TCPHDR_ACK,
  TCPHDR_FIN,
  TCPHDR_PSH,
  type SkBuff,
  type SkbOwner,
} from '../skb.ts';
import { pskbCopy, pskbTrimHead, skbSplit, skbUnclone } from '../skb-ops.ts';
import { RenoCongestion } from './congestion.ts';
import { RtoEstimator } from './rto.ts';
import { after, before, seqAdd, seqDiff } from './seq.ts';

/** Size of the per-socket page that sendmsg copies into (sk_page_frag: a 32 KiB compound page). */
export const SK_PAGE_FRAG_SIZE = 32768;

export class TcpError extends Error {
  override readonly name = 'TcpError';
  constructor(
    readonly conn: number,
    message: string,
  ) {
    super(`tcp conn ${conn}: ${message}`);
  }
}

export interface TcpSenderOptions {
  mss: number;
  /** Initial congestion window, segments. */
  initCwnd: number;
  rtoMin: number;
  rtoMax: number;
  rtoInitial: number;
  /** Initial send sequence number (ISS); the first data byte is iss + 1. */
  iss: number;
  /** Segments per write-queue skb (TSO/GSO); 1 = every skb at most one MSS. */
  gsoSegs: number;
  /** The peer's initial receive window (from its SYN-ACK). */
  peerWindow: number;
}

/** Where the sender's segments go. */
export interface SenderPort {
  xmit(skb: SkBuff): void;
  probe(seq: number): void;
}

type CaState = 'open' | 'recovery' | 'loss';

/** Why a segment is sent again: the retransmit timer, the third duplicate ACK, or a hole found in recovery. */
type RetransmitReason = 'rto' | 'fast' | 'recovery';

/** sk_page_frag: the page sendmsg copies into, shared by consecutive writes. */
class PageFrag {
  page: Page | null = null;
  offset = 0;

  /** Room in the current page, refilling (and dropping our ref on the old page) when empty. */
  room(): number {
    if (this.page === null || this.offset === this.page.buf.length) {
      if (this.page !== null) putPage(this.page);
      this.page = Page.alloc(SK_PAGE_FRAG_SIZE);
      this.offset = 0;
    }
    return this.page.buf.length - this.offset;
  }

  release(): void {
    if (this.page !== null) putPage(this.page);
    this.page = null;
  }
}

/**
 * tcp_fragment: splits `skb` after `len` bytes; returns the second part, [seq + len, endSeq),
 * which takes the FIN and PSH flags and the loss marks. A cloned skb is unshared first (its
 * clone keeps the old SharedInfo); skb_split then moves the frags past the cut and references
 * a straddling frag once more.
 */
export function tcpFragment(skb: SkBuff, len: number): SkBuff {
  if (len <= 0 || len >= skb.len) throw new TcpError(skb.owner.conn, `tcp_fragment of skb ${skb.id} at ${len} of ${skb.len}`);
  skbUnclone(skb);
  const buff = allocSkb(Math.max(0, skb.headlen - len), skb.owner);
  skbSplit(skb, buff, len);
  buff.seq = seqAdd(skb.seq, len);
  buff.endSeq = skb.endSeq;
  skb.endSeq = buff.seq;
  buff.tcpFlags = skb.tcpFlags;
  skb.tcpFlags &= ~(TCPHDR_FIN | TCPHDR_PSH);
  buff.sacked = skb.sacked;
  buff.when = skb.when;
  return buff;
}

/**
 * Invariants:
 * - `queue` holds, in sequence order, every skb not yet fully ACKed: [0, sendHead) have been
 *   transmitted (the retransmit queue), [sendHead, end) not yet (tcp_send_head on). The
 *   originals stay here; only clones (or pskb copies) leave.
 * - sndUna ≤ sndNxt ≤ writeSeq; queue[0].seq = sndUna when the queue is not empty.
 * - lostOut / retransOut: sequence space of transmitted skbs marked TCPCB_LOST, and of those
 *   also TCPCB_SACKED_RETRANS; in flight = (sndNxt − sndUna) − lostOut + retransOut.
 */
export class TcpSender implements DestructorOwner {
  readonly queue: SkBuff[] = [];
  private sendHead = 0;
  sndUna: number;
  sndNxt: number;
  writeSeq: number;
  sndWnd: number;
  readonly cc: RenoCongestion;
  readonly rtt: RtoEstimator;
  private state: CaState = 'open';
  private highSeq: number;
  private dupAcks = 0;
  lostOut = 0;
  retransOut = 0;
  private corked = false;
  finQueued = false;
  private readonly sizeGoal: number;
  private readonly pageFrag = new PageFrag();
  private readonly rtoTimer: Timer;
  private readonly persistTimer: Timer;
  private persistBackoff = 0;
  /** Destructors carried by this connection that have not fired yet. */
  pinnedDestructors = 0;
  retransmits = 0;
  fastRetransmits = 0;
  timeouts = 0;
  /** Zero-window probes sent. */
  probes = 0;
  /** Duplicate ACKs received (all of them, not only the run since the last new ACK). */
  dupAcksIn = 0;
  /** Called whenever ACK processing may have completed the connection's work. */
  onProgress: () => void = () => {};

  constructor(
    private readonly o: TcpSenderOptions,
    private readonly clock: Clock,
    private readonly bus: NetstackBus | null,
    private readonly owner: SkbOwner,
    private readonly port: SenderPort,
  ) {
    this.sndUna = this.sndNxt = this.writeSeq = seqAdd(o.iss, 1);
    this.highSeq = o.iss;
    this.sndWnd = o.peerWindow;
    this.sizeGoal = o.mss * o.gsoSegs;
    this.cc = new RenoCongestion(o.mss, o.initCwnd);
    this.rtt = new RtoEstimator({ rtoMin: o.rtoMin, rtoMax: o.rtoMax, rtoInitial: o.rtoInitial, granularity: 1 });
    this.rtoTimer = new Timer(clock, () => this.tcpRetransmitTimer());
    this.persistTimer = new Timer(clock, () => this.tcpProbeTimer());
  }

  /** tcp_packets_in_flight, in sequence space. */
  get inFlight(): number {
    return seqDiff(this.sndNxt, this.sndUna) - this.lostOut + this.retransOut;
  }

  /** Everything queued (FIN included, if any) has been ACKed. */
  get idle(): boolean {
    return this.queue.length === 0 && this.sndUna === this.writeSeq;
  }

  /** The skbs this sender holds (write and retransmit queue). */
  heldSkbs(): readonly SkBuff[] {
    return this.queue;
  }

  /** Counts `d` among this connection's pinned destructors (until it fires), if no one has yet. */
  adopt(d: FragDestructor): void {
    if (d.owner !== null) return;
    d.owner = this;
    this.pinnedDestructors++;
  }

  destructorFired(d: FragDestructor): void {
    this.pinnedDestructors--;
    const bus = this.bus;
    if (bus !== null && bus.wants('destructor-fire')) bus.emit({ type: 'destructor-fire', conn: this.owner.conn, t: this.clock.now(), destructor: d.id });
  }

  /** tcp_sendmsg: copies `data` into the socket's page frag; returns the bytes queued. */
  sendmsg(data: Buffer, more = false): number {
    this.assertOpen('sendmsg');
    let off = 0;
    while (off < data.length) {
      const skb = this.tailSkb();
      const pf = this.pageFrag;
      const copy = Math.min(data.length - off, this.sizeGoal - skb.len, pf.room());
      const page = pf.page!;
      data.copy(page.buf, pf.offset, off, off + copy);
      if (!skbCoalesce(skb, page, pf.offset, copy, null)) {
        if (skb.nrFrags === MAX_SKB_FRAGS) {
          this.newWriteSkb();
          continue;
        }
        skbAddFrag(skb, page, pf.offset, copy, null);
      }
      pf.offset += copy;
      skb.endSeq = seqAdd(skb.endSeq, copy);
      this.writeSeq = seqAdd(this.writeSeq, copy);
      off += copy;
    }
    this.corked = more;
    this.tcpPush();
    return data.length;
  }

  /**
   * do_tcp_sendpages with the series' destructor argument: queues `size` bytes of `page` by
   * reference. With a destructor, each new frag slot references it (not the page); the caller
   * keeps its bias reference and drops it when it has sent everything. `more` (MSG_MORE)
   * holds back a partly filled last skb.
   */
  sendpage(page: Page, offset: number, size: number, destructor: FragDestructor | null, more = false): number {
    this.assertOpen('sendpage');
    if (destructor !== null) this.adopt(destructor);
    let off = offset;
    let left = size;
    while (left > 0) {
      const skb = this.tailSkb();
      const copy = Math.min(left, this.sizeGoal - skb.len);
      if (!skbCoalesce(skb, page, off, copy, destructor)) {
        if (skb.nrFrags === MAX_SKB_FRAGS) {
          this.newWriteSkb();
          continue;
        }
        skbAddFrag(skb, page, off, copy, destructor);
      }
      skb.shinfo.txFlags |= SKBTX_SHARED_FRAG;
      skb.endSeq = seqAdd(skb.endSeq, copy);
      this.writeSeq = seqAdd(this.writeSeq, copy);
      off += copy;
      left -= copy;
    }
    this.corked = more;
    this.tcpPush();
    return size;
  }

  /** tcp_send_fin: the FIN rides on the last unsent skb, or on an empty one of its own. */
  close(): void {
    if (this.finQueued) return;
    this.finQueued = true;
    const last = this.queue[this.queue.length - 1];
    const skb = last !== undefined && this.queue.length > this.sendHead ? last : this.newWriteSkb();
    skb.tcpFlags |= TCPHDR_FIN;
    skb.endSeq = seqAdd(skb.endSeq, 1);
    this.writeSeq = seqAdd(this.writeSeq, 1);
    this.corked = false;
    this.tcpPush();
  }

  /**
   * tcp_write_queue_purge: the connection is gone (reset, or a peer that stopped answering).
   * Every queued skb is freed, and the frag references with it; nothing more can be sent.
   */
  purge(): void {
    for (const skb of this.queue) freeSkb(skb);
    this.queue.length = 0;
    this.sendHead = 0;
    this.finQueued = true;
    this.sndUna = this.sndNxt = this.writeSeq;
    this.lostOut = this.retransOut = 0;
    this.release();
  }

  /** Drops what only the sender holds for itself (the page-frag page), once drained. */
  release(): void {
    this.pageFrag.release();
    this.rtoTimer.stop();
    this.persistTimer.stop();
  }

  private assertOpen(op: string): void {
    if (this.finQueued) throw new TcpError(this.owner.conn, `${op} after close`);
  }

  /** The unsent last skb if it has room, else a new one. */
  private tailSkb(): SkBuff {
    const last = this.queue[this.queue.length - 1];
    if (last !== undefined && this.queue.length > this.sendHead && last.len < this.sizeGoal) return last;
    return this.newWriteSkb();
  }

  private newWriteSkb(): SkBuff {
    const skb = allocSkb(0, this.owner);
    skb.seq = skb.endSeq = this.writeSeq;
    skb.tcpFlags = TCPHDR_ACK;
    this.queue.push(skb);
    return skb;
  }

  private tcpPush(): void {
    const last = this.queue[this.queue.length - 1];
    if (!this.corked && last !== undefined && this.queue.length > this.sendHead) last.tcpFlags |= TCPHDR_PSH;
    this.tcpWriteXmit();
  }

  /**
   * tcp_write_xmit: sends new skbs while the congestion and receive windows allow. No Nagle
   * (TCP_NODELAY, as RPC transports set it): a partly filled skb goes at once unless the
   * caller corked it with `more` (MSG_MORE).
   */
  private tcpWriteXmit(): void {
    const mss = this.o.mss;
    while (this.sendHead < this.queue.length) {
      const skb = this.queue[this.sendHead]!;
      const isLast = this.sendHead === this.queue.length - 1;
      if (this.corked && isLast && skb.len < this.sizeGoal && !(skb.tcpFlags & TCPHDR_FIN)) break;
      const cwndRoom = this.cc.cwnd - this.inFlight;
      if (cwndRoom <= 0) break;
      const wndRoom = seqDiff(seqAdd(this.sndUna, this.sndWnd), skb.seq);
      let limit = Math.min(wndRoom, skb.len > mss ? Math.max(cwndRoom, mss) : skb.len);
      if (skb.len > limit) {
        // tso_fragment: send what fits, in whole MSS, and leave the rest queued.
        limit = Math.floor(Math.max(0, limit) / mss) * mss;
        if (limit === 0) {
          if (this.sndNxt === this.sndUna) this.persistTimer.arm(this.probeInterval());
          break;
        }
        this.tcpFragment(this.sendHead, limit);
      }
      this.tcpTransmitSkb(skb, null);
      this.sendHead++;
      this.sndNxt = skb.endSeq;
      if (!this.rtoTimer.armed) this.rtoTimer.arm(this.rtt.rto);
    }
  }

  private probeInterval(): number {
    return Math.min(this.rtt.rto * 2 ** this.persistBackoff, this.o.rtoMax);
  }

  /** tcp_probe_timer: the window is closed and nothing is in flight to elicit an update. */
  private tcpProbeTimer(): void {
    if (this.sndNxt !== this.sndUna || this.sendHead === this.queue.length) return;
    this.probes++;
    this.port.probe(seqAdd(this.sndUna, -1));
    this.persistBackoff++;
    this.persistTimer.arm(this.probeInterval());
  }

  /**
   * tcp_transmit_skb: sends a clone, or a pskb copy when an earlier clone of this skb is still
   * alive (in the device queue) — the original stays queued either way.
   */
  private tcpTransmitSkb(skb: SkBuff, reason: RetransmitReason | null): void {
    skb.when = this.clock.now();
    const out = skbCloned(skb) ? pskbCopy(skb) : skbClone(skb);
    const bus = this.bus;
    if (bus !== null) {
      const type = reason !== null ? 'segment-retransmit' : 'segment-transmit';
      if (bus.wants(type)) {
        const destructors: number[] = [];
        // Distinct, in frag order: a reply's skbs mostly carry its one destructor.
        for (const f of skb.shinfo.frags) if (f.destructor !== null && !destructors.includes(f.destructor.id)) destructors.push(f.destructor.id);
        const base = { conn: this.owner.conn, t: skb.when, seq: skb.seq, end: skb.endSeq, skb: out.id, destructors };
        bus.emit(reason !== null ? { type: 'segment-retransmit', ...base, reason } : { type: 'segment-transmit', ...base });
      }
    }
    this.port.xmit(out);
  }

  /** __tcp_retransmit_skb: trims what was ACKed meanwhile, cuts to one MSS, transmits again. */
  private tcpRetransmitSkb(index: number, reason: RetransmitReason): void {
    const skb = this.queue[index]!;
    if (skb.len > this.o.mss) this.tcpFragment(index, this.o.mss);
    const len = seqDiff(skb.endSeq, skb.seq);
    if (skb.sacked & TCPCB_LOST && !(skb.sacked & TCPCB_SACKED_RETRANS)) this.retransOut += len;
    skb.sacked |= TCPCB_SACKED_RETRANS | TCPCB_EVER_RETRANS;
    this.retransmits++;
    this.tcpTransmitSkb(skb, reason);
  }

  /** tcp_fragment on queue[index], keeping the queue and the send head in order. */
  private tcpFragment(index: number, len: number): void {
    const buff = tcpFragment(this.queue[index]!, len);
    this.queue.splice(index + 1, 0, buff);
    if (index < this.sendHead) this.sendHead++;
  }

  /** tcp_trim_head: drops the ACKed front of a partly ACKed skb (references of eaten frags go now). */
  private tcpTrimHead(skb: SkBuff, len: number): void {
    pskbTrimHead(skb, len);
    skb.seq = seqAdd(skb.seq, len);
    if (skb.sacked & TCPCB_LOST) this.lostOut -= len;
    if (skb.sacked & TCPCB_SACKED_RETRANS) this.retransOut -= len;
  }

  /** Marks queue[index] lost (tcp_mark_head_lost for the head). */
  private markLost(skb: SkBuff): void {
    if (skb.sacked & TCPCB_LOST) return;
    skb.sacked |= TCPCB_LOST;
    this.lostOut += seqDiff(skb.endSeq, skb.seq);
  }

  /**
   * tcp_clean_rtx_queue: frees every skb the ACK covers, trims a partly covered head. RTT is
   * sampled only when the ACK covers no retransmitted data (Karn; FLAG_RETRANS_DATA_ACKED):
   * after a timeout it may also cover skbs marked lost but never resent, whose send time
   * predates the timeout.
   */
  private tcpCleanRtxQueue(ack: number): void {
    let rtt = -1;
    let retransAcked = false;
    const now = this.clock.now();
    let acked = 0;
    while (acked < this.sendHead) {
      const skb = this.queue[acked]!;
      if (skb.sacked & TCPCB_EVER_RETRANS) retransAcked = true;
      const sampled = !retransAcked;
      if (!after(skb.endSeq, ack)) {
        if (sampled) rtt = now - skb.when;
        const len = seqDiff(skb.endSeq, skb.seq);
        if (skb.sacked & TCPCB_LOST) this.lostOut -= len;
        if (skb.sacked & TCPCB_SACKED_RETRANS) this.retransOut -= len;
        acked++;
        freeSkb(skb);
        continue;
      }
      if (after(ack, skb.seq)) {
        if (sampled) rtt = now - skb.when;
        this.tcpTrimHead(skb, seqDiff(ack, skb.seq));
      }
      break;
    }
    if (acked > 0) {
      this.queue.splice(0, acked);
      this.sendHead -= acked;
    }
    if (rtt >= 0 && !retransAcked) this.rtt.sample(rtt);
  }

  /**
   * tcp_ack: processes one ACK from the peer. `withData`: the segment carried data or a FIN,
   * which makes it no duplicate ACK (RFC 5681 2) whatever its acknowledgment number.
   */
  tcpAck(ack: number, window: number, withData = false): void {
    if (after(ack, this.sndNxt) || before(ack, this.sndUna)) return;
    const dup = !withData && ack === this.sndUna && this.sndNxt !== this.sndUna && window === this.sndWnd;
    const bus = this.bus;
    if (bus !== null && bus.wants('ack')) bus.emit({ type: 'ack', conn: this.owner.conn, t: this.clock.now(), ack, window, dup, lost: false });
    // tcp_may_update_window: our peer sends no data, so only a newer ACK or a wider window
    // may move it — an old ACK overtaken by a newer one must not shrink the window back.
    if (after(ack, this.sndUna) || window > this.sndWnd) this.sndWnd = window;
    if (after(ack, this.sndUna)) {
      const acked = seqDiff(ack, this.sndUna);
      this.tcpCleanRtxQueue(ack);
      this.sndUna = ack;
      this.dupAcks = 0;
      this.persistBackoff = 0;
      this.rtt.resetBackoff();
      if (this.state === 'recovery') {
        if (!before(ack, this.highSeq)) {
          this.cc.onRecoveryExit(this.inFlight);
          this.state = 'open';
        } else {
          // RFC 6582: a partial ACK means the next hole is lost too.
          this.cc.onPartialAck(acked);
          const head = this.queue[0];
          if (head !== undefined && this.sendHead > 0 && !(head.sacked & TCPCB_SACKED_RETRANS)) {
            this.markLost(head);
            this.tcpRetransmitSkb(0, 'recovery');
          }
        }
      } else {
        this.cc.onAck(acked);
        if (this.state === 'loss' && !before(ack, this.highSeq)) this.state = 'open';
      }
      if (this.sndUna === this.sndNxt) this.rtoTimer.cancel();
      else this.rtoTimer.arm(this.rtt.rto);
    } else if (dup) {
      this.dupAcks++;
      this.dupAcksIn++;
      if (this.state === 'recovery') this.cc.onRecoveryDupAck();
      else if (this.dupAcks === 3 && this.state === 'open' && !before(ack, this.highSeq)) this.tcpFastRetransmit();
    }
    this.tcpXmitRetransmitQueue();
    this.tcpWriteXmit();
    this.onProgress();
  }

  /** RFC 5681 3.2: third duplicate ACK — retransmit the head, enter fast recovery. */
  private tcpFastRetransmit(): void {
    const head = this.queue[0]!;
    this.cc.onFastRetransmit(seqDiff(this.sndNxt, this.sndUna));
    this.state = 'recovery';
    this.highSeq = this.sndNxt;
    this.fastRetransmits++;
    const bus = this.bus;
    if (bus !== null && bus.wants('fast-retransmit')) {
      bus.emit({ type: 'fast-retransmit', conn: this.owner.conn, t: this.clock.now(), seq: head.seq, end: head.endSeq });
    }
    this.markLost(head);
    this.tcpRetransmitSkb(0, 'fast');
    this.rtoTimer.arm(this.rtt.rto);
  }

  /** tcp_xmit_retransmit_queue: retransmits skbs marked lost, oldest first, while cwnd allows. */
  private tcpXmitRetransmitQueue(): void {
    if (this.lostOut <= this.retransOut) return;
    const reason = this.state === 'loss' ? 'rto' : 'recovery';
    for (let i = 0; i < this.sendHead; i++) {
      const skb = this.queue[i]!;
      if (!(skb.sacked & TCPCB_LOST) || skb.sacked & TCPCB_SACKED_RETRANS) continue;
      if (this.inFlight >= this.cc.cwnd) break;
      this.tcpRetransmitSkb(i, reason);
    }
  }

  /** tcp_retransmit_timer: RFC 6298 5.4–5.6 and RFC 5681 loss window; everything outstanding is presumed lost. */
  private tcpRetransmitTimer(): void {
    if (this.sndUna === this.sndNxt) return;
    this.timeouts++;
    const flight = seqDiff(this.sndNxt, this.sndUna);
    if (this.state !== 'loss') this.cc.onRto(flight);
    else this.cc.cwnd = this.o.mss;
    this.rtt.onTimeout();
    const bus = this.bus;
    if (bus !== null && bus.wants('rto')) {
      bus.emit({ type: 'rto', conn: this.owner.conn, t: this.clock.now(), seq: this.sndUna, rto: this.rtt.rto, backoff: this.rtt.backoff });
    }
    this.state = 'loss';
    this.highSeq = this.sndNxt;
    this.dupAcks = 0;
    this.retransOut = 0;
    this.lostOut = 0;
    for (let i = 0; i < this.sendHead; i++) {
      const skb = this.queue[i]!;
      skb.sacked = (skb.sacked & ~TCPCB_SACKED_RETRANS) | TCPCB_LOST;
      this.lostOut += seqDiff(skb.endSeq, skb.seq);
    }
    this.rtoTimer.arm(this.rtt.rto);
    this.tcpXmitRetransmitQueue();
  }
}
