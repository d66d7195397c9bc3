import { describe, expect, it } from 'vitest';
import { COLLAPSE_RUN_PAGES, PAGE_SIZE, PageCache, PageCacheFullError, type FileSource, type PageFrame } from '../../server/pagecache/page-cache.ts';

/** An in-memory file: the page cache's only view of a file is `read`, so this is the real contract. */
function memFile(key: string, data: Buffer, version = 'v1'): FileSource & { reads: number } {
  const f = {
    key,
    version,
    reads: 0,
    async read(buf: Buffer, position: number) {
      f.reads++;
      return data.copy(buf, 0, position, Math.min(data.length, position + buf.length));
    },
  };
  return f;
}

const pattern = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff));

describe('PageCache', () => {
  it('fills pages on a miss, serves hits without reading, zero-fills past EOF', async () => {
    const cache = new PageCache({ pages: 8, now: () => 0 });
    const data = pattern(PAGE_SIZE + 100, 1);
    const a = memFile('a', data);
    const [p0, p1] = await cache.getPages(a, 0, 1);
    expect(p0!.buf.equals(data.subarray(0, PAGE_SIZE))).toBe(true);
    expect(p1!.valid).toBe(100);
    expect(p1!.buf.subarray(100).every((b) => b === 0)).toBe(true);
    const readsAfterFill = a.reads;
    cache.unpin(p0!);
    cache.unpin(p1!);
    const again = await cache.getPages(a, 0, 1);
    expect(again).toEqual([p0, p1]);
    expect(a.reads).toBe(readsAfterFill);
    expect(cache.stats()).toMatchObject({ hits: 2, misses: 2, pinned: 2 });
  });

  it('evicts the least recently used unpinned frame, never a pinned one', async () => {
    const cache = new PageCache({ pages: 2, now: () => 0 });
    const a = memFile('a', pattern(3 * PAGE_SIZE, 2));
    const [a0] = await cache.getPages(a, 0, 0);
    const [a1] = await cache.getPages(a, 1, 1);
    cache.unpin(a1!); // a0 stays pinned
    const [a2] = await cache.getPages(a, 2, 2);
    expect(a2).toBe(a1); // the only unpinned frame was reused
    expect(cache.stats().evictions).toBe(1);
    await expect(cache.getPages(a, 1, 1)).rejects.toBeInstanceOf(PageCacheFullError);
    cache.unpin(a0!);
    expect(cache.pinned).toBe(1);
  });

  it('copy-on-write: a write to a pinned page goes to a new frame; the pinned bytes never change', async () => {
    const cache = new PageCache({ pages: 4, now: () => 0 });
    const data = pattern(PAGE_SIZE, 3);
    const a = memFile('a', data);
    const [old] = await cache.getPages(a, 0, 0);
    const before = Buffer.from(old!.buf);
    cache.writeThrough(a, 10, Buffer.from('NEW BYTES'), true);
    expect(old!.buf.equals(before)).toBe(true);
    expect(cache.stateOf(old!)).toBe('cow');
    const [fresh] = await cache.getPages(a, 0, 0);
    expect(fresh).not.toBe(old);
    expect(fresh!.buf.subarray(10, 19).toString()).toBe('NEW BYTES');
    expect(cache.stateOf(fresh!)).toBe('pinned');
    const freeBefore = cache.stats().free;
    cache.unpin(old!); // the destructor fired: the original returns to the pool
    expect(cache.stats().free).toBe(freeBefore + 1);
    expect(cache.stats().cowCopies).toBe(1);
    cache.unpin(fresh!);
  });

  it('without copy-on-write (legacy trust) a write changes the pinned bytes in place', async () => {
    const cache = new PageCache({ pages: 2, now: () => 0 });
    const a = memFile('a', pattern(PAGE_SIZE, 4));
    const [p] = await cache.getPages(a, 0, 0);
    cache.writeThrough(a, 0, Buffer.from('XY'), false);
    expect(p!.buf.subarray(0, 2).toString()).toBe('XY');
    expect(cache.stateOf(p!)).toBe('pinned');
    cache.unpin(p!);
    expect(cache.stateOf(p!)).toBe('dirty');
    cache.markClean('a');
    expect(cache.stateOf(p!)).toBe('clean');
  });

  it('a changed file version drops the old pages; pinned ones are freed when unpinned', async () => {
    const cache = new PageCache({ pages: 4, now: () => 0 });
    const a = memFile('a', pattern(PAGE_SIZE, 5));
    const [p] = await cache.getPages(a, 0, 0);
    const b = memFile('a', pattern(PAGE_SIZE, 6), 'v2');
    const [q] = await cache.getPages(b, 0, 0);
    expect(q).not.toBe(p);
    expect(q!.buf.equals(pattern(PAGE_SIZE, 6))).toBe(true);
    expect(cache.stateOf(p!)).toBe('cow');
    cache.unpin(p!);
    cache.unpin(q!);
    expect(cache.stats()).toMatchObject({ free: 3, pinned: 0 });
  });

  it('concurrent misses on one page share a single fill', async () => {
    const cache = new PageCache({ pages: 4, now: () => 0 });
    const a = memFile('a', pattern(PAGE_SIZE, 7));
    const [x, y] = await Promise.all([cache.getPages(a, 0, 0), cache.getPages(a, 0, 0)]);
    expect(x![0]).toBe(y![0]);
    expect(a.reads).toBe(1);
    expect(x![0]!.pins).toBe(2);
  });

  it('a failed fill leaves nothing cached and nothing pinned', async () => {
    const cache = new PageCache({ pages: 2, now: () => 0 });
    const bad: FileSource = { key: 'bad', version: '1', read: async () => Promise.reject(new Error('EIO')) };
    await expect(cache.getPages(bad, 0, 1)).rejects.toThrow('EIO');
    expect(cache.stats()).toMatchObject({ free: 2, pinned: 0 });
  });

  it('reports the oldest pins first for the pin budget', async () => {
    let t = 0;
    const cache = new PageCache({ pages: 4, now: () => t });
    const a = memFile('a', pattern(3 * PAGE_SIZE, 8));
    t = 5;
    const [late] = await cache.getPages(a, 1, 1);
    t = 1;
    const [early] = await cache.getPages(a, 0, 0);
    expect(cache.pinnedOldestFirst()).toEqual([early, late]);
  });
});

