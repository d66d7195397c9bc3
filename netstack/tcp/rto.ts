/**
 * RFC 6298 retransmission timer: SRTT/RTTVAR smoothing, RTO = SRTT + max(G, 4·RTTVAR) clamped
 * to [rtoMin, rtoMax], exponential backoff on expiry. Samples come only from segments never
 * retransmitted (Karn); the caller enforces that.
 */
export interface RtoOptions {
  rtoMin: number;
  rtoMax: number;
  rtoInitial: number;
  /** Clock granularity G (ms). */
  granularity: number;
}

export class RtoEstimator {
  srtt = 0;
  rttvar = 0;
  private base: number;
  backoff = 0;
  private sampled = false;

  constructor(private readonly o: RtoOptions) {
    this.base = o.rtoInitial;
  }

  /** The current timeout, backoff included. */
  get rto(): number {
    return Math.min(this.base * 2 ** this.backoff, this.o.rtoMax);
  }

  sample(rtt: number): void {
    if (!this.sampled) {
      this.srtt = rtt;
      this.rttvar = rtt / 2;
      this.sampled = true;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - rtt);
      this.srtt = 0.875 * this.srtt + 0.125 * rtt;
    }
    const rto = this.srtt + Math.max(this.o.granularity, 4 * this.rttvar);
    this.base = Math.min(Math.max(rto, this.o.rtoMin), this.o.rtoMax);
  }

  /** RFC 6298 5.5: the timer expired; double the timeout (up to rtoMax). */
  onTimeout(): void {
    if (this.base * 2 ** this.backoff < this.o.rtoMax) this.backoff++;
  }

  /** New data was acknowledged: the backed-off value gives way to the computed one (5.7). */
  resetBackoff(): void {
    this.backoff = 0;
  }
}
