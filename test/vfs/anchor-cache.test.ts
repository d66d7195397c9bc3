/**
 * Anchors kept between calls, and the listings kept with directories' (server/vfs/anchor-cache.ts):
 * a kept descriptor is never closed under a call still using it, nor kept idle or after REMOVE; a
 * kept object that was removed or moved out of the export is not used, one renamed inside it still
 * is, and a listing is only reused while its directory has not changed.
 */
import type { BigIntStats } from 'node:fs';
import { fstatSync, openSync, readdirSync, readlinkSync } from 'node:fs';
import { link, mkdir, mkdtemp, readdir, rename, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NFS3ERR_STALE, NFS3_OK, NFSPROC3, UNCHECKED } from '../../server/nfs3/constants.ts';
import { encodeSattr3, EMPTY_SATTR3 } from '../../server/nfs3/xdr.ts';
import { Anchor, O_PATH } from '../../server/vfs/anchor.ts';
import { AnchorCache, ANCHOR_CACHE_DEFAULT_LIMITS, LISTING_SETTLE_NS } from '../../server/vfs/anchor-cache.ts';
import { makeFixture, type Fixture } from '../nfs3/harness.ts';

const isOpen = (fd: number): boolean => {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
};

/** Descriptors of this process that hold `host` (by the name they were opened with). */
const holding = (host: string): number =>
  readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith(host);
    } catch {
      return false;
    }
  }).length;

/** What keepListing and listing look at of a directory's fstat. */
const stamp = (ctimeNs: bigint, mtimeNs = ctimeNs, size = 40n, nlink = 2n): BigIntStats => ({ ctimeNs, mtimeNs, size, nlink }) as BigIntStats;

