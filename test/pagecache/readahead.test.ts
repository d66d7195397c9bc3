import { describe, expect, it } from 'vitest';
import { FILL_PIECE_PAGES, PAGE_SIZE, PageCache, type FileSource } from '../../server/pagecache/page-cache.ts';

/**
 * An in-memory file with preadv, counting the calls and the pages each asked for. Reads from page
 * `holdFrom` on wait until `go()` (a read still in flight when the test acts), then fail if `fail` is.
 */
function vecFile(key: string, data: Buffer, opts: { size?: boolean } = {}) {
  const f = {
    key,
    version: 'v1',
    ...(opts.size === false ? {} : { size: data.length }),
    calls: [] as number[][],
    holdFrom: Infinity,
    fail: false,
    waiting: [] as (() => void)[],
    go(): void {
      f.holdFrom = Infinity;
      for (const w of f.waiting.splice(0)) w();
    },
    async read(): Promise<number> {
      throw new Error('read: this source reads with readv only');
    },
    async readv(bufs: Buffer[], position: number): Promise<number> {
      f.calls.push([position / PAGE_SIZE, bufs.length]);
      if (position / PAGE_SIZE >= f.holdFrom) await new Promise<void>((r) => f.waiting.push(r));
      if (f.fail) throw new Error('EIO');
      let n = 0;
      for (const b of bufs) {
        if (position + n >= data.length) break;
        n += data.copy(b, 0, position + n, Math.min(data.length, position + n + b.length));
      }
      return n;
    },
  };
  return f satisfies FileSource;
}

const pattern = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 13 + (i >> 12)) & 0xff));

/** Turns of the event loop until no frame is being filled (the read-ahead settled). */
async function settled(cache: PageCache): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (!cache.frames.some((f) => cache.stateOf(f) === 'filling')) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error('fills did not settle');
}

const bytesOf = (pages: { buf: Buffer }[], len: number) => Buffer.concat(pages.map((p) => p.buf)).subarray(0, len);

describe('PageCache batched fill', () => {
  it('reads a run of missing pages with one preadv, zero-filling past EOF', async () => {
    const cache = new PageCache({ pages: 64, now: () => 0 });
    const data = pattern(10 * PAGE_SIZE + 123);
    const f = vecFile('a', data);
    const pages = await cache.getPages(f, 0, 10);
    expect(f.calls).toEqual([[0, 11]]);
    expect(bytesOf(pages, data.length).equals(data)).toBe(true);
    expect(pages[10]!.valid).toBe(123);
    expect(pages[10]!.buf.subarray(123).every((b) => b === 0)).toBe(true);
    expect(cache.stats()).toMatchObject({ misses: 11, hits: 0, pinned: 11 });
  });

  it('a cached page splits the misses into two runs, one read each', async () => {
    const cache = new PageCache({ pages: 64, now: () => 0 });
    const data = pattern(10 * PAGE_SIZE);
    const f = vecFile('a', data);
    const [mid] = await cache.getPages(f, 5, 5);
    cache.unpin(mid!);
    f.calls.length = 0;
    const pages = await cache.getPages(f, 0, 9);
    expect(f.calls).toEqual([[0, 5], [6, 4]]);
    expect(pages[5]).toBe(mid);
    expect(bytesOf(pages, data.length).equals(data)).toBe(true);
  });

  it('a failed run leaves nothing cached and nothing pinned', async () => {
    const cache = new PageCache({ pages: 8, now: () => 0 });
    const f = vecFile('bad', pattern(4 * PAGE_SIZE));
    f.fail = true;
    await expect(cache.getPages(f, 0, 3)).rejects.toThrow('EIO');
    expect(cache.stats()).toMatchObject({ free: 8, pinned: 0 });
  });
});

describe('PageCache fill in pieces', () => {
  const n = 2 * FILL_PIECE_PAGES + 5;

  it('a run longer than FILL_PIECE_PAGES is read as pieces that are all in flight at once', async () => {
    const cache = new PageCache({ pages: n, now: () => 0, readaheadPages: 0 });
    const data = pattern(n * PAGE_SIZE);
    const f = vecFile('long', data);
    f.holdFrom = 0;
    const got = cache.getPages(f, 0, n - 1);
    await new Promise((r) => setImmediate(r));
    expect(f.calls).toEqual([[0, FILL_PIECE_PAGES], [FILL_PIECE_PAGES, FILL_PIECE_PAGES], [2 * FILL_PIECE_PAGES, 5]]);
    f.go();
    expect(bytesOf(await got, data.length).equals(data)).toBe(true);
  });

  it("a reader of a piece's pages has them when that piece is read, before the rest of the run", async () => {
    const cache = new PageCache({ pages: n + 4, now: () => 0, readaheadPages: 0 });
    const data = pattern(n * PAGE_SIZE);
    const f = vecFile('long', data);
    f.holdFrom = FILL_PIECE_PAGES;
    let whole = false;
    const all = cache.getPages(f, 0, n - 1).then((p) => ((whole = true), p));
    const first = await cache.getPages(f, 0, 3);
    expect(bytesOf(first, 4 * PAGE_SIZE).equals(data.subarray(0, 4 * PAGE_SIZE))).toBe(true);
    expect(whole).toBe(false);
    f.go();
    expect(bytesOf(await all, data.length).equals(data)).toBe(true);
  });

  it('a failed piece fails the request and leaves none of its frames cached; the other pieces stay', async () => {
    const cache = new PageCache({ pages: n, now: () => 0, readaheadPages: 0 });
    const f = vecFile('long', pattern(n * PAGE_SIZE));
    f.holdFrom = FILL_PIECE_PAGES;
    const all = cache.getPages(f, 0, n - 1);
    await new Promise((r) => setImmediate(r));
    f.fail = true;
    f.go();
    await expect(all).rejects.toThrow('EIO');
    await settled(cache);
    expect(cache.stats()).toMatchObject({ pinned: 0, free: n - FILL_PIECE_PAGES });
  });
});

