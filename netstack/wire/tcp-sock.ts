/**
 * One TCP connection on the wire (a full socket after the handshake): tcp_rcv_state_process and
 * tcp_validate_incoming for what arrives, the model's TcpSender for what leaves — its write
 * queue, clones, device queue (the Path), RTO and fast retransmit, now driven by the real peer's
 * ACKs — and the model's TcpReceiver for the peer's byte stream (reassembly, delayed ACKs,
 * window). Frames are built when a segment leaves the device queue, from the bytes the pages
 * hold at that moment, so the checksum is valid for whatever they carry.
 */
import type { Clock } from '../clock.ts';
import { connectionStats, type ConnectionStats } from '../connection.ts';
import type { FragDestructor } from '../destructor.ts';
import type { NetstackBus } from '../events.ts';
import type { Page } from '../page.ts';
import { Path, type PathFaults, type WireSegment } from '../path.ts';
import { Rng } from '../rng.ts';
import type { SharedInfo, SkbOwner } from '../skb.ts';
import { orphanFrags } from '../skb-ops.ts';
import { TcpReceiver, type DeliverFn } from '../tcp/receiver.ts';
import { TcpSender } from '../tcp/sender.ts';
import { after, before, seqAdd } from '../tcp/seq.ts';
import type { Ipv4 } from './addr.ts';
import { TCPHDR_ACK, TCPHDR_FIN, TCPHDR_PSH, TCPHDR_RST, TCPHDR_SYN, type TcpOut, type TcpSegment } from './tcp-header.ts';

export type TcpState = 'ESTABLISHED' | 'CLOSE_WAIT' | 'LAST_ACK' | 'FIN_WAIT1' | 'FIN_WAIT2' | 'CLOSING' | 'TIME_WAIT' | 'CLOSED';

/** Why a segment of an existing connection was dropped (each one a counter). */
export type TcpSockDrop = 'tcp-out-of-window' | 'tcp-bad-rst' | 'tcp-syn-in-window' | 'tcp-no-ack' | 'tcp-ack-unsent' | 'tcp-ack-too-old' | 'tcp-data-after-fin' | 'fault-loss' | 'fault-ack-loss';

export interface TcpEndpoint {
  addr: Ipv4;
  port: number;
}

export interface WireTcpSockOptions {
  conn: number;
  clock: Clock;
  bus: NetstackBus | null;
  seed: number;
  local: TcpEndpoint;
  remote: TcpEndpoint;
  iss: number;
  irs: number;
  /** Send MSS: the smaller of the peer's MSS option and ours. */
  mss: number;
  /** The peer's window scale shift (0 when either side did not offer the option). */
  sndWscale: number;
  /** Our window scale shift (0 when the peer did not offer the option). */
  rcvWscale: number;
  /** The window of the peer's handshake ACK, already scaled. */
  peerWindow: number;
  rcvWnd: number;
  /** Segments per write-queue skb, cut to the MSS at the device (GSO). */
  gsoSegs: number;
  initCwnd: number;
  rtoMin: number;
  rtoMax: number;
  rtoInitial: number;
  ackDelay: number;
  faults: Partial<PathFaults>;
  /** Puts a TCP segment on the wire (the stack adds IPv4 and Ethernet). */
  output: (h: TcpOut, payload: Buffer | null) => void;
  drop: (reason: TcpSockDrop) => void;
  /** Takes the connection out of the stack's table (before `onClosed`). */
  unhash: () => void;
}

