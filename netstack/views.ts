/** Views of bytes [from, from + n) of a list of buffers (payload chunks), without copying. */
export function sliceViews(views: readonly Buffer[], from: number, n: number): Buffer[] {
  const out: Buffer[] = [];
  for (const v of views) {
    if (n === 0) break;
    if (from >= v.length) {
      from -= v.length;
      continue;
    }
    const take = Math.min(n, v.length - from);
    out.push(from === 0 && take === v.length ? v : v.subarray(from, from + take));
    from = 0;
    n -= take;
  }
  return out;
}
