import { xdrPad } from './reader.ts';

const ZERO_PAD = Buffer.alloc(4);
const U32_MAX = 0xffff_ffff;
const U32_MAX_N = 0xffff_ffffn;
const RUN_SIZE = 256;
/** Each new run doubles the last, up to this: a 30 KiB READDIRPLUS reply is ~8 chunks, not ~120. */
const MAX_RUN_SIZE = 64 * 1024;

/**
 * RFC 4506 encoder producing a chunk list: small header runs written in place, plus Buffers
 * appended by reference with `opaqueRef`/`ref`. The chunks go to writev (or to skb fragments)
 * without being joined, so a READ reply's data is never copied by the encoder.
 */
export class XdrWriter {
  private readonly chunks: Buffer[] = [];
  private run: Buffer;
  private runStart = 0;
  private runPos = 0;
  private total = 0;

  constructor(runSize = RUN_SIZE) {
    this.run = Buffer.allocUnsafe(runSize);
  }

  /** Bytes encoded so far. */
  get length(): number {
    return this.total;
  }

  private reserve(n: number): number {
    if (this.runPos + n > this.run.length) this.newRun(Math.max(Math.min(this.run.length * 2, MAX_RUN_SIZE), n));
    const at = this.runPos;
    this.runPos += n;
    this.total += n;
    return at;
  }

  /** Ends the current run and starts one of `size` bytes. */
  private newRun(size: number): void {
    this.flushRun();
    this.run = Buffer.allocUnsafe(size);
    this.runStart = 0;
    this.runPos = 0;
  }

  private flushRun(): void {
    if (this.runPos > this.runStart) this.chunks.push(this.run.subarray(this.runStart, this.runPos));
    this.runStart = this.runPos;
  }

  uint32(v: number): this {
    // reserve() may switch to a new run: take the offset before touching this.run.
    const at = this.reserve(4);
    this.run.writeUInt32BE(v >>> 0, at);
    return this;
  }

  int32(v: number): this {
    const at = this.reserve(4);
    this.run.writeInt32BE(v | 0, at);
    return this;
  }

  uint64(v: bigint | number): this {
    const at = this.reserve(8);
    // Sizes, inode numbers and offsets mostly fit 32 bits: two word writes then make no BigInt
    // (writeBigUInt64BE allocates two while splitting); anything else, and range errors, go there.
    if (typeof v === 'bigint' ? v >= 0n && v <= U32_MAX_N : Number.isInteger(v) && v >= 0 && v <= U32_MAX) {
      this.run.writeUInt32BE(0, at);
      this.run.writeUInt32BE(Number(v), at + 4);
    } else {
      this.run.writeBigUInt64BE(BigInt(v), at);
    }
    return this;
  }

  int64(v: bigint | number): this {
    const at = this.reserve(8);
    this.run.writeBigInt64BE(BigInt(v), at);
    return this;
  }

  bool(v: boolean): this {
    return this.uint32(v ? 1 : 0);
  }

  /** Fixed-length opaque, copied into the current run (for small items: handles, verifiers). */
  fixedOpaque(data: Uint8Array): this {
    const pad = xdrPad(data.length);
    const at = this.reserve(data.length + pad);
    this.run.set(data, at);
    this.run.fill(0, at + data.length, at + data.length + pad);
    return this;
  }

  /**
   * Makes the next `n` bytes go into one run: an encoder that knows its size (a listing of kept
   * entries) allocates once instead of once per doubling.
   */
  room(n: number): this {
    if (this.runPos + n > this.run.length) this.newRun(n);
    return this;
  }

  /** Bytes that are already XDR (a whole number of items, so a multiple of four long), copied. */
  encoded(data: Uint8Array): this {
    if (data.length % 4 !== 0) throw new RangeError(`xdr: encoded bytes must be a multiple of 4 long, not ${data.length}`);
    const at = this.reserve(data.length);
    this.run.set(data, at);
    return this;
  }

  /** Variable-length opaque, copied (small items). */
  opaque(data: Uint8Array): this {
    return this.uint32(data.length).fixedOpaque(data);
  }

  /** Variable-length opaque whose bytes are referenced, not copied (READ data, READLINK paths). */
  opaqueRef(data: Buffer): this {
    this.uint32(data.length);
    this.ref(data);
    return this.pad(data.length);
  }

  /** Variable-length opaque whose bytes are the concatenation of `parts`, each referenced (page-cache slices). */
  opaqueRefs(parts: readonly Buffer[]): this {
    let len = 0;
    for (const p of parts) len += p.length;
    this.uint32(len);
    for (const p of parts) this.ref(p);
    return this.pad(len);
  }

  /** The zero bytes that complete an item of `len` bytes to a multiple of four. */
  private pad(len: number): this {
    const pad = xdrPad(len);
    if (pad) this.ref(ZERO_PAD.subarray(0, pad));
    return this;
  }

  /** Appends `data` by reference. The caller keeps it unchanged until the chunks are consumed. */
  ref(data: Buffer): this {
    if (data.length === 0) return this;
    this.flushRun();
    this.chunks.push(data);
    this.total += data.length;
    return this;
  }

  string(s: string): this {
    return this.opaque(Buffer.from(s, 'utf8'));
  }

  array<T>(items: readonly T[], item: (w: this, v: T) => void): this {
    this.uint32(items.length);
    for (const v of items) item(this, v);
    return this;
  }

  optional<T>(v: T | undefined, item: (w: this, v: T) => void): this {
    if (v === undefined) return this.bool(false);
    this.bool(true);
    item(this, v);
    return this;
  }

  /** The encoded chunks, in order. The writer may keep appending afterwards. */
  toChunks(): Buffer[] {
    this.flushRun();
    return this.chunks.slice();
  }

  /** One contiguous Buffer (copies; for small messages and tests). */
  toBuffer(): Buffer {
    const chunks = this.toChunks();
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.total);
  }
}