describe('PageCache.waitUnpinned', () => {
  it('resolves only after every pinned page of the range is unpinned', async () => {
    const cache = new PageCache({ pages: 4, now: () => 0 });
    const a = memFile('a', pattern(2 * PAGE_SIZE, 9));
    const [p0, p1] = await cache.getPages(a, 0, 1);
    let done = false;
    const wait = cache.waitUnpinned('a', PAGE_SIZE - 1, 2).then(() => (done = true));
    cache.unpin(p0!);
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    cache.unpin(p1!);
    await wait;
    expect(done).toBe(true);
  });

  it('maps a view of a frame back to the frame and offset, and refuses foreign memory', async () => {
    const cache = new PageCache({ pages: 4, now: () => 0 });
    const [p] = await cache.getPages(memFile('a', pattern(PAGE_SIZE, 3)), 0, 0);
    expect(cache.frameOf(p!.buf.subarray(100, 200))).toEqual({ frame: p, offset: 100 });
    expect(cache.frameOf(Buffer.from(p!.buf.subarray(100, 200)))).toBeNull();
    expect(cache.frameOf(Buffer.alloc(10))).toBeNull();
  });

  it('writes through to pages past 2 GiB (page numbers beyond 2^19)', async () => {
    const cache = new PageCache({ pages: 4, now: () => 0 });
    const base = 3 * 2 ** 30;
    const f: FileSource = { key: 'big', version: 'v1', read: async (buf) => (buf.fill(1), buf.length) };
    const [p] = await cache.getPages(f, base / PAGE_SIZE, base / PAGE_SIZE);
    cache.unpin(p!);
    cache.writeThrough(f, base + 10, Buffer.from('xyz'), true);
    const [again] = await cache.getPages(f, base / PAGE_SIZE, base / PAGE_SIZE);
    expect(again).toBe(p);
    expect(again!.buf.subarray(10, 13).toString()).toBe('xyz');
  });
});