describe('AnchorCache', () => {
  it('closes an evicted descriptor only when the last call holding it closes it', () => {
    const c = new AnchorCache({ ...ANCHOR_CACHE_DEFAULT_LIMITS, maxEntries: 1 });
    const a = new Anchor(openSync(os.tmpdir(), O_PATH));
    c.keep('a', a);
    a.close();
    const inUse = c.peek('a')!.hold();
    c.keep('b', new Anchor(openSync(os.tmpdir(), O_PATH))); // evicts 'a'
    expect(c.peek('a')).toBeUndefined();
    expect(isOpen(inUse.fd)).toBe(true);
    inUse.close();
    expect(isOpen(inUse.fd)).toBe(false);
    c.clear();
  });

  it('evicts the least recently used, however the uses ran in a row', () => {
    const c = new AnchorCache({ ...ANCHOR_CACHE_DEFAULT_LIMITS, maxEntries: 2 });
    const keep = (key: string): void => {
      const a = new Anchor(openSync(os.tmpdir(), O_PATH));
      c.keep(key, a);
      a.close();
    };
    keep('a');
    keep('b');
    c.peek('b');
    c.peek('a');
    c.peek('a');
    keep('c'); // evicts 'b': 'a' was used after it
    expect(c.peek('b')).toBeUndefined();
    expect(c.peek('a')).toBeDefined();
    c.drop('a');
    keep('a');
    c.peek('c');
    keep('d'); // evicts 'a': 'c' was used after it was kept again
    expect(c.peek('a')).toBeUndefined();
    expect(c.peek('c')).toBeDefined();
    c.clear();
  });

  it('closes descriptors left unused longer than the idle time', () => {
    const c = new AnchorCache();
    const a = new Anchor(openSync(os.tmpdir(), O_PATH));
    c.keep('a', a);
    a.close();
    c.sweep(60_000);
    expect(isOpen(a.fd)).toBe(true);
    c.sweep(0);
    expect(c.peek('a')).toBeUndefined();
    expect(isOpen(a.fd)).toBe(false);
  });

  it('returns a listing only while ctime, mtime, size and link count are unchanged', () => {
    const c = new AnchorCache();
    c.keep('d', new Anchor(openSync(os.tmpdir(), O_PATH)));
    const now = 10_000_000_000n;
    const old = now - 2n * LISTING_SETTLE_NS;
    c.keepListing('d', stamp(old), now, ['x'], 1);
    expect(c.listing('d', stamp(old))).toEqual(['x']);
    expect(c.listing('d', stamp(old + 1n))).toBeUndefined();
    expect(c.listing('d', stamp(old, old + 1n))).toBeUndefined();
    expect(c.listing('d', stamp(old, old, 60n))).toBeUndefined();
    expect(c.listing('d', stamp(old, old, 40n, 3n))).toBeUndefined();
    c.clear();
  });

  it('keeps no listing of a directory that changed within a clock tick or so of the read', () => {
    const c = new AnchorCache();
    c.keep('d', new Anchor(openSync(os.tmpdir(), O_PATH)));
    const now = 10_000_000_000n;
    c.keepListing('d', stamp(now - LISTING_SETTLE_NS / 2n), now, ['x'], 1);
    expect(c.listing('d', stamp(now - LISTING_SETTLE_NS / 2n))).toBeUndefined();
    c.keepListing('d', stamp(now - 2n * LISTING_SETTLE_NS, now), now, ['x'], 1);
    expect(c.listing('d', stamp(now - 2n * LISTING_SETTLE_NS, now))).toBeUndefined();
    c.clear();
  });

  it('keeps a listing past its descriptor\'s idle close and a new descriptor, until the handle is dropped', () => {
    const c = new AnchorCache();
    const now = 10_000_000_000n;
    const st = stamp(now - 2n * LISTING_SETTLE_NS);
    const a = new Anchor(openSync(os.tmpdir(), O_PATH));
    c.keep('d', a);
    a.close();
    c.keepListing('d', st, now, ['x'], 1);
    c.sweep(0);
    expect(isOpen(a.fd)).toBe(false);
    expect(c.listing('d', st)).toEqual(['x']);
    const b = new Anchor(openSync(os.tmpdir(), O_PATH));
    c.keep('d', b);
    b.close();
    expect(c.listing('d', st)).toEqual(['x']);
    c.drop('d');
    expect(c.listing('d', st)).toBeUndefined();
    c.keepListing('d', st, now, ['x'], 1);
    expect(c.listing('d', stamp(now))).toBeUndefined();
    expect(c.listing('d', st)).toBeUndefined(); // seen changed: forgotten
    c.clear();
  });

  it('keeps at most maxEntries listings, least recently used dropped first', () => {
    const c = new AnchorCache({ ...ANCHOR_CACHE_DEFAULT_LIMITS, maxEntries: 2 });
    const now = 10_000_000_000n;
    const st = stamp(now - 2n * LISTING_SETTLE_NS);
    c.keepListing('a', st, now, 'A', 1);
    c.keepListing('b', st, now, 'B', 1);
    expect(c.listing('a', st)).toBe('A');
    c.keepListing('c', st, now, 'C', 1);
    expect(c.listing('b', st)).toBeUndefined();
    expect(c.listing('a', st)).toBe('A');
    expect(c.listing('c', st)).toBe('C');
  });

  it('holds at most its budget of names: a new listing drops older ones', () => {
    const c = new AnchorCache({ ...ANCHOR_CACHE_DEFAULT_LIMITS, maxEntries: 8, maxListedNames: 10 });
    const now = 10_000_000_000n;
    const st = stamp(now - 2n * LISTING_SETTLE_NS);
    for (const k of ['a', 'b']) c.keep(k, new Anchor(openSync(os.tmpdir(), O_PATH)));
    c.keepListing('a', st, now, 'A', 6);
    c.keepListing('b', st, now, 'B', 6);
    expect(c.listing('a', st)).toBeUndefined();
    expect(c.listing('b', st)).toBe('B');
    c.keepListing('a', st, now, 'too big', 11);
    expect(c.listing('a', st)).toBeUndefined();
    c.clear();
  });
});

