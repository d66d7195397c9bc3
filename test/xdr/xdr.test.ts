import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { XdrBuf, XdrError, XdrReader, XdrWriter } from '../../xdr/index.ts';
import { cutInPieces } from '../support/pieces.ts';

type Item =
  | { t: 'u32'; v: number }
  | { t: 'i32'; v: number }
  | { t: 'u64'; v: bigint }
  | { t: 'i64'; v: bigint }
  | { t: 'bool'; v: boolean }
  | { t: 'fixed'; v: Uint8Array }
  | { t: 'opaque'; v: Uint8Array }
  | { t: 'ref'; v: Uint8Array }
  | { t: 'refs'; v: Uint8Array[] }
  | { t: 'string'; v: string }
  | { t: 'array'; v: number[] }
  | { t: 'optional'; v: number | undefined };

const item: fc.Arbitrary<Item> = fc.oneof(
  fc.nat({ max: 0xffffffff }).map((v) => ({ t: 'u32' as const, v })),
  fc.integer({ min: -0x80000000, max: 0x7fffffff }).map((v) => ({ t: 'i32' as const, v })),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((v) => ({ t: 'u64' as const, v })),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((v) => ({ t: 'i64' as const, v })),
  fc.boolean().map((v) => ({ t: 'bool' as const, v })),
  fc.uint8Array({ maxLength: 37 }).map((v) => ({ t: 'fixed' as const, v })),
  fc.uint8Array({ maxLength: 37 }).map((v) => ({ t: 'opaque' as const, v })),
  fc.uint8Array({ maxLength: 37 }).map((v) => ({ t: 'ref' as const, v })),
  fc.array(fc.uint8Array({ maxLength: 13 }), { maxLength: 5 }).map((v) => ({ t: 'refs' as const, v })),
  fc.string({ maxLength: 20 }).map((v) => ({ t: 'string' as const, v })),
  fc.array(fc.nat({ max: 0xffffffff }), { maxLength: 9 }).map((v) => ({ t: 'array' as const, v })),
  fc.option(fc.nat({ max: 0xffffffff }), { nil: undefined }).map((v) => ({ t: 'optional' as const, v })),
);

function encode(w: XdrWriter, it: Item): void {
  switch (it.t) {
    case 'u32': w.uint32(it.v); break;
    case 'i32': w.int32(it.v); break;
    case 'u64': w.uint64(it.v); break;
    case 'i64': w.int64(it.v); break;
    case 'bool': w.bool(it.v); break;
    case 'fixed': w.fixedOpaque(it.v); break;
    case 'opaque': w.opaque(it.v); break;
    case 'ref': w.opaqueRef(Buffer.from(it.v)); break;
    case 'refs': w.opaqueRefs(it.v.map((v) => Buffer.from(v))); break;
    case 'string': w.string(it.v); break;
    case 'array': w.array(it.v, (x, n) => x.uint32(n)); break;
    case 'optional': w.optional(it.v, (x, n) => x.uint32(n)); break;
  }
}

function decode(r: XdrReader, it: Item): unknown {
  switch (it.t) {
    case 'u32': return r.uint32();
    case 'i32': return r.int32();
    case 'u64': return r.uint64();
    case 'i64': return r.int64();
    case 'bool': return r.bool();
    case 'fixed': return new Uint8Array(r.fixedOpaque(it.v.length));
    case 'opaque': case 'ref': return new Uint8Array(r.opaque(1 << 20));
    case 'refs': return splitLike(new Uint8Array(r.opaque(1 << 20)), it.v);
    case 'string': return r.string(1 << 20);
    case 'array': return r.array(1 << 20, (x) => x.uint32());
    case 'optional': return r.optional((x) => x.uint32());
  }
}

/** `buf` cut at the given points, taken modulo its length + 1 (property tests draw them at random). */
function cutAt(buf: Buffer, points: number[]): XdrBuf {
  return cutInPieces(buf, points.map((p) => p % (buf.length + 1)));
}

