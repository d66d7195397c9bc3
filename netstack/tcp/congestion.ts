/**
 * Reno congestion control in bytes (RFC 5681), with NewReno's partial-ACK handling (RFC 6582):
 * slow start below ssthresh (by bytes ACKed, RFC 3465 without its per-ACK limit, as Linux), one SMSS per cwnd of ACKed bytes above it; fast recovery inflates
 * cwnd by one SMSS per duplicate ACK and deflates on the ACK that ends it.
 */
export class RenoCongestion {
  cwnd: number;
  ssthresh = Infinity;
  /** Bytes ACKed since cwnd last grew in congestion avoidance. */
  private bytesAcked = 0;

  constructor(
    private readonly mss: number,
    initCwnd: number,
  ) {
    this.cwnd = initCwnd * mss;
  }

  /**
   * New data ACKed outside recovery. Slow start grows by every byte the ACK covers, as Linux's
   * tcp_slow_start adds each segment a stretch ACK (GRO, delayed ACKs) acknowledges, up to
   * ssthresh; what is left over counts toward congestion avoidance.
   */
  onAck(acked: number): void {
    if (this.cwnd < this.ssthresh) {
      const grow = Math.min(acked, this.ssthresh - this.cwnd);
      this.cwnd += grow;
      acked -= grow;
      if (acked === 0) return;
    }
    this.bytesAcked += acked;
    if (this.bytesAcked >= this.cwnd) {
      this.bytesAcked -= this.cwnd;
      this.cwnd += this.mss;
    }
  }

  /** RFC 5681 (4): ssthresh = max(FlightSize / 2, 2·SMSS). */
  private halve(flightSize: number): void {
    this.ssthresh = Math.max(Math.floor(flightSize / 2), 2 * this.mss);
    this.bytesAcked = 0;
  }

  /** Third duplicate ACK: enter fast recovery. */
  onFastRetransmit(flightSize: number): void {
    this.halve(flightSize);
    this.cwnd = this.ssthresh + 3 * this.mss;
  }

  /** Each further duplicate ACK in recovery means a segment left the network. */
  onRecoveryDupAck(): void {
    this.cwnd += this.mss;
  }

  /** RFC 6582 3.2 (5): partial ACK — deflate by the amount ACKed, add back one SMSS. */
  onPartialAck(acked: number): void {
    this.cwnd = Math.max(this.cwnd - acked + this.mss, this.mss);
  }

  /** RFC 6582 3.2 (6), option 1: full ACK ends recovery. */
  onRecoveryExit(flightSize: number): void {
    this.cwnd = Math.min(this.ssthresh, Math.max(flightSize, this.mss) + this.mss);
  }

  /** RFC 5681 (4)-(5): RTO — halve ssthresh, restart from the loss window (one SMSS). */
  onRto(flightSize: number): void {
    this.halve(flightSize);
    this.cwnd = this.mss;
  }
}
