import { RecordError } from './errors.ts';

/** RFC 5531 §11: the high bit of a record mark says "last fragment"; the low 31 bits are its length. */
export const LAST_FRAGMENT = 0x8000_0000;
export const MAX_FRAGMENT_LENGTH = 0x7fff_ffff;

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
 * A record made of one fragment that arrived in one chunk is returned as a view, without copying.
 */
export class RecordDecoder {
  private header = Buffer.alloc(4);
  private headerHave = 0;
  /** Bytes still to read in the current fragment; -1 while reading a header. */
  private fragLeft = -1;
  private lastFrag = false;
  private parts: Buffer[] = [];
  private recordLen = 0;

  constructor(private readonly maxRecord: number) {}

  /** Bytes held for a record not yet complete. */
  get buffered(): number {
    return this.recordLen + this.headerHave;
  }

  /** Feeds a chunk; returns the records it completed. Throws RecordError on a framing violation. */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
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
      if (take > 0) {
        this.parts.push(chunk.subarray(pos, pos + take));
        this.recordLen += take;
        this.fragLeft -= take;
        pos += take;
      }
      if (this.fragLeft === 0) {
        this.fragLeft = -1;
        if (this.lastFrag) out.push(this.takeRecord());
      }
    }
    return out;
  }

  private takeRecord(): Buffer {
    const rec = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.recordLen);
    this.parts = [];
    this.recordLen = 0;
    return rec;
  }
}