describe('PageCache read-ahead', () => {
  it('a sequential reader finds its next pages already read, in large background reads', async () => {
    const cache = new PageCache({ pages: 256, now: () => 0, readaheadPages: 16 });
    const data = pattern(64 * PAGE_SIZE);
    const f = vecFile('a', data);
    const first = await cache.getPages(f, 0, 3);
    // The request itself, then the window (twice the request) beyond it.
    expect(f.calls).toEqual([[0, 4], [4, 8]]);
    await settled(cache);
    for (const p of first) cache.unpin(p);
    const before = cache.stats().hits;
    const next = await cache.getPages(f, 4, 7);
    expect(cache.stats().hits - before).toBe(4);
    expect(bytesOf(next, 4 * PAGE_SIZE).equals(data.subarray(4 * PAGE_SIZE, 8 * PAGE_SIZE))).toBe(true);
    await settled(cache);
    for (const p of next) cache.unpin(p);
    // Read-ahead frames are idle once filled: nothing stays pinned for them.
    expect(cache.pinned).toBe(0);
    // The window doubled (to the 16-page cap) and reached past what was left ahead.
    expect(f.calls.slice(2)).toEqual([[12, 12]]);
  });

  it('stops at the end of the file, and does nothing for a random reader or an unknown size', async () => {
    const cache = new PageCache({ pages: 256, now: () => 0, readaheadPages: 32 });
    const f = vecFile('a', pattern(6 * PAGE_SIZE));
    for (const p of await cache.getPages(f, 0, 1)) cache.unpin(p);
    expect(f.calls).toEqual([[0, 2], [2, 4]]);
    await settled(cache);

    const r = vecFile('r', pattern(64 * PAGE_SIZE));
    for (const p of await cache.getPages(r, 40, 41)) cache.unpin(p);
    for (const p of await cache.getPages(r, 20, 21)) cache.unpin(p);
    expect(r.calls).toEqual([[40, 2], [20, 2]]);

    const u = vecFile('u', pattern(64 * PAGE_SIZE), { size: false });
    for (const p of await cache.getPages(u, 0, 1)) cache.unpin(p);
    expect(u.calls).toEqual([[0, 2]]);
  });

  it('takes only free or idle frames: a cache full of pinned pages reads nothing ahead', async () => {
    const cache = new PageCache({ pages: 16, now: () => 0, readaheadPages: 8 });
    const f = vecFile('a', pattern(64 * PAGE_SIZE));
    const pinned = await cache.getPages(f, 0, 15);
    expect(f.calls).toEqual([[0, 16]]);
    expect(cache.pinned).toBe(16);
    for (const p of pinned) cache.unpin(p);
  });

  it('a failed read-ahead leaves nothing cached; the reader reads the page itself', async () => {
    const cache = new PageCache({ pages: 64, now: () => 0, readaheadPages: 8 });
    const data = pattern(32 * PAGE_SIZE);
    const f = vecFile('a', data);
    f.holdFrom = 2; // the request's own read completes; the read-ahead's waits
    for (const p of await cache.getPages(f, 0, 1)) cache.unpin(p);
    expect(f.calls).toEqual([[0, 2], [2, 4]]);
    f.fail = true;
    f.go();
    await settled(cache);
    f.fail = false;
    expect(cache.stats()).toMatchObject({ pinned: 0, free: 62 });
    const again = await cache.getPages(f, 2, 2);
    expect(again[0]!.buf.equals(data.subarray(2 * PAGE_SIZE, 3 * PAGE_SIZE))).toBe(true);
  });

  it('a write during a read-ahead drops the page being filled: the next reader sees the write', async () => {
    const cache = new PageCache({ pages: 64, now: () => 0, readaheadPages: 8 });
    const data = pattern(32 * PAGE_SIZE);
    const f = vecFile('a', data);
    f.holdFrom = 2;
    for (const p of await cache.getPages(f, 0, 1)) cache.unpin(p);
    expect(cache.frames.some((fr) => cache.stateOf(fr) === 'filling')).toBe(true);
    Buffer.from('NEW').copy(data, 3 * PAGE_SIZE);
    cache.writeThrough(f, 3 * PAGE_SIZE, Buffer.from('NEW'), true);
    f.go(); // the read-ahead finishes with the bytes it read before the write
    await settled(cache);
    const [p3] = await cache.getPages(f, 3, 3);
    expect(p3!.buf.subarray(0, 3).toString()).toBe('NEW');
    cache.unpin(p3!);
    expect(cache.stats().pinned).toBe(0);
  });
});