describe('kept directories through NFS', () => {
  let fx: Fixture;
  let outside: string;

  beforeAll(async () => {
    fx = await makeFixture();
    outside = await mkdtemp(path.join(os.tmpdir(), 'pagelife-outside-'));
  });
  afterAll(async () => {
    await fx?.close();
    await rm(outside, { recursive: true, force: true });
  });

  /** A directory with a file, looked up in once so that its anchor is kept. */
  async function keptDir(name: string): Promise<Buffer> {
    await mkdir(fx.hostPath(name));
    await writeFile(fx.hostPath(name, 'f'), 'inside');
    const fh = await fx.walk(name);
    expect((await fx.lookup(fh, 'f')).status).toBe(NFS3_OK);
    return fh;
  }

  const create = (dir: Buffer, name: string) =>
    fx.diropres(NFSPROC3.CREATE, (w) => {
      w.opaque(dir).string(name).uint32(UNCHECKED);
      encodeSattr3(w, EMPTY_SATTR3);
    });

  it('a kept directory that was removed is NFS3ERR_STALE', async () => {
    const fh = await keptDir('gone');
    await rm(fx.hostPath('gone'), { recursive: true });
    expect((await fx.getattr(fh)).status).toBe(NFS3ERR_STALE);
    expect((await fx.readdir(fh, 0n, 4096)).status).toBe(NFS3ERR_STALE);
  });

  it('a kept directory moved out of the export is NFS3ERR_STALE, and nothing is made in it', async () => {
    const fh = await keptDir('leaving');
    await rename(fx.hostPath('leaving'), path.join(outside, 'leaving'));
    expect((await fx.getattr(fh)).status).toBe(NFS3ERR_STALE);
    expect((await fx.readdirplus(fh, 0n, 4096, 8192)).status).toBe(NFS3ERR_STALE);
    expect((await create(fh, 'new')).status).toBe(NFS3ERR_STALE);
    expect(await readdir(path.join(outside, 'leaving'))).toEqual(['f']);
  });

  it('a kept directory renamed inside the export is used where it is now', async () => {
    const fh = await keptDir('before');
    await mkdir(fx.hostPath('elsewhere'));
    await rename(fx.hostPath('before'), fx.hostPath('elsewhere', 'after'));
    expect((await fx.getattr(fh)).status).toBe(NFS3_OK);
    expect((await create(fh, 'made')).status).toBe(NFS3_OK);
    expect((await readdir(fx.hostPath('elsewhere', 'after'))).sort()).toEqual(['f', 'made']);
  });

  it('a kept file removed or moved out behind the server is NFS3ERR_STALE; with another link left, it is found there', async () => {
    await writeFile(fx.hostPath('kf'), 'x');
    await writeFile(fx.hostPath('ko'), 'x');
    await writeFile(fx.hostPath('kl'), 'x');
    const [kf, ko, kl] = [await fx.walk('kf'), await fx.walk('ko'), await fx.walk('kl')];
    for (const fh of [kf, ko, kl]) expect((await fx.getattr(fh)).status).toBe(NFS3_OK);
    await unlink(fx.hostPath('kf'));
    await rename(fx.hostPath('ko'), path.join(outside, 'ko'));
    await mkdir(fx.hostPath('links'));
    await link(fx.hostPath('kl'), fx.hostPath('links', 'other'));
    await unlink(fx.hostPath('kl'));
    expect((await fx.getattr(kf)).status).toBe(NFS3ERR_STALE);
    expect((await fx.getattr(ko)).status).toBe(NFS3ERR_STALE);
    expect((await fx.read(ko, 0, 1)).status).toBe(NFS3ERR_STALE);
    expect((await fx.getattr(kl)).status).toBe(NFS3_OK);
    expect((await fx.read(kl, 0, 1)).status).toBe(NFS3_OK);
  });

  it('REMOVE closes the removed file\'s kept descriptor (its blocks are freed at once)', async () => {
    await writeFile(fx.hostPath('removed'), 'x');
    const fh = await fx.walk('removed');
    expect((await fx.getattr(fh)).status).toBe(NFS3_OK);
    expect(holding(fx.hostPath('removed'))).toBe(1);
    const root = await fx.rootFh();
    const r = await fx.call(NFSPROC3.REMOVE, (w) => w.opaque(root).string('removed'));
    expect(r.status).toBe(NFS3_OK);
    expect(holding(fx.hostPath('removed'))).toBe(0);
  });

  it('a kept listing is read again after an entry is created, removed or renamed', async () => {
    await mkdir(fx.hostPath('listed'));
    await Promise.all(['a', 'b', 'c'].map((n) => writeFile(fx.hostPath('listed', n), '')));
    const fh = await fx.walk('listed');
    const names = async (): Promise<string[]> => {
      const r = await fx.readdirplus(fh, 0n, 65536, 65536);
      expect(r.status).toBe(NFS3_OK);
      return r.entries.map((e) => e.name).filter((n) => n !== '.' && n !== '..').sort();
    };
    // Settled: each listing below may be kept, and each change must be seen all the same.
    const settle = () => new Promise((r) => setTimeout(r, Number((2n * LISTING_SETTLE_NS) / 1_000_000n)));
    await settle();
    expect(await names()).toEqual(['a', 'b', 'c']);
    await writeFile(fx.hostPath('listed', 'd'), '');
    expect(await names()).toEqual(['a', 'b', 'c', 'd']);
    await settle();
    expect(await names()).toEqual(['a', 'b', 'c', 'd']);
    await unlink(fx.hostPath('listed', 'a'));
    expect(await names()).toEqual(['b', 'c', 'd']);
    await settle();
    expect(await names()).toEqual(['b', 'c', 'd']);
    await rename(fx.hostPath('listed', 'b'), fx.hostPath('listed', 'e'));
    expect(await names()).toEqual(['c', 'd', 'e']);
  });
});