export class WireTcpSock {
  state: TcpState = 'ESTABLISHED';
  readonly sender: TcpSender;
  readonly receiver: TcpReceiver;
  readonly path: Path;
  private readonly rng: Rng;
  private readonly owner: SkbOwner;
  /** When the sender last saw its unacknowledged data move forward (the user timeout counts from it). */
  lastProgress: number;
  /** When anything last arrived (the idle timeout counts from it). */
  lastInput: number;
  /** When TIME_WAIT began. */
  timeWaitSince = 0;
  inboundDrops = 0;
  /** The largest window the peer has offered (max_window), for the ACK acceptability check. */
  private maxSndWnd: number;
  inboundAckDrops = 0;
  /** The in-order byte stream from the peer; call done() when finished with the chunks. */
  onData: DeliverFn = (_c, done) => done();
  /** The peer sent its FIN: no more data will come. */
  onPeerFin: () => void = () => {};
  /** The connection is gone (after FIN exchange, reset or timeout). Called once. */
  onClosed: (why: string) => void = () => {};
  private closedNotified = false;

  constructor(readonly o: WireTcpSockOptions) {
    const { clock, bus, conn } = o;
    this.rng = new Rng(o.seed);
    this.owner = { conn, bus, clock };
    this.lastProgress = this.lastInput = clock.now();
    this.maxSndWnd = o.peerWindow;
    this.path = new Path(clock, this.rng, bus, conn, o.faults, 'copy', o.mss, {
      segmentArrived: (seg) => this.xmitSegment(seg),
      ackArrived: () => undefined,
      datagramArrived: () => undefined,
      segmentSent: () => undefined,
      released: () => undefined,
    });
    this.sender = new TcpSender(
      { mss: o.mss, initCwnd: o.initCwnd, rtoMin: o.rtoMin, rtoMax: o.rtoMax, rtoInitial: o.rtoInitial, iss: o.iss, gsoSegs: o.gsoSegs, peerWindow: o.peerWindow },
      clock,
      bus,
      this.owner,
      { xmit: (skb) => this.path.xmit(skb), probe: (seq) => this.path.xmitProbe(seq) },
    );
    this.sender.onProgress = () => this.ackProgress();
    this.receiver = new TcpReceiver(
      { mss: o.mss, rcvWnd: o.rcvWnd, delayedAck: true, ackDelay: o.ackDelay, staleWindow: 0, irs: o.irs, keepFirstCopies: true },
      clock,
      bus,
      conn,
      (a) => this.sendAck(a.ack, a.window),
      (chunks, done) => this.onData(chunks, done),
      () => this.peerFin(),
      () => undefined,
    );
  }

  get id(): number {
    return this.o.conn;
  }

  /** We have not sent our FIN (nor lost the connection): sendmsg and sendpage may queue more. */
  get canSend(): boolean {
    return this.state === 'ESTABLISHED' || this.state === 'CLOSE_WAIT';
  }

  sendmsg(data: Buffer, more = false): number {
    return this.sender.sendmsg(data, more);
  }

  sendpage(page: Page, offset: number, size: number, destructor: FragDestructor | null, more = false): number {
    return this.sender.sendpage(page, offset, size, destructor, more);
  }

  /** tcp_close: a FIN after everything queued; the state machine does the rest. */
  close(): void {
    if (this.state === 'ESTABLISHED') this.state = 'FIN_WAIT1';
    else if (this.state === 'CLOSE_WAIT') this.state = 'LAST_ACK';
    else return;
    this.sender.close();
  }

  /** tcp_reset / tcp_send_active_reset: drops everything queued, sends a RST unless the peer reset us. */
  abort(why: string, sendRst: boolean): void {
    if (this.state === 'CLOSED') return;
    if (sendRst) this.output(this.sender.sndNxt, this.receiver.rcvNxt, TCPHDR_RST | TCPHDR_ACK, null);
    this.finish(why);
  }

