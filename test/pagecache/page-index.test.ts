import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { INDEX_NODE_SLOTS, PageIndex } from '../../server/pagecache/page-index.ts';
import { PAGE_SIZE, PageCache, type FileSource } from '../../server/pagecache/page-cache.ts';

describe('PageIndex', () => {
  it('behaves as a map of page index to pfn under any sequence of sets and guarded deletes', () => {
    const op = fc.record({
      del: fc.boolean(),
      // Near node boundaries, far apart, and past 2^32 (offsets beyond 16 TiB).
      index: fc.oneof(fc.integer({ min: 0, max: 3 * INDEX_NODE_SLOTS }), fc.integer({ min: 0, max: 2 ** 40 }), fc.constant(2 ** 32 + 5)),
      pfn: fc.integer({ min: 0, max: 1000 }),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const index = new PageIndex();
        const model = new Map<number, number>();
        for (const o of ops) {
          if (o.del) {
            const holds = model.get(o.index) === o.pfn;
            expect(index.deleteIf(o.index, o.pfn)).toBe(holds);
            if (holds) model.delete(o.index);
          } else {
            index.set(o.index, o.pfn);
            model.set(o.index, o.pfn);
          }
          expect(index.size).toBe(model.size);
        }
        for (const o of ops) expect(index.get(o.index)).toBe(model.get(o.index) ?? -1);
        expect(index.pfns().sort((a, b) => a - b)).toEqual([...model.values()].sort((a, b) => a - b));
      }),
    );
  });

  it('keeps what a node held when a higher slot lengthens it, and forgets a node once its last page goes', () => {
    const index = new PageIndex();
    for (const node of [0, 5]) {
      const base = node * INDEX_NODE_SLOTS;
      index.set(base + 2, 10 + node);
      index.set(base + 9, 20 + node); // past the shortest node
      index.set(base + 63, 30 + node); // the last slot
      expect([index.get(base + 2), index.get(base + 9), index.get(base + 63), index.get(base + 3)]).toEqual([10 + node, 20 + node, 30 + node, -1]);
    }
    expect(index.size).toBe(6);
    expect(index.get(2 * INDEX_NODE_SLOTS)).toBe(-1);
    for (const node of [0, 5]) {
      const base = node * INDEX_NODE_SLOTS;
      expect(index.deleteIf(base + 63, 30 + node)).toBe(true);
      expect(index.deleteIf(base + 2, 10 + node)).toBe(true);
      expect(index.get(base + 9)).toBe(20 + node);
      expect(index.deleteIf(base + 9, 20 + node)).toBe(true);
    }
    expect(index.size).toBe(0);
    expect(index.pfns()).toEqual([]);
    index.set(5 * INDEX_NODE_SLOTS + 1, 7);
    expect(index.pfns()).toEqual([7]);
  });

  it('a delete guarded by another pfn leaves the slot (the frame there replaced the one being dropped)', () => {
    const index = new PageIndex();
    index.set(70, 3);
    index.set(70, 9);
    expect(index.deleteIf(70, 3)).toBe(false);
    expect(index.get(70)).toBe(9);
    expect(index.deleteIf(70, 9)).toBe(true);
    expect(index.has(70)).toBe(false);
    expect(index.size).toBe(0);
  });
});

describe('PageCache over the page index', () => {
  it('finds every page of a file larger than a node, and forgets evicted and invalidated ones', async () => {
    const pages = 3 * INDEX_NODE_SLOTS;
    const data = Buffer.alloc(pages * PAGE_SIZE);
    for (let i = 0; i < pages; i++) data.writeUInt32BE(i, i * PAGE_SIZE);
    let reads = 0;
    const src: FileSource = {
      key: 'f',
      version: 'v1',
      size: data.length,
      async read(buf: Buffer, position: number) {
        reads++;
        return data.copy(buf, 0, position, Math.min(data.length, position + buf.length));
      },
    };
    const cache = new PageCache({ pages: 2 * INDEX_NODE_SLOTS, now: () => 0 });
    const first = await cache.getPages(src, 0, 2 * INDEX_NODE_SLOTS - 1);
    first.forEach((f, i) => expect(f.buf.readUInt32BE(0)).toBe(i));
    for (const f of first) cache.unpin(f);
    const readsBefore = reads;
    // Cached: no read, the same frames.
    const again = await cache.getPages(src, 10, 100);
    expect(reads).toBe(readsBefore);
    again.forEach((f, i) => expect(f).toBe(first[10 + i]));
    for (const f of again) cache.unpin(f);
    // The last node's pages evict the oldest ones; those are read again when asked for.
    const tail = await cache.getPages(src, 2 * INDEX_NODE_SLOTS, pages - 1);
    tail.forEach((f, i) => expect(f.buf.readUInt32BE(0)).toBe(2 * INDEX_NODE_SLOTS + i));
    for (const f of tail) cache.unpin(f);
    const [p0] = await cache.getPages(src, 0, 0);
    expect(p0!.buf.readUInt32BE(0)).toBe(0);
    expect(reads).toBeGreaterThan(readsBefore + 1);
    cache.unpin(p0!);
    cache.invalidate('f');
    expect(cache.stats().free).toBe(2 * INDEX_NODE_SLOTS);
  });
});
