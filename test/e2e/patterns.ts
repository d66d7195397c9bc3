/** File contents whose every page says what it should be, so a copy read by a client can be checked page by page. */

export const FILE_BYTES = 4 << 20;
export const PAGE = 4096;

/** a.bin: every 4-byte word is its own offset. */
export function offsetPattern(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let o = 0; o < size; o += 4) b.writeUInt32BE(o, o);
  return b;
}

/** c.bin, version v: every word is (v << 24) | word index, so a page mixing versions is torn. */
export function versioned(size: number, v: number, at = 0): Buffer {
  const b = Buffer.alloc(size);
  for (let o = 0; o < size; o += 4) b.writeUInt32BE(((v << 24) | ((at + o) / 4)) >>> 0, o);
  return b;
}

/** Pages of a copy of a.bin that are not a.bin's. */
export function badOffsetPages(copy: Buffer, want: Buffer): number {
  let bad = 0;
  for (let p = 0; p < want.length; p += PAGE) if (!copy.subarray(p, p + PAGE).equals(want.subarray(p, p + PAGE))) bad++;
  return bad + (copy.length === want.length ? 0 : 1);
}

/** Pages of a copy of c.bin that were never the file's content: a wrong index, or versions mixed within the page. */
export function tornPages(copy: Buffer, size = FILE_BYTES): number {
  let bad = copy.length === size ? 0 : 1;
  for (let p = 0; p + PAGE <= copy.length; p += PAGE) {
    const v = copy.readUInt32BE(p) >>> 24;
    for (let o = p; o < p + PAGE; o += 4) {
      const w = copy.readUInt32BE(o);
      if (w >>> 24 !== v || (w & 0xffffff) !== o / 4) {
        bad++;
        break;
      }
    }
  }
  return bad;
}

