/** A fixed-bucket histogram (Prometheus semantics: cumulative `le` buckets, plus sum and count). */
export interface HistogramSnapshot {
  /** Upper bounds; the last bucket (+Inf) is `count`. */
  bounds: number[];
  /** Non-cumulative counts, one per bound plus one for +Inf. */
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(private readonly bounds: readonly number[]) {
    for (let i = 1; i < bounds.length; i++) {
      if (!(bounds[i]! > bounds[i - 1]!)) throw new RangeError(`histogram bounds must increase: ${bounds.join(', ')}`);
    }
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(v: number): void {
    let i = 0;
    while (i < this.bounds.length && v > this.bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }

  snapshot(): HistogramSnapshot {
    return { bounds: [...this.bounds], counts: [...this.counts], sum: this.sum, count: this.count };
  }
}
