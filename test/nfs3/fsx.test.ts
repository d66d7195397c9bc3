// fsx-style: random WRITEs, READs, truncates and COMMITs through the NFS procedures, checked against a
// shadow copy, with a page cache small enough to evict, and READ replies held "in flight" across
// later writes (the server's and others') to prove the bytes a pinned reply carries never change.
import { open, readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FILE_SYNC, NFS3_OK, NFSPROC3, UNSTABLE } from '../../server/nfs3/constants.ts';
import { EMPTY_SATTR3, encodeSattr3 } from '../../server/nfs3/xdr.ts';
import { PAGE_SIZE } from '../../server/pagecache/page-cache.ts';
import { makeFixture, type Fixture } from './harness.ts';

let fx: Fixture;

beforeAll(async () => {
  fx = await makeFixture({ pages: 24, limits: { maxRead: 8 * PAGE_SIZE, maxWrite: 8 * PAGE_SIZE } });
});

afterAll(() => fx?.close());

/** xorshift32: the same sequence on every run. */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return (n: number) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}

const MAX_SIZE = 12 * PAGE_SIZE;

describe('fsx', () => {
  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: 1,500 random operations keep file, cache and shadow identical`, async () => {
      const rand = rng(seed * 7919);
      const name = `fsx-${seed}`;
      let shadow = Buffer.alloc(0);
      await writeFile(fx.hostPath(name), shadow);
      const fh = await fx.walk(name);
      const held: { data: Buffer[]; want: Buffer; release: () => void }[] = [];

      for (let op = 0; op < 1500; op++) {
        const kind = rand(10);
        if (kind < 4) {
          const off = rand(MAX_SIZE);
          const len = 1 + rand(3 * PAGE_SIZE);
          const data = Buffer.alloc(len);
          for (let i = 0; i < len; i++) data[i] = rand(256);
          const { status } = await fx.call(NFSPROC3.WRITE, (w) =>
            w.opaque(fh).uint64(off).uint32(len).uint32(rand(2) ? UNSTABLE : FILE_SYNC).opaque(data),
          );
          expect(status).toBe(NFS3_OK);
          if (off + len > shadow.length) shadow = Buffer.concat([shadow, Buffer.alloc(off + len - shadow.length)]);
          data.copy(shadow, off);
        } else if (kind < 8) {
          const off = rand(MAX_SIZE + PAGE_SIZE);
          const len = rand(4 * PAGE_SIZE);
          const keep = rand(4) === 0 && held.length < 3;
          const r = await fx.read(fh, off, len, { keep });
          expect(r.status).toBe(NFS3_OK);
          const want = shadow.subarray(Math.min(off, shadow.length), Math.min(off + len, shadow.length));
          expect(r.data!.equals(want), `op ${op}: read ${off}+${len}`).toBe(true);
          expect(r.eof).toBe(off + want.length >= shadow.length);
          if (keep && r.release) {
            // The chunks as the transport would send them, minus header and padding.
            const dataChunks = r.chunks.filter((c) => fx.pageCache.frames.some((f) => f.buf.buffer === c.buffer));
            held.push({ data: dataChunks, want: Buffer.from(want), release: r.release });
          }
        } else if (kind < 9) {
          const size = rand(MAX_SIZE);
          const { status } = await fx.call(NFSPROC3.SETATTR, (w) => {
            encodeSattr3(w.opaque(fh), { ...EMPTY_SATTR3, size: BigInt(size) });
            w.bool(false);
          });
          expect(status).toBe(NFS3_OK);
          shadow = size <= shadow.length ? Buffer.from(shadow.subarray(0, size)) : Buffer.concat([shadow, Buffer.alloc(size - shadow.length)]);
        } else if (rand(2) === 0) {
          expect((await fx.call(NFSPROC3.COMMIT, (w) => w.opaque(fh).uint64(0).uint32(0))).status).toBe(NFS3_OK);
        } else {
          // A write behind the server's back. The wait lets the file's mtime tick (coarse clocks): a
          // change inside the same tick that keeps the size is invisible to any mtime-based cache.
          await new Promise((r) => setTimeout(r, 5));
          const off = rand(shadow.length + 1);
          const data = Buffer.alloc(1 + rand(100), rand(256));
          const h = await open(fx.hostPath(name), 'r+');
          await h.write(data, 0, data.length, off);
          await h.close();
          if (off + data.length > shadow.length) shadow = Buffer.concat([shadow, Buffer.alloc(off + data.length - shadow.length)]);
          data.copy(shadow, off);
        }
        // Replies "in flight" still carry exactly the bytes they were built with.
        if (held.length > 0 && rand(3) === 0) {
          const h = held.shift()!;
          expect(Buffer.concat(h.data).equals(h.want), `op ${op}: pinned reply changed`).toBe(true);
          h.release();
        }
      }
      for (const h of held) {
        expect(Buffer.concat(h.data).equals(h.want)).toBe(true);
        h.release();
      }
      expect(fx.pageCache.pinned).toBe(0);
      expect((await readFile(fx.hostPath(name))).equals(shadow)).toBe(true);
    });
  }
});
