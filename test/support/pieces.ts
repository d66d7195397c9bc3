import { XdrBuf } from '../../xdr/xdr-buf.ts';

/**
 * `buf` cut at `cuts` (offsets in any order, repeats allowed, those outside [0, length] ignored),
 * each piece copied into memory of its own, as separate socket reads give a record.
 */
export function cutInPieces(buf: Buffer, cuts: readonly number[]): XdrBuf {
  const at = [...new Set(cuts.filter((c) => c >= 0 && c <= buf.length))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let from = 0;
  for (const to of [...at, buf.length]) {
    const piece = Buffer.allocUnsafeSlow(to - from);
    buf.copy(piece, 0, from, to);
    pieces.push(piece);
    from = to;
  }
  return new XdrBuf(pieces);
}
