import { randomBytes } from 'node:crypto';
import { chmod, mkdir, symlink, truncate, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NF3REG, NFS3ERR_ACCES, NFS3ERR_BADHANDLE, NFS3ERR_INVAL, NFS3ERR_ISDIR, NFS3ERR_STALE, NFS3_OK, NFSPROC3 } from '../../server/nfs3/constants.ts';
import { PAGE_SIZE } from '../../server/pagecache/page-cache.ts';
import { makeFixture, userCred, type Fixture } from './harness.ts';

const MAX_READ = 64 * 1024;
let fx: Fixture;
const big = randomBytes(300_001);

beforeAll(async () => {
  fx = await makeFixture({ limits: { maxRead: MAX_READ }, pages: 256 });
  await writeFile(fx.hostPath('big.bin'), big);
  await writeFile(fx.hostPath('empty'), '');
  await writeFile(fx.hostPath('private'), 'mine', { mode: 0o600 });
  await chmod(fx.hostPath('private'), 0o600);
  await mkdir(fx.hostPath('dir'));
  await symlink('big.bin', fx.hostPath('link'));
});

afterAll(() => fx?.close());

describe('READ', () => {
  it('returns the bytes of any range, with correct count and eof', async () => {
    const fh = await fx.walk('big.bin');
    for (const [off, n] of [
      [0, 1],
      [0, PAGE_SIZE],
      [1, PAGE_SIZE],
      [PAGE_SIZE - 3, 7],
      [12345, 40000],
      [big.length - 10, 10],
      [big.length - 10, 100],
    ] as const) {
      const r = await fx.read(fh, off, n);
      expect(r.status).toBe(NFS3_OK);
      const want = big.subarray(off, Math.min(off + n, big.length));
      expect(r.count).toBe(want.length);
      expect(r.data!.equals(want), `range ${off}+${n}`).toBe(true);
      expect(r.eof).toBe(off + want.length >= big.length);
      expect(r.attrs?.type).toBe(NF3REG);
    }
  });

  it('reads a whole file in maxRead-sized pieces', async () => {
    const fh = await fx.walk('big.bin');
    const parts: Buffer[] = [];
    let off = 0;
    for (;;) {
      const r = await fx.read(fh, off, 1 << 20);
      expect(r.count).toBeLessThanOrEqual(MAX_READ);
      parts.push(r.data!);
      off += r.count!;
      if (r.eof) break;
    }
    expect(Buffer.concat(parts).equals(big)).toBe(true);
  });

  it('clamps count to maxRead', async () => {
    const r = await fx.read(await fx.walk('big.bin'), 0, 10 * MAX_READ);
    expect(r.count).toBe(MAX_READ);
    expect(r.eof).toBe(false);
  });

  it('past EOF and of an empty file: 0 bytes with eof', async () => {
    const fh = await fx.walk('big.bin');
    for (const off of [big.length, big.length + 1, 2 ** 40]) {
      const r = await fx.read(fh, off, 100);
      expect(r.status).toBe(NFS3_OK);
      expect([r.count, r.eof]).toEqual([0, true]);
    }
    const e = await fx.read(await fx.walk('empty'), 0, 100);
    expect([e.count, e.eof]).toEqual([0, true]);
    const zero = await fx.read(fh, 0, 0);
    expect([zero.count, zero.eof]).toEqual([0, false]);
  });

  it('pads the opaque to four bytes', async () => {
    const r = await fx.read(await fx.walk('big.bin'), 0, 5);
    expect(r.body.length % 4).toBe(0);
    expect(r.r.remaining).toBe(0);
  });

  it('NFS3ERR_ISDIR on a directory, NFS3ERR_INVAL on a symlink, BADHANDLE, STALE', async () => {
    expect((await fx.read(await fx.walk('dir'), 0, 10)).status).toBe(NFS3ERR_ISDIR);
    const l = await fx.read(await fx.walk('link'), 0, 10);
    expect(l.status).toBe(NFS3ERR_INVAL);
    expect(l.attrs).toBeDefined();
    expect((await fx.read(Buffer.alloc(44), 0, 10)).status).toBe(NFS3ERR_BADHANDLE);
    await writeFile(fx.hostPath('doomed'), 'x');
    const doomed = await fx.walk('doomed');
    await import('node:fs/promises').then((f) => f.unlink(fx.hostPath('doomed')));
    const s = await fx.read(doomed, 0, 1);
    expect(s.status).toBe(NFS3ERR_STALE);
    expect(s.attrs).toBeUndefined();
  });

  it('NFS3ERR_ACCES without read permission; the owner may read', async () => {
    const fh = await fx.walk('private');
    expect((await fx.read(fh, 0, 10, { cred: userCred(1000) })).status).toBe(NFS3ERR_ACCES);
    expect((await fx.read(fh, 0, 10)).data!.toString()).toBe('mine');
  });

  it('sees changes made behind the server (new version drops cached pages)', async () => {
    await writeFile(fx.hostPath('changing'), 'first version');
    const fh = await fx.walk('changing');
    expect((await fx.read(fh, 0, 100)).data!.toString()).toBe('first version');
    await new Promise((r) => setTimeout(r, 5));
    await writeFile(fx.hostPath('changing'), 'second, longer version');
    expect((await fx.read(fh, 0, 100)).data!.toString()).toBe('second, longer version');
    await truncate(fx.hostPath('changing'), 6);
    const t = await fx.read(fh, 0, 100);
    expect([t.data!.toString(), t.eof]).toEqual(['second', true]);
  });
});