describe('PageCache collapse (a READ of scattered cached pages moves them into adjacent frames)', () => {
  const PAGES = 2 * COLLAPSE_RUN_PAGES;

  /** A file of PAGES pages cached one page at a time in the order odd pages, then even: no two adjacent pages in adjacent frames. */
  async function scattered(cachePages: number) {
    const cache = new PageCache({ pages: cachePages, now: () => 0 });
    const data = pattern(PAGES * PAGE_SIZE, 9);
    const f = memFile('f', data);
    const order = [...Array.from({ length: PAGES / 2 }, (_, i) => 2 * i + 1), ...Array.from({ length: PAGES / 2 }, (_, i) => 2 * i)];
    for (const index of order) for (const p of await cache.getPages(f, index, index)) cache.unpin(p);
    return { cache, data, f };
  }
  const adjacent = (frames: readonly PageFrame[]): boolean => frames.every((p, i) => p.pfn === frames[0]!.pfn + i);

  it('moves the pages of a fragmented all-hit READ into adjacent frames, with their bytes, without reading the file', async () => {
    const { cache, data, f } = await scattered(4 * PAGES);
    const reads = f.reads;
    const before = await cache.getPages(f, 0, PAGES - 1);
    expect(adjacent(before)).toBe(true);
    expect(cache.stats().collapses).toBe(1);
    before.forEach((p, i) => expect(p.buf.equals(data.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE))).toBe(true));
    expect(f.reads).toBe(reads);
    // Only this READ's pins hold the new frames; the old ones went back to the pool.
    expect(cache.stats()).toMatchObject({ pinned: PAGES, free: 4 * PAGES - PAGES, cow: 0 });
    for (const p of before) cache.unpin(p);
    const again = await cache.getPages(f, 0, PAGES - 1);
    expect(again).toEqual(before);
    expect(cache.stats().collapses).toBe(1);
    for (const p of again) cache.unpin(p);
  });

  it('leaves a frame another reply still holds intact and detached until that reply lets go', async () => {
    const { cache, data, f } = await scattered(4 * PAGES);
    const [held] = await cache.getPages(f, 3, 3);
    const bytes = Buffer.from(held!.buf);
    const moved = await cache.getPages(f, 0, PAGES - 1);
    expect(moved[3]).not.toBe(held);
    expect(cache.stateOf(held!)).toBe('cow');
    expect(held!.buf.equals(bytes)).toBe(true);
    expect(moved[3]!.buf.equals(data.subarray(3 * PAGE_SIZE, 4 * PAGE_SIZE))).toBe(true);
    const free = cache.stats().free;
    cache.unpin(held!);
    expect(cache.stats().free).toBe(free + 1);
    for (const p of moved) cache.unpin(p);
  });

  it('changes nothing when no block of adjacent free frames is large enough', async () => {
    const { cache } = await scattered(PAGES + PAGES / 2);
    const f = memFile('f', pattern(PAGES * PAGE_SIZE, 9));
    const frames = await cache.getPages(f, 0, PAGES - 1);
    expect(adjacent(frames)).toBe(false);
    expect(cache.stats().collapses).toBe(0);
    for (const p of frames) cache.unpin(p);
  });

  it('leaves READs smaller than twice COLLAPSE_RUN_PAGES, or in runs of COLLAPSE_RUN_PAGES on average, where they are', async () => {
    const { cache, f } = await scattered(4 * PAGES);
    const small = await cache.getPages(f, 0, PAGES - 2);
    expect(cache.stats().collapses).toBe(0);
    for (const p of small) cache.unpin(p);
    // Two runs of PAGES / 2 adjacent frames each (second half filled first): left as they are.
    const fresh = new PageCache({ pages: 4 * PAGES, now: () => 0 });
    const g = memFile('g', pattern(PAGES * PAGE_SIZE, 4));
    for (const half of [PAGES / 2, 0]) for (const p of await fresh.getPages(g, half, half + PAGES / 2 - 1)) fresh.unpin(p);
    const twoRuns = await fresh.getPages(g, 0, PAGES - 1);
    expect(new Set(twoRuns.map((p, i) => p.pfn - i)).size).toBe(2);
    expect(fresh.stats().collapses).toBe(0);
    for (const p of twoRuns) fresh.unpin(p);
  });
});