/** Every item in turn, or the error the first bad one raised; opaques also through opaqueSegments. */
function decodeAll(r: XdrReader, items: Item[], segments: boolean): { values: unknown[]; offsets: number[]; error?: string } {
  const values: unknown[] = [];
  const offsets: number[] = [];
  try {
    for (const it of items) {
      values.push(segments && it.t === 'opaque' ? new Uint8Array(Buffer.concat(r.opaqueSegments(1 << 20))) : decode(r, it));
      offsets.push(r.offset);
    }
  } catch (e) {
    if (!(e instanceof XdrError)) throw e;
    return { values, offsets, error: `${e.message} at ${e.offset}` };
  }
  return { values, offsets };
}

/** `bytes` cut where `parts` are, so one opaque compares equal to the fragments it was written from. */
function splitLike(bytes: Uint8Array, parts: Uint8Array[]): Uint8Array[] {
  let at = 0;
  return parts.map((p) => bytes.slice(at, (at += p.length)));
}

describe('XDR (RFC 4506)', () => {
  it('round-trips any sequence of items, every item 4-byte aligned', () => {
    fc.assert(
      fc.property(fc.array(item, { maxLength: 30 }), (items) => {
        const w = new XdrWriter(16);
        for (const it of items) encode(w, it);
        const buf = w.toBuffer();
        expect(buf.length % 4).toBe(0);
        expect(buf.length).toBe(w.length);
        const r = new XdrReader(buf);
        for (const it of items) expect(decode(r, it)).toEqual(it.v);
        expect(r.remaining).toBe(0);
      }),
    );
  });

  it('references opaqueRef data without copying it', () => {
    const data = Buffer.from('page bytes');
    const chunks = new XdrWriter().uint32(7).opaqueRef(data).uint32(9).toChunks();
    expect(chunks.some((c) => c === data)).toBe(true);
    data.write('PAGE');
    expect(new XdrReader(Buffer.concat(chunks)).skip(4) === undefined).toBe(true);
    const r = new XdrReader(Buffer.concat(chunks));
    r.uint32();
    expect(r.opaque(100).toString()).toBe('PAGE bytes');
  });

  it('references every opaqueRefs fragment without copying it, padding once after the last', () => {
    const a = Buffer.from('page');
    const b = Buffer.from('tail!');
    const chunks = new XdrWriter().opaqueRefs([a, b]).uint32(9).toChunks();
    expect(chunks.filter((c) => c === a || c === b)).toHaveLength(2);
    const buf = Buffer.concat(chunks);
    expect(buf.length).toBe(4 + 12 + 4);
    const r = new XdrReader(buf);
    expect(r.opaque(100).toString()).toBe('pagetail!');
    expect(r.uint32()).toBe(9);
  });

  it('copies encoded bytes as they are, and puts the bytes announced by room() in one run', () => {
    const item = new XdrWriter().uint32(1).string('entry').toBuffer();
    const w = new XdrWriter().uint32(7);
    w.room(100 * item.length);
    for (let i = 0; i < 100; i++) w.encoded(item);
    const chunks = w.toChunks();
    // The header's run, then one run for all 100 items (without room(), a run per doubling).
    expect(chunks.map((c) => c.length)).toEqual([4, 100 * item.length]);
    const r = new XdrReader(Buffer.concat(chunks));
    expect(r.uint32()).toBe(7);
    for (let i = 0; i < 100; i++) expect([r.uint32(), r.string(10)]).toEqual([1, 'entry']);
    expect(() => new XdrWriter().encoded(Buffer.alloc(3))).toThrow(RangeError);
  });

  it('throws only XdrError on any truncation or mutation of a valid encoding', () => {
    fc.assert(
      fc.property(fc.array(item, { minLength: 1, maxLength: 10 }), fc.nat(), fc.nat({ max: 255 }), (items, pos, byte) => {
        const w = new XdrWriter();
        for (const it of items) encode(w, it);
        const buf = Buffer.from(w.toBuffer());
        const cut = buf.subarray(0, pos % (buf.length + 1));
        if (buf.length) buf[pos % buf.length] = byte;
        for (const input of [cut, buf]) {
          const r = new XdrReader(input);
          try {
            for (const it of items) decode(r, it);
          } catch (e) {
            expect(e).toBeInstanceOf(XdrError);
          }
        }
      }),
    );
  });

  it('reads an XdrBuf cut anywhere (items straddling pieces, empty pieces) exactly as one buffer: values, offsets, errors', () => {
    fc.assert(
      fc.property(fc.array(item, { minLength: 1, maxLength: 12 }), fc.array(fc.nat(), { maxLength: 12 }), fc.nat(), fc.nat({ max: 255 }), fc.boolean(), (items, cuts, pos, byte, segments) => {
        const w = new XdrWriter();
        for (const it of items) encode(w, it);
        const buf = Buffer.from(w.toBuffer());
        const good = decodeAll(new XdrReader(buf), items, segments);
        expect(good.error).toBeUndefined();
        expect(decodeAll(new XdrReader(cutAt(buf, cuts)), items, segments)).toEqual(good);
        // Truncated or with one byte changed: the same values up to the same error at the same offset.
        const bad = Buffer.from(buf);
        if (bad.length) bad[pos % bad.length] = byte;
        for (const input of [buf.subarray(0, pos % (buf.length + 1)), bad]) {
          expect(decodeAll(new XdrReader(cutAt(input, cuts)), items, segments)).toEqual(decodeAll(new XdrReader(input), items, segments));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('opaqueSegments hands an opaque over as views of the pieces it lies in, never copied', () => {
    const payload = Buffer.alloc(10_000);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 13) & 0xff;
    const buf = new XdrWriter().uint32(7).opaque(payload).uint32(9).toBuffer();
    const pieces = cutAt(buf, [5, 6, 3000, 3000, 9001]);
    const r = new XdrReader(pieces, 4);
    const got = r.opaqueSegments(1 << 20);
    expect(r.uint32()).toBe(9);
    expect(Buffer.concat(got).equals(payload)).toBe(true);
    // Pieces [6, 3000), [3000, 9001), [9001, …) hold the payload [8, 10008); its length word was gathered.
    expect(got.map((g) => g.length)).toEqual([2992, 6001, 1007]);
    for (const g of got) expect(pieces.parts.some((p) => p.buffer === g.buffer)).toBe(true);
    // A view: a change to the received bytes is what the file would get.
    got[0]![0] = 0xee;
    expect(pieces.parts.find((p) => p.buffer === got[0]!.buffer)!.includes(0xee)).toBe(true);
  });

  it('an XdrBuf gives its bytes as one buffer: a view within a piece, a copy across pieces', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.array(fc.nat(), { maxLength: 8 }), fc.nat(), fc.nat(), (bytes, cuts, a, b) => {
        const buf = Buffer.from(bytes);
        const x = cutAt(buf, cuts);
        const [from, to] = [a % (buf.length + 1), b % (buf.length + 1)].sort((p, q) => p - q) as [number, number];
        expect(x.subarray(from, to)).toEqual(buf.subarray(from, to));
        expect(x.subarray(from)).toEqual(buf.subarray(from));
        expect(x.flat()).toEqual(buf);
        expect(x.length).toBe(buf.length);
      }),
    );
    const x = new XdrBuf([Buffer.from('abcd'), Buffer.from('efgh')]);
    expect(x.subarray(1, 3).buffer).toBe(x.parts[0]!.buffer);
    expect(x.subarray(3, 5).toString()).toBe('de');
  });

  it('enforces maxima, booleans, padding and 2^53 before allocating', () => {
    const over = new XdrWriter().opaque(Buffer.alloc(9)).toBuffer();
    expect(() => new XdrReader(over).opaque(8)).toThrow(/exceeds maximum 8/);
    expect(() => new XdrReader(new XdrWriter().uint32(2).toBuffer()).bool()).toThrow(XdrError);
    const badPad = Buffer.from([0, 0, 0, 1, 0x41, 0, 1, 0]);
    expect(() => new XdrReader(badPad).opaque(8)).toThrow(/padding/);
    const huge = new XdrWriter().uint32(0x7fffffff).toBuffer();
    expect(() => new XdrReader(huge).array(0xffffffff, (r) => r.uint32())).toThrow(/remaining input/);
    expect(() => new XdrReader(new XdrWriter().uint64(2n ** 60n).toBuffer()).uint64Number()).toThrow(/2\^53/);
  });

  it('encodes a uint64 given as a number as its bigint, and refuses what is not one', () => {
    for (const v of [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER]) {
      expect(new XdrWriter().uint64(v).toBuffer()).toEqual(new XdrWriter().uint64(BigInt(v)).toBuffer());
    }
    for (const v of [-1, 1.5, -1n, 2n ** 64n]) expect(() => new XdrWriter().uint64(v)).toThrow(RangeError);
  });
});
