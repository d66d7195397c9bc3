/**
 * READDIRPLUS with entries kept between listings (server/vfs/entry-cache.ts): a listing never
 * reports attributes older than a change made through the server, nor one the kernel reported by
 * inotify; hard-linked files and directories are stat'ed every time.
 */
import { appendFileSync, chmodSync, linkSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GUARDED, NFS3_OK, NFSPROC3 } from '../../server/nfs3/constants.ts';
import { EMPTY_SATTR3, encodeDiropargs3, encodeSattr3 } from '../../server/nfs3/xdr.ts';
import { entryCacheExposition } from '../../server/telemetry/entry-cache-metrics.ts';
import { makeFixture, type Fixture } from './harness.ts';

let fx: Fixture;
let dir: Buffer;

beforeAll(async () => {
  fx = await makeFixture();
  await mkdir(fx.hostPath('d'));
  await Promise.all(['a', 'b', 'c', 'local', 'linked', 'mode'].map((n) => writeFile(fx.hostPath('d', n), 'x')));
  await mkdir(fx.hostPath('d', 'sub'));
  linkSync(fx.hostPath('d', 'linked'), fx.hostPath('other-name'));
  dir = await fx.walk('d');
});

afterAll(() => fx?.close());

/** One READDIRPLUS of the whole directory: name → attributes. */
async function listing() {
  const r = await fx.readdirplus(dir, 0n, 65536, 65536);
  expect(r.status).toBe(NFS3_OK);
  expect(r.eof).toBe(true);
  return new Map(r.entries.map((e) => [e.name, e.attrs!]));
}

