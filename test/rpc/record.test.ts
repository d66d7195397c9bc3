import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LAST_FRAGMENT, RecordDecoder } from '../../rpc/record.ts';
import { RecordError } from '../../rpc/errors.ts';
import { XdrBuf } from '../../xdr/xdr-buf.ts';

/** One record as fragments of the given sizes, the last one flagged; its body bytes count up. */
function encode(fragSizes: number[], seed = 0): { wire: Buffer; body: Buffer } {
  const body = Buffer.alloc(fragSizes.reduce((a, b) => a + b, 0));
  for (let i = 0; i < body.length; i++) body[i] = (i * 7 + seed) & 0xff;
  const parts: Buffer[] = [];
  let at = 0;
  fragSizes.forEach((n, i) => {
    const mark = Buffer.alloc(4);
    mark.writeUInt32BE(((i === fragSizes.length - 1 ? LAST_FRAGMENT : 0) | n) >>> 0);
    parts.push(mark, body.subarray(at, at + n));
    at += n;
  });
  return { wire: Buffer.concat(parts), body };
}

/** Splits `wire` into fresh chunks (their own backing store each, as a socket read gives them). */
function chunked(wire: Buffer, sizes: (i: number) => number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < wire.length; i++) {
    const n = Math.min(Math.max(1, sizes(i)), wire.length - at);
    const c = Buffer.alloc(n);
    wire.copy(c, 0, at, at + n);
    out.push(c);
    at += n;
  }
  return out;
}

/** The decoder's bound on memory held for a partial record. */
const heldBound = (d: RecordDecoder) => 2 * d.buffered + 8192;

describe('RecordDecoder', () => {
  it('reassembles records split anywhere, fragments of any size, and keeps memory within 2× the bytes held', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.integer({ min: 0, max: 20_000 }), { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 4 }),
        fc.array(fc.integer({ min: 1, max: 9000 }), { minLength: 1, maxLength: 16 }),
        (records, splits) => {
          const encoded = records.map((r, i) => encode(r, i));
          const d = new RecordDecoder(1 << 20);
          const got: Buffer[] = [];
          for (const c of chunked(Buffer.concat(encoded.map((e) => e.wire)), (i) => splits[i % splits.length]!)) {
            got.push(...d.push(c));
            expect(d.retained).toBeLessThanOrEqual(heldBound(d));
          }
          expect(got.map((b) => b.toString('hex'))).toEqual(encoded.map((e) => e.body.toString('hex')));
          expect(d.buffered).toBe(0);
          expect(d.partialSince).toBeNull();
        },
      ),
      { numRuns: 200 },
    );
  });

  it('holds a record sent a byte at a time in one growing buffer: memory ≤ 2× bytes held, not a Buffer per byte', () => {
    const { wire, body } = encode([880_000]);
    const d = new RecordDecoder(2 << 20);
    let maxRatio = 0;
    let out: Buffer[] = [];
    for (let at = 0; at < wire.length; at++) {
      out = d.push(wire.subarray(at, at + 1));
      if (d.buffered > 65536) maxRatio = Math.max(maxRatio, d.retained / d.buffered);
      if (d.retained > heldBound(d)) throw new Error(`${d.retained} bytes held for ${d.buffered}`);
    }
    expect(out).toHaveLength(1);
    expect(out[0]!.equals(body)).toBe(true);
    // Doubling: between 1× and 2× of what is held once past the initial capacity.
    expect(maxRatio).toBeGreaterThan(1);
    expect(maxRatio).toBeLessThanOrEqual(2);
  });

  it('keeps large pieces of a partial record as views of their chunks (no copy until the record completes)', () => {
    const { wire, body } = encode([1 << 20]);
    const d = new RecordDecoder(2 << 20);
    const chunks = chunked(wire, () => 65536);
    for (const c of chunks.slice(0, -1)) expect(d.push(c)).toEqual([]);
    // Each piece's own chunk is referenced, nothing more.
    expect(d.retained).toBe(d.buffered + 4);
    const [rec] = d.push(chunks.at(-1)!);
    expect(rec!.equals(body)).toBe(true);
    expect(d.retained).toBe(0);
  });

  it('pushScattered hands each record over in the pieces it arrived in: the same bytes as push, no copy of large pieces', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.integer({ min: 0, max: 70_000 }), { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 3 }),
        fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 8 }),
        (records, splits) => {
          const encoded = records.map((r, i) => encode(r, i));
          const chunks = chunked(Buffer.concat(encoded.map((e) => e.wire)), (i) => splits[i % splits.length]!);
          const d = new RecordDecoder(1 << 20);
          const got = chunks.flatMap((c) => d.pushScattered(c));
          expect(got.map((r) => (r instanceof XdrBuf ? r.flat() : r).toString('hex'))).toEqual(encoded.map((e) => e.body.toString('hex')));
          expect(got.map((r) => r.length)).toEqual(encoded.map((e) => e.body.length));
          expect(d.buffered).toBe(0);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('pushScattered gives a 1 MiB record read in 64 KiB chunks as views of the chunks', () => {
    const { wire, body } = encode([1 << 20]);
    const chunks = chunked(wire, () => 65536);
    const d = new RecordDecoder(2 << 20);
    const recs = chunks.flatMap((c) => d.pushScattered(c));
    expect(recs).toHaveLength(1);
    const rec = recs[0]!;
    expect(rec).toBeInstanceOf(XdrBuf);
    // 16 chunks of 64 KiB hold the mark and all but the last 4 bytes; those 4 are collapsed (copied).
    const parts = (rec as XdrBuf).parts;
    expect(chunks).toHaveLength(17);
    expect(parts).toHaveLength(17);
    parts.slice(0, 16).forEach((p, i) => expect(p.buffer).toBe(chunks[i]!.buffer));
    expect((rec as XdrBuf).flat().equals(body)).toBe(true);
  });

  it('returns a record that arrived whole in one chunk as a view of it', () => {
    const { wire } = encode([100]);
    const two = Buffer.concat([wire, wire]);
    const recs = new RecordDecoder(4096).push(two);
    expect(recs).toHaveLength(2);
    expect(recs[0]!.buffer).toBe(two.buffer);
    expect(recs[1]!.byteOffset).toBe(two.byteOffset + 108);
  });

  it('refuses a fragment that would take the record past the limit before buffering its body', () => {
    const d = new RecordDecoder(1000);
    d.push(encode([600, 0]).wire.subarray(0, 604));
    const next = Buffer.alloc(4);
    next.writeUInt32BE(500);
    expect(() => d.push(next)).toThrow(RecordError);
  });

  it('dates the partial record held: from its first byte, renewed when a record completes, cleared when none is held', () => {
    let now = 1000;
    const d = new RecordDecoder(1 << 20, () => now);
    const a = encode([3000]).wire;
    d.push(a.subarray(0, 2));
    expect(d.partialSince).toBe(1000);
    now = 2000;
    d.push(a.subarray(2, 10));
    expect(d.partialSince).toBe(1000);
    now = 3000;
    // The first record completes and a second one starts in the same chunk.
    d.push(Buffer.concat([a.subarray(10), a.subarray(0, 5)]));
    expect(d.partialSince).toBe(3000);
    now = 4000;
    d.push(a.subarray(5));
    expect(d.partialSince).toBeNull();
    expect(d.retained).toBe(0);
  });
});
