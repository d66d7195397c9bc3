import { XdrBuf } from '../xdr/xdr-buf.ts';
import { RecordError } from './errors.ts';

/** RFC 5531 §11: the high bit of a record mark says "last fragment"; the low 31 bits are its length. */
export const LAST_FRAGMENT = 0x8000_0000;
export const MAX_FRAGMENT_LENGTH = 0x7fff_ffff;

/**
 * Pieces of a partial record shorter than this are copied into a growing buffer rather than kept
 * as views: a Buffer object and its backing store cost ~100 bytes however few bytes they hold, so a
 * client sending one byte per segment would otherwise cost ~80× what it sends.
 */
export const MIN_VIEW_BYTES = 4096;
/** First capacity of the growing buffer; it doubles from there, never past what the record can hold. */
const INITIAL_CAPACITY = 4096;

/**
 * A received record: one Buffer when it arrived whole in one chunk, else the pieces it arrived in
 * (an XdrBuf), never joined — as knfsd leaves a request in the pages it was received into.
 */
export type RpcRecord = Buffer | XdrBuf;

/** A record mark for one last fragment of `length` bytes. */
export function recordMark(length: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE((LAST_FRAGMENT | length) >>> 0, 0);
  return b;
}

/**
 * Reassembles RPC records from a TCP byte stream (RFC 5531 §11 record marking).
 *
 * Memory is bounded by `maxRecord`: a fragment header that would take the record past it is refused
 * before any of its body is buffered, and the caller closes the connection. Zero-length fragments
 * are legal (an empty non-last fragment contributes nothing; an empty last one ends the record).
 *
 * Memory held is proportional to bytes held (`retained` ≤ 2 × `buffered` + 8 KiB): a record that
 * arrives whole in one chunk is returned as a view without copying; of a partial record, large
 * pieces that fill most of their chunk are kept as views, and small ones are appended to a buffer
 * that doubles as it fills (capped at what the record can still hold), like a socket's receive queue
 * collapsing small skbs (tcp_collapse). `push` joins a record's pieces into one Buffer;
 * `pushScattered` hands them over as they are (a server's calls: see RpcRecord).
 */
export class RecordDecoder {
  private header = Buffer.alloc(4);
  private headerHave = 0;
  /** Bytes still to read in the current fragment; -1 while reading a header. */
  private fragLeft = -1;
  private lastFrag = false;
  /** The partial record: views and filled growing buffers, in order. */
  private parts: Buffer[] = [];
  /** The growing buffer being filled (its first `tailLen` bytes), not yet in `parts`. */
  private tail: Buffer | null = null;
  private tailLen = 0;
  private recordLen = 0;
  private retainedParts = 0;
  /** When the partial record now held began (clock of `now`), null when none is. */
  partialSince: number | null = null;

  constructor(
    private readonly maxRecord: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Bytes held for a record not yet complete. */
  get buffered(): number {
    return this.recordLen + this.headerHave;
  }

  /** Memory referenced for the partial record: backing stores of kept views, capacity of the growing buffer. */
  get retained(): number {
    return this.retainedParts + (this.tail?.length ?? 0) + (this.headerHave > 0 ? 4 : 0);
  }

  /** Feeds a chunk; returns the records it completed, each in one Buffer. Throws RecordError on a framing violation. */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    this.feed(chunk, out, true);
    return out;
  }

  /** As push, but a record that arrived in several pieces comes as those pieces (no copy). */
  pushScattered(chunk: Buffer): RpcRecord[] {
    const out: RpcRecord[] = [];
    this.feed(chunk, out, false);
    return out;
  }

  private feed(chunk: Buffer, out: RpcRecord[], join: boolean): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.fragLeft < 0) {
        const take = Math.min(4 - this.headerHave, chunk.length - pos);
        chunk.copy(this.header, this.headerHave, pos, pos + take);
        this.headerHave += take;
        pos += take;
        if (this.headerHave < 4) break;
        this.headerHave = 0;
        const mark = this.header.readUInt32BE(0);
        this.lastFrag = (mark & LAST_FRAGMENT) !== 0;
        this.fragLeft = mark & MAX_FRAGMENT_LENGTH;
        if (this.recordLen + this.fragLeft > this.maxRecord) {
          throw new RecordError(`record of at least ${this.recordLen + this.fragLeft} bytes exceeds the limit of ${this.maxRecord}`, {
            size: this.recordLen + this.fragLeft,
            limit: this.maxRecord,
          });
        }
      }
      const take = Math.min(this.fragLeft, chunk.length - pos);
      const completes = take === this.fragLeft && this.lastFrag;
      if (take > 0) {
        const piece = chunk.subarray(pos, pos + take);
        if (completes && this.recordLen === 0) out.push(piece);
        else this.append(piece);
        this.fragLeft -= take;
        pos += take;
      }
      if (this.fragLeft === 0) {
        this.fragLeft = -1;
        if (this.lastFrag) {
          if (this.recordLen > 0 || take === 0) out.push(this.takeRecord(join));
          // A record completed in this chunk: whatever partial one follows started now.
          this.partialSince = null;
        }
      }
    }
    if (this.buffered === 0 && this.fragLeft < 0) this.partialSince = null;
    else this.partialSince ??= this.now();
  }

  private append(piece: Buffer): void {
    // What the record can still take, this piece included: the rest of its last fragment, or
    // (before the last fragment's header) anything up to the record limit.
    const room = this.lastFrag ? this.fragLeft : this.maxRecord - this.recordLen;
    this.recordLen += piece.length;
    if (piece.length >= MIN_VIEW_BYTES && 2 * piece.length >= piece.buffer.byteLength) {
      this.closeTail();
      this.parts.push(piece);
      this.retainedParts += piece.buffer.byteLength;
      return;
    }
    const need = this.tailLen + piece.length;
    if (!this.tail || need > this.tail.length) {
      const doubled = Math.max(2 * (this.tail?.length ?? 0), INITIAL_CAPACITY);
      const grown = Buffer.allocUnsafeSlow(Math.max(need, Math.min(doubled, this.tailLen + room)));
      if (this.tail) this.tail.copy(grown, 0, 0, this.tailLen);
      this.tail = grown;
    }
    piece.copy(this.tail, this.tailLen);
    this.tailLen = need;
  }

  /** The growing buffer becomes a part (a view of what it holds); the next small piece starts a new one. */
  private closeTail(): void {
    if (!this.tail) return;
    this.parts.push(this.tail.subarray(0, this.tailLen));
    this.retainedParts += this.tail.length;
    this.tail = null;
    this.tailLen = 0;
  }

  private takeRecord(join: boolean): RpcRecord {
    this.closeTail();
    const rec = this.parts.length === 1 ? this.parts[0]! : join || this.parts.length === 0 ? Buffer.concat(this.parts, this.recordLen) : new XdrBuf(this.parts);
    this.parts = [];
    this.retainedParts = 0;
    this.recordLen = 0;
    return rec;
  }
}