/** Lists until `ok` holds of the listing (an inotify event is read on a later event-loop turn); fails after 5 s. */
async function listingUntil(ok: (l: Awaited<ReturnType<typeof listing>>) => boolean) {
  const until = Date.now() + 5000;
  for (;;) {
    const l = await listing();
    if (ok(l) || Date.now() > until) return l;
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('READDIRPLUS with kept entries', () => {
  it('keeps the entries it may, and reports the same attributes as GETATTR', async () => {
    const first = await listing();
    // a, b, c, local and mode; not linked (two names) nor sub (a directory), nor . and ..
    expect(fx.ctx.entries.entries).toBe(5);
    const again = await listing();
    // The directory's own atime moves with each readdir; the files' attributes do not.
    for (const n of ['a', 'b', 'c', 'local', 'mode', 'linked', 'sub']) expect(again.get(n), n).toEqual(first.get(n));
    const a = await fx.lookup(dir, 'a');
    expect((await fx.getattr(a.fh!)).attrs).toEqual(again.get('a'));
  });

  it('reports a WRITE made through the server in the next listing, and drops only that entry', async () => {
    await listing();
    const kept = fx.ctx.entries.entries;
    const a = (await fx.lookup(dir, 'a')).fh!;
    const { status } = await fx.call(NFSPROC3.WRITE, (w) => w.opaque(a).uint64(0).uint32(5).uint32(2).opaque(Buffer.from('12345')));
    expect(status).toBe(NFS3_OK);
    expect(fx.ctx.entries.entries).toBe(kept - 1);
    expect((await listing()).get('a')!.size).toBe(5n);
  });

  it('keeps the entries of a directory while the server changes another', async () => {
    await listing();
    const kept = fx.ctx.entries.entries;
    const root = await fx.rootFh();
    const { status } = await fx.call(NFSPROC3.CREATE, (w) => (encodeDiropargs3(w, { dir: root, name: 'elsewhere' }), w.uint32(GUARDED), encodeSattr3(w, EMPTY_SATTR3)));
    expect(status).toBe(NFS3_OK);
    expect(fx.ctx.entries.entries).toBe(kept);
  });

  it('reports a file changed behind the server once inotify has told', async () => {
    await listing();
    appendFileSync(fx.hostPath('d', 'local'), 'more bytes');
    chmodSync(fx.hostPath('d', 'mode'), 0o600);
    const l = await listingUntil((m) => m.get('local')!.size === 11n && m.get('mode')!.mode === 0o600);
    expect(l.get('local')!.size).toBe(11n);
    expect(l.get('mode')!.mode).toBe(0o600);
  });

  it('stats a hard-linked file every time: a write through its other name is in the very next listing', async () => {
    await listing();
    writeFileSync(fx.hostPath('other-name'), 'through the other name');
    expect((await listing()).get('linked')!.size).toBe(22n);
  });

  it('stats a directory every time: an entry made inside it shows in its link count and times at once', async () => {
    const before = (await listing()).get('sub')!;
    await mkdir(fx.hostPath('d', 'sub', 'inner'));
    const after = (await listing()).get('sub')!;
    expect(after.nlink).toBe(before.nlink + 1);
  });

  it('counts what it keeps and watches for /metrics', async () => {
    await listing();
    const s = fx.ctx.entries.stats();
    // d holds a directory and a hard-linked file: its page cannot be kept whole.
    expect(s).toEqual({ entries: fx.ctx.entries.entries, directories: 1, unwatchable: 0, runBytes: 0 });
    const text = entryCacheExposition({ maxEntries: 32_768, maxAgeMs: 60_000, maxRunBytes: 1 << 20 }, s);
    expect(text).toContain(`pagelife_entry_cache_entries ${s.entries}\n`);
    expect(text).toContain('pagelife_entry_cache_max_entries 32768\n');
    expect(text).toContain('pagelife_entry_cache_directories 1\n');
    expect(text).toContain('pagelife_entry_cache_unwatchable_total 0\n');
    expect(text).toContain('pagelife_entry_cache_run_bytes 0\n');
  });

  it('keeps nothing when disabled', async () => {
    const off = await makeFixture({ entryCache: { maxEntries: 0 } });
    try {
      await writeFile(off.hostPath('f'), 'x');
      await off.readdirplus(await off.rootFh(), 0n, 65536, 65536);
      expect(off.ctx.entries.entries).toBe(0);
    } finally {
      await off.close();
    }
  });
});

describe('READDIRPLUS pages kept whole', () => {
  let plain: Buffer;
  const names = Array.from({ length: 40 }, (_, i) => `file-${String(i).padStart(2, '0')}`);

  beforeAll(async () => {
    await mkdir(fx.hostPath('plain'));
    await Promise.all(names.map((n) => writeFile(fx.hostPath('plain', n), 'x')));
    plain = await fx.walk('plain');
  });

  /** The whole directory in pages of at most `maxcount` bytes: [page sizes, name → attributes]. */
  async function pages(maxcount = 1024) {
    const sizes: number[] = [];
    const all = new Map<string, Awaited<ReturnType<typeof fx.readdirplus>>['entries'][number]>();
    for (let cookie = 0n, eof = false; !eof; ) {
      const r = await fx.readdirplus(plain, cookie, 65536, maxcount);
      expect(r.status).toBe(NFS3_OK);
      sizes.push(r.entries.length);
      for (const e of r.entries) all.set(e.name, e);
      cookie = r.entries[r.entries.length - 1]!.cookie;
      eof = r.eof;
    }
    return { sizes, all };
  }

  const runBytes = () => fx.ctx.entries.stats().runBytes;

  it('lists the same pages from kept runs as from the entries they were made of', async () => {
    const first = await pages();
    expect(first.sizes.length).toBeGreaterThan(2);
    expect([...first.all.keys()].filter((n) => n !== '.' && n !== '..').sort()).toEqual(names);
    const kept = runBytes();
    expect(kept).toBeGreaterThan(0);
    const again = await pages();
    expect(again.sizes).toEqual(first.sizes);
    for (const n of names) expect(again.all.get(n), n).toEqual(first.all.get(n));
    expect(runBytes()).toBe(kept);
    // Another room makes other pages, kept beside the first ones.
    const wider = await pages(2048);
    expect(wider.sizes.length).toBeLessThan(first.sizes.length);
    expect(runBytes()).toBeGreaterThan(kept);
  });

  it('drops the runs of a directory when one of its files is changed through the server', async () => {
    await pages();
    const fh = (await fx.lookup(plain, 'file-07')).fh!;
    const { status } = await fx.call(NFSPROC3.WRITE, (w) => w.opaque(fh).uint64(0).uint32(3).uint32(2).opaque(Buffer.from('abc')));
    expect(status).toBe(NFS3_OK);
    expect(runBytes()).toBe(0);
    expect((await pages()).all.get('file-07')!.attrs!.size).toBe(3n);
  });

  it('lists a name added behind the server once inotify has told, and a name added through it at once', async () => {
    await pages();
    await writeFile(fx.hostPath('plain', 'zz-host'), 'x');
    const until = Date.now() + 5000;
    while (!(await pages()).all.has('zz-host') && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    expect((await pages()).all.has('zz-host')).toBe(true);
    await pages();
    const { status } = await fx.call(NFSPROC3.CREATE, (w) => (encodeDiropargs3(w, { dir: plain, name: 'zz-nfs' }), w.uint32(GUARDED), encodeSattr3(w, EMPTY_SATTR3)));
    expect(status).toBe(NFS3_OK);
    expect((await pages()).all.has('zz-nfs')).toBe(true);
  });

  it('keeps no run when maxRunBytes is 0', async () => {
    const off = await makeFixture({ entryCache: { maxRunBytes: 0 } });
    try {
      await Promise.all(names.map((n) => writeFile(off.hostPath(n), 'x')));
      for (let i = 0; i < 2; i++) expect((await off.readdirplus(await off.rootFh(), 0n, 65536, 65536)).eof).toBe(true);
      expect(off.ctx.entries.entries).toBe(names.length);
      expect(off.ctx.entries.stats().runBytes).toBe(0);
    } finally {
      await off.close();
    }
  });
});

describe('procedures that change anything', () => {
  it('each names what it changes, so that listings stat it again', async () => {
    const dir = new URL('../../server/nfs3/', import.meta.url);
    const changing: string[] = [];
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
      for (const v of Object.values(await import(new URL(f, dir).href))) {
        const p = v as { name?: unknown; run?: unknown; nonIdempotent?: boolean; changes?: unknown };
        if (typeof p?.run !== 'function' || typeof p.name !== 'string' || !p.nonIdempotent) continue;
        changing.push(p.name);
        expect(typeof p.changes, p.name).toBe('function');
      }
    }
    expect(changing.sort()).toEqual(['CREATE', 'LINK', 'MKDIR', 'MKNOD', 'REMOVE', 'RENAME', 'RMDIR', 'SETATTR', 'SYMLINK', 'WRITE']);
  });
});
