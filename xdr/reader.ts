import { XdrError } from './error.ts';

/** RFC 4506 §3: every item occupies a multiple of four bytes. */
export const XDR_UNIT = 4;

export function xdrPad(len: number): number {
  return (XDR_UNIT - (len % XDR_UNIT)) % XDR_UNIT;
}

/**
 * Bounds-checked RFC 4506 decoder over one Buffer. Opaque data is returned as a view of the input
 * (never copied), so a decoded WRITE payload still points into the received record.
 * Every failure throws XdrError; nothing else escapes.
 */
export class XdrReader {
  private pos: number;
  private readonly end: number;

  constructor(
    private readonly buf: Buffer,
    start = 0,
    end = buf.length,
  ) {
    if (start < 0 || end > buf.length || start > end) throw new XdrError('reader window out of range', start);
    this.pos = start;
    this.end = end;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number, what: string): number {
    if (n > this.end - this.pos) throw new XdrError(`truncated ${what} (need ${n}, have ${this.end - this.pos})`, this.pos);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  uint32(): number {
    return this.buf.readUInt32BE(this.need(4, 'unsigned int'));
  }

  int32(): number {
    return this.buf.readInt32BE(this.need(4, 'int'));
  }

  /** RFC 4506 §4.5 unsigned hyper. */
  uint64(): bigint {
    return this.buf.readBigUInt64BE(this.need(8, 'unsigned hyper'));
  }

  int64(): bigint {
    return this.buf.readBigInt64BE(this.need(8, 'hyper'));
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
    const pad = xdrPad(len);
    const padAt = this.need(pad, 'opaque padding');
    for (let i = 0; i < pad; i++) {
      if (this.buf[padAt + i] !== 0) throw new XdrError('non-zero opaque padding', padAt + i);
    }
    return this.buf.subarray(at, at + len);
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

  /** The rest of the window, as a view. */
  rest(): Buffer {
    const at = this.pos;
    this.pos = this.end;
    return this.buf.subarray(at, this.end);
  }

  skip(n: number): void {
    this.need(n, 'skipped bytes');
  }
}
