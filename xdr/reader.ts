import { XdrError } from './error.ts';
import { XdrBuf, type XdrInput } from './xdr-buf.ts';

/** RFC 4506 §3: every item occupies a multiple of four bytes. */
export const XDR_UNIT = 4;

export function xdrPad(len: number): number {
  return (XDR_UNIT - (len % XDR_UNIT)) % XDR_UNIT;
}

/**
 * Bounds-checked RFC 4506 decoder over one Buffer or an XdrBuf (a record in the pieces it was
 * received in). Opaque data is returned as a view of the input (never copied), so a decoded WRITE
 * payload still points into the received record; of an XdrBuf, an item that straddles two pieces
 * is gathered into a buffer of its own (xdr_inline_decode's scratch buffer), and opaqueSegments
 * returns a payload as views of the pieces. Offsets count from the start of the whole input.
 * Every failure throws XdrError; nothing else escapes.
 */
export class XdrReader {
  private pos: number;
  private readonly end: number;
  /** The piece being read, and the input offset of its first byte. */
  private buf: Buffer;
  private base = 0;
  /** Of an XdrBuf: its pieces (a straddled item's gathered bytes replace the pieces they came from), and the index of `buf`. */
  private readonly segs: Buffer[] | null;
  private seg = 0;

  constructor(input: XdrInput, start = 0, end = input.length) {
    if (start < 0 || end > input.length || start > end) throw new XdrError('reader window out of range', start);
    if (input instanceof XdrBuf) {
      this.segs = [...input.parts];
      this.buf = this.segs[0] ?? Buffer.alloc(0);
    } else {
      this.segs = null;
      this.buf = input;
    }
    this.pos = start;
    this.end = end;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /**
   * Consumes `n` bytes and returns where they start in `buf`, contiguous. It may make another
   * buffer `buf`: read `this.buf` only after calling it.
   */
  private need(n: number, what: string): number {
    if (n > this.end - this.pos) throw new XdrError(`truncated ${what} (need ${n}, have ${this.end - this.pos})`, this.pos);
    const at = this.pos - this.base;
    this.pos += n;
    return at + n <= this.buf.length ? at : this.gather(at, n);
  }

  /** Makes `buf` the piece holding offset `at` (relative to `base`) and returns the offset in it. */
  private advance(at: number): number {
    const segs = this.segs!;
    while (at >= this.buf.length && this.seg + 1 < segs.length) {
      at -= this.buf.length;
      this.base += this.buf.length;
      this.buf = segs[++this.seg]!;
    }
    return at;
  }

  /** The `n` bytes at `at` that run past `buf` (only of an XdrBuf): in the next piece, or gathered from several. */
  private gather(at: number, n: number): number {
    at = this.advance(at);
    if (at + n <= this.buf.length) return at;
    const segs = this.segs!;
    const start = this.base + at;
    const out = Buffer.allocUnsafe(n);
    let have = this.buf.copy(out, 0, at);
    let i = this.seg;
    while (have < n) {
      const next = segs[++i]!;
      const take = next.copy(out, have, 0, n - have);
      have += take;
      // The rest of a piece partly taken is the next piece.
      if (take < next.length) segs[i--] = next.subarray(take);
    }
    segs[i] = out;
    this.seg = i;
    this.buf = out;
    this.base = start;
    return 0;
  }

  uint32(): number {
    const at = this.need(4, 'unsigned int');
    return this.buf.readUInt32BE(at);
  }

  int32(): number {
    const at = this.need(4, 'int');
    return this.buf.readInt32BE(at);
  }

  /** RFC 4506 §4.5 unsigned hyper. */
  uint64(): bigint {
    const at = this.need(8, 'unsigned hyper');
    return this.buf.readBigUInt64BE(at);
  }

  int64(): bigint {
    const at = this.need(8, 'hyper');
    return this.buf.readBigInt64BE(at);
  }

  /** Unsigned hyper that must fit a JS number exactly (offsets, sizes): larger values are an error. */
  uint64Number(): number {
    const at = this.pos;
    const v = this.uint64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new XdrError('unsigned hyper exceeds 2^53', at);
    return Number(v);
  }

  /** RFC 4506 §4.4: a boolean is an enum that is exactly 0 or 1. */
  bool(): boolean {
    const at = this.pos;
    const v = this.uint32();
    if (v > 1) throw new XdrError(`bool must be 0 or 1, got ${v}`, at);
    return v === 1;
  }

  /** Enum restricted to the given set of values. */
  enumOf<T extends number>(allowed: ReadonlySet<number>, what: string): T {
    const at = this.pos;
    const v = this.int32();
    if (!allowed.has(v)) throw new XdrError(`invalid ${what} ${v}`, at);
    return v as T;
  }

  /** Fixed-length opaque: `len` bytes plus padding; the padding must be zero (RFC 4506 §4.9). */
  fixedOpaque(len: number): Buffer {
    const at = this.need(len, 'fixed opaque');
    const data = this.buf.subarray(at, at + len);
    this.padding(len);
    return data;
  }

  /** The zero bytes that pad an item of `len` bytes to a multiple of four. */
  private padding(len: number): void {
    const pad = xdrPad(len);
    if (pad === 0) return;
    const padAt = this.need(pad, 'opaque padding');
    for (let i = 0; i < pad; i++) {
      if (this.buf[padAt + i] !== 0) throw new XdrError('non-zero opaque padding', this.pos - pad + i);
    }
  }

  /**
   * Variable-length opaque<max> as views of the input's pieces, in order, never copied: a WRITE's
   * payload as knfsd's svc_fill_write_vector hands it to the file (one view per piece it spans).
   */
  opaqueSegments(max: number): Buffer[] {
    const at = this.pos;
    const len = this.uint32();
    if (len > max) throw new XdrError(`opaque length ${len} exceeds maximum ${max}`, at);
    if (len + xdrPad(len) > this.end - this.pos) throw new XdrError(`truncated opaque (need ${len + xdrPad(len)}, have ${this.end - this.pos})`, this.pos);
    const out: Buffer[] = [];
    let off = this.pos - this.base;
    for (let left = len; left > 0; ) {
      if (off >= this.buf.length) off = this.advance(off);
      const take = Math.min(left, this.buf.length - off);
      out.push(this.buf.subarray(off, off + take));
      off += take;
      left -= take;
    }
    this.pos += len;
    this.padding(len);
    return out;
  }

  /** Variable-length opaque<max>. */
  opaque(max: number): Buffer {
    const at = this.pos;
    const len = this.uint32();
    if (len > max) throw new XdrError(`opaque length ${len} exceeds maximum ${max}`, at);
    return this.fixedOpaque(len);
  }

  /** string<max>, decoded as UTF-8 (RFC 4506 says ASCII; NFS names are bytes, see opaque()). */
  string(max: number): string {
    return this.opaque(max).toString('utf8');
  }

  /** Variable-length array<max> of items decoded by `item`. */
  array<T>(max: number, item: (r: XdrReader) => T): T[] {
    const at = this.pos;
    const n = this.uint32();
    if (n > max) throw new XdrError(`array length ${n} exceeds maximum ${max}`, at);
    // Each element takes at least four bytes: reject counts the input cannot hold before allocating.
    if (n * XDR_UNIT > this.remaining) throw new XdrError(`array length ${n} exceeds remaining input`, at);
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(item(this));
    return out;
  }

  /** Optional data (RFC 4506 §4.19): a bool, then the item when true. */
  optional<T>(item: (r: XdrReader) => T): T | undefined {
    return this.bool() ? item(this) : undefined;
  }

  /** Discriminated union: reads the discriminant and hands it to `arm`. */
  union<T>(arm: (discriminant: number, r: XdrReader) => T): T {
    return arm(this.int32(), this);
  }

  /** The rest of the window, as a view (of an XdrBuf, gathered when it spans pieces). */
  rest(): Buffer {
    const n = this.end - this.pos;
    const at = this.need(n, 'rest');
    return this.buf.subarray(at, at + n);
  }

  skip(n: number): void {
    if (n > this.end - this.pos) throw new XdrError(`truncated skipped bytes (need ${n}, have ${this.end - this.pos})`, this.pos);
    this.pos += n;
  }
}
