/**
 * The bytes of one XDR stream as the buffers they arrived in, in order: knfsd's `struct xdr_buf`,
 * whose head and pages are the memory the RPC record was received into. A record read from a
 * socket in 64 KiB pieces stays in those pieces; a 1 MiB WRITE's payload is written to the file
 * from them (XdrReader.opaqueSegments), never joined into one buffer first.
 */
export class XdrBuf {
  readonly length: number;

  constructor(readonly parts: readonly Buffer[]) {
    let n = 0;
    for (const p of parts) n += p.length;
    this.length = n;
  }

  /** Bytes [from, to) as one Buffer: a view when they lie in one part, else a copy. */
  subarray(from: number, to = this.length): Buffer {
    const end = Math.min(to, this.length);
    if (from >= end) return Buffer.alloc(0);
    let i = 0;
    let base = 0;
    while (from >= base + this.parts[i]!.length) base += this.parts[i++]!.length;
    const first = this.parts[i]!;
    if (end <= base + first.length) return first.subarray(from - base, end - base);
    const out = Buffer.allocUnsafe(end - from);
    let have = first.copy(out, 0, from - base);
    while (have < out.length) have += this.parts[++i]!.copy(out, have, 0, out.length - have);
    return out;
  }

  /** All the bytes in one Buffer (a copy unless there is one part): for consumers that need them joined. */
  flat(): Buffer {
    return this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts as Buffer[], this.length);
  }
}

/** What an XdrReader reads: one contiguous buffer, or a record still in its received pieces. */
export type XdrInput = Buffer | XdrBuf;