  /** tcp_validate_incoming + tcp_rcv_state_process for one segment of this connection. */
  input(seg: TcpSegment): void {
    if (this.state === 'CLOSED') return;
    const now = this.o.clock.now();
    this.lastInput = now;
    if (this.state === 'TIME_WAIT') return this.timeWaitInput(seg);
    const len = seg.payload.length;
    const fin = (seg.flags & TCPHDR_FIN) !== 0;
    const faults = this.path.faults;
    if (len > 0 || fin ? this.rng.chance(faults.loss) : this.rng.chance(faults.ackLoss)) {
      if (len > 0 || fin) this.inboundDrops++;
      else this.inboundAckDrops++;
      return this.o.drop(len > 0 || fin ? 'fault-loss' : 'fault-ack-loss');
    }
    if (!this.acceptable(seg)) {
      if (!(seg.flags & TCPHDR_RST)) this.sendAckNow();
      return this.o.drop('tcp-out-of-window');
    }
    if (seg.flags & TCPHDR_RST) {
      // RFC 5961 3.2: only a RST at exactly rcv_nxt resets; one elsewhere in the window gets a challenge ACK.
      if (seg.seq === this.receiver.rcvNxt) return this.finish('reset by peer');
      this.sendAckNow();
      return this.o.drop('tcp-bad-rst');
    }
    if (seg.flags & TCPHDR_SYN) {
      // RFC 5961 4.2: a SYN on a synchronized connection gets a challenge ACK.
      this.sendAckNow();
      return this.o.drop('tcp-syn-in-window');
    }
    if (!(seg.flags & TCPHDR_ACK)) return this.o.drop('tcp-no-ack');
    if (after(seg.ack, this.sender.sndNxt)) {
      this.sendAckNow();
      return this.o.drop('tcp-ack-unsent');
    }
    // RFC 5961 5.2: an ACK older than the largest window the peer ever offered is blind injection.
    if (before(seg.ack, seqAdd(this.sender.sndUna, -this.maxSndWnd))) {
      this.sendAckNow();
      return this.o.drop('tcp-ack-too-old');
    }
    this.sender.tcpAck(seg.ack, seg.window << this.o.sndWscale, len > 0 || fin);
    this.maxSndWnd = Math.max(this.maxSndWnd, this.sender.sndWnd);
    // tcpAck may have finished the connection (the ACK of our FIN in LAST_ACK).
    if ((this.state as TcpState) === 'CLOSED' || (len === 0 && !fin)) return;
    if (this.state === 'CLOSE_WAIT' || this.state === 'CLOSING' || this.state === 'LAST_ACK') {
      // The peer's FIN came already: new data after it is a protocol violation; an old copy is re-ACKed.
      if (after(seqAdd(seg.seq, len), seqAdd(this.receiver.rcvNxt, -1))) this.o.drop('tcp-data-after-fin');
      this.sendAckNow();
      return;
    }
    this.receiver.receive({ seq: seg.seq, len, flags: fin ? TCPHDR_FIN : 0, payload: len > 0 ? [seg.payload] : [], skb: null });
  }

  /** tcp_sequence (RFC 9293 3.10.7.4): does any of the segment fall in the receive window? */
  private acceptable(seg: TcpSegment): boolean {
    const rcvNxt = this.receiver.rcvNxt;
    const wnd = Math.max(this.receiver.window, 1);
    const segLen = seg.payload.length + (seg.flags & TCPHDR_FIN ? 1 : 0);
    const wndEnd = seqAdd(rcvNxt, wnd);
    if (segLen === 0) return !before(seg.seq, rcvNxt) && before(seg.seq, wndEnd);
    return before(seg.seq, wndEnd) && after(seqAdd(seg.seq, segLen), rcvNxt);
  }

  private timeWaitInput(seg: TcpSegment): void {
    if (seg.flags & TCPHDR_RST) return;
    // tcp_timewait_state_process: a retransmitted FIN (our ACK was lost) is ACKed again.
    this.sendAckNow();
  }

  /** The peer's FIN was received in order. */
  private peerFin(): void {
    if (this.state === 'ESTABLISHED') this.state = 'CLOSE_WAIT';
    else if (this.state === 'FIN_WAIT1') this.state = this.sender.idle ? 'TIME_WAIT' : 'CLOSING';
    else if (this.state === 'FIN_WAIT2') this.state = 'TIME_WAIT';
    if (this.state === 'TIME_WAIT') this.enterTimeWait();
    this.onPeerFin();
  }