describe('READ zero-copy and pinning', () => {
  it('references page-cache frames in the reply and keeps them pinned until release', async () => {
    const fh = await fx.walk('big.bin');
    const cache = fx.pageCache;
    expect(cache.pinned).toBe(0);
    const r = await fx.read(fh, 1000, 3 * PAGE_SIZE, { keep: true });
    expect(r.release).toBeTypeOf('function');
    // Range 1000..13288 spans pages 0..3.
    expect(cache.pinned).toBe(4);
    const pool = cache.frames[0]!.buf.buffer;
    const dataChunks = r.chunks.filter((c) => c.buffer === pool);
    expect(Buffer.concat(dataChunks).equals(big.subarray(1000, 1000 + 3 * PAGE_SIZE))).toBe(true);
    // Data chunks are views of the pinned frames, not copies: one per run of frames adjacent in the pool.
    const frames = cache.frames.filter((f) => f.pins > 0).sort((x, y) => x.index - y.index);
    expect(frames.map((f) => f.index)).toEqual([0, 1, 2, 3]);
    const runs = 1 + frames.slice(1).filter((f, k) => f.pfn !== frames[k]!.pfn + 1).length;
    expect(dataChunks.length).toBe(runs);
    for (const c of dataChunks) expect(frames.some((f) => f.buf.byteOffset <= c.byteOffset && c.byteOffset < f.buf.byteOffset + PAGE_SIZE)).toBe(true);
    r.release!();
    expect(cache.pinned).toBe(0);
    expect(cache.frames.every((f) => f.pins === 0)).toBe(true);
  });

  it('hands frames that are not adjacent in the pool as views of their own', async () => {
    const data = randomBytes(8 * PAGE_SIZE);
    await writeFile(fx.hostPath('scattered'), data);
    const fh = await fx.walk('scattered');
    const cache = fx.pageCache;
    // Pages read last to first (none at offset 0, so no read-ahead) take ascending frames.
    for (let k = 4; k >= 1; k--) await fx.read(fh, k * PAGE_SIZE, PAGE_SIZE);
    const r = await fx.read(fh, PAGE_SIZE + 10, 4 * PAGE_SIZE - 20, { keep: true });
    const dataChunks = r.chunks.filter((c) => c.buffer === cache.frames[0]!.buf.buffer);
    expect(dataChunks.map((c) => c.length)).toEqual([PAGE_SIZE - 10, PAGE_SIZE, PAGE_SIZE, PAGE_SIZE - 10]);
    expect(Buffer.concat(dataChunks).equals(data.subarray(PAGE_SIZE + 10, 5 * PAGE_SIZE - 10))).toBe(true);
    r.release!();
    expect(cache.pinned).toBe(0);
  });

  it('release is idempotent-safe: a second call does not unpin again', async () => {
    const fh = await fx.walk('big.bin');
    const a = await fx.read(fh, 0, PAGE_SIZE, { keep: true });
    const b = await fx.read(fh, 0, PAGE_SIZE, { keep: true });
    const frame = fx.pageCache.frames.find((f) => f.pins > 0)!;
    expect(frame.pins).toBe(2);
    a.release!();
    a.release!();
    expect(frame.pins).toBe(1);
    b.release!();
    expect(fx.pageCache.pinned).toBe(0);
  });

  it('serves a second read of the same pages from the cache (hits, no new fills)', async () => {
    const fh = await fx.walk('big.bin');
    await fx.read(fh, 200_000, 8192);
    const before = fx.pageCache.stats();
    await fx.read(fh, 200_000, 8192);
    const after = fx.pageCache.stats();
    expect(after.misses).toBe(before.misses);
    expect(after.hits).toBeGreaterThan(before.hits);
  });

  it('many concurrent reads leave no pin behind', async () => {
    const fh = await fx.walk('big.bin');
    const rs = await Promise.all(Array.from({ length: 40 }, (_, i) => fx.read(fh, i * 7001, 9000)));
    for (const [i, r] of rs.entries()) expect(r.data!.equals(big.subarray(i * 7001, i * 7001 + 9000))).toBe(true);
    expect(fx.pageCache.pinned).toBe(0);
  });
});

describe('files past 4 GiB', () => {
  it('reads and writes at offsets beyond 32 bits, coherently', async () => {
    const huge = fx.hostPath('sparse-5g');
    await writeFile(huge, '');
    await truncate(huge, 5 * 2 ** 30);
    const h = await import('node:fs/promises').then((f) => f.open(huge, 'r+'));
    const at = 4.5 * 2 ** 30 + 123;
    await h.write(Buffer.from('far away'), 0, 8, at);
    await h.close();
    const fh = await fx.walk('sparse-5g');
    expect((await fx.read(fh, at, 8)).data?.toString()).toBe('far away');
    const { status } = await fx.call(NFSPROC3.WRITE, (w) => w.opaque(fh).uint64(at).uint32(3).uint32(0).opaque(Buffer.from('FAR')));
    expect(status).toBe(NFS3_OK);
    expect((await fx.read(fh, at, 8)).data?.toString()).toBe('FAR away');
    const end = await fx.read(fh, 5 * 2 ** 30 - 2, 10);
    expect([end.count, end.eof]).toEqual([2, true]);
  });
});
