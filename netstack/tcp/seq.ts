/** 32-bit sequence arithmetic (RFC 793 §3.3): comparisons are modulo 2^32, valid within 2^31. */

export function seqAdd(seq: number, n: number): number {
  return (seq + n) >>> 0;
}

/** a - b as a signed distance. */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

export function before(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

export function after(a: number, b: number): boolean {
  return ((b - a) | 0) < 0;
}