  /** After every ACK: progress for the user timeout, and the states that wait for our FIN's ACK. */
  private ackProgress(): void {
    this.lastProgress = this.o.clock.now();
    if (!this.sender.idle || !this.sender.finQueued) return;
    if (this.state === 'FIN_WAIT1') this.state = 'FIN_WAIT2';
    else if (this.state === 'CLOSING') this.enterTimeWait();
    else if (this.state === 'LAST_ACK') this.finish('closed');
  }

  private enterTimeWait(): void {
    this.state = 'TIME_WAIT';
    this.timeWaitSince = this.o.clock.now();
    this.sender.release();
  }

  /** The connection is over: queued data freed (destructors fire as their last clone goes), the owner told once. */
  private finish(why: string): void {
    this.state = 'CLOSED';
    this.sender.purge();
    this.o.unhash();
    if (this.closedNotified) return;
    this.closedNotified = true;
    this.onClosed(why);
  }

  /** Ends TIME_WAIT (the stack's timer, or a new SYN reusing the port pair). */
  expireTimeWait(): void {
    if (this.state === 'TIME_WAIT') this.finish('time-wait over');
  }

  /** A data segment (or a window probe) left the device queue and crossed the simulated link. */
  private xmitSegment(seg: WireSegment): void {
    if (this.state === 'CLOSED') return;
    const payload = seg.len > 0 ? (seg.payload.length === 1 ? seg.payload[0]! : Buffer.concat(seg.payload)) : null;
    this.output(seg.seq, this.receiver.rcvNxt, TCPHDR_ACK | (seg.flags & (TCPHDR_FIN | TCPHDR_PSH)), payload);
  }

  private sendAck(ack: number, window: number): void {
    if (this.state === 'CLOSED') return;
    this.output(this.sender.sndNxt, ack, TCPHDR_ACK, null, window);
  }

  private sendAckNow(): void {
    this.sendAck(this.receiver.rcvNxt, this.receiver.window);
  }

  private output(seq: number, ack: number, flags: number, payload: Buffer | null, window = this.receiver.window): void {
    const { local, remote } = this.o;
    this.o.output({ src: local.addr, dst: remote.addr, srcPort: local.port, dstPort: remote.port, seq, ack, flags, window: window >> this.o.rcvWscale }, payload);
  }

  // The reply path's view of a connection (what it asks a TcpPair too).

  setFaults(partial: Partial<PathFaults>): void {
    this.path.setFaults(partial);
  }

  dropNext(n = 1): void {
    this.path.dropNext(n);
  }

  holdNext(ms: number, n = 1): void {
    this.path.holdNext(ms, n);
  }

  /** skb_orphan_frags on the write/retransmit queue and the device queue (the pin budget's lever). */
  orphanFrags(): number {
    const seen = new Set<SharedInfo>();
    let n = 0;
    for (const skb of [...this.sender.heldSkbs(), ...this.path.deviceQueue.skbs()]) {
      if (seen.has(skb.shinfo)) continue;
      seen.add(skb.shinfo);
      n += orphanFrags(skb);
    }
    return n;
  }

  /** Nothing queued and nothing left in the device queue. */
  get drained(): boolean {
    return this.sender.idle && this.path.deviceQueue.length === 0;
  }

  stats(): ConnectionStats {
    return connectionStats(this.sender, {
      staleRetransmits: 0,
      orphanedFrags: 0,
      delivered: this.receiver.delivered,
      duplicates: this.receiver.duplicates,
      drops: this.path.drops + this.inboundDrops,
      ackDrops: this.inboundAckDrops,
      deviceQueue: this.path.deviceQueue.length,
    });
  }
}
