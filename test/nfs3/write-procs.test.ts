import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, chown, lstat, mkdir, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DATA_SYNC,
  EXCLUSIVE,
  FILE_SYNC,
  GUARDED,
  NF3BLK,
  NF3CHR,
  NF3DIR,
  NF3FIFO,
  NF3LNK,
  NF3REG,
  NF3SOCK,
  NFS3ERR_ACCES,
  NFS3ERR_BADHANDLE,
  NFS3ERR_BADTYPE,
  NFS3ERR_EXIST,
  NFS3ERR_FBIG,
  NFS3ERR_INVAL,
  NFS3ERR_ISDIR,
  NFS3ERR_NAMETOOLONG,
  NFS3ERR_NOENT,
  NFS3ERR_NOTDIR,
  NFS3ERR_NOTEMPTY,
  NFS3ERR_NOT_SYNC,
  NFS3ERR_PERM,
  NFS3ERR_ROFS,
  NFS3ERR_STALE,
  NFS3ERR_XDEV,
  NFS3_OK,
  NFSPROC3,
  SET_TO_CLIENT_TIME,
  SET_TO_SERVER_TIME,
  UNCHECKED,
  UNSTABLE,
} from '../../server/nfs3/constants.ts';
import { EMPTY_SATTR3, encodeDiropargs3, encodeSattr3, type sattr3 } from '../../server/nfs3/xdr.ts';
import { PAGE_SIZE } from '../../server/pagecache/page-cache.ts';
import { nfstime3FromNs } from '../../server/nfs3/attr.ts';
import { NFS3_RESULTS } from '../../server/nfs3/results.ts';
import type { XdrWriter } from '../../xdr/writer.ts';
import { makeFixture, rootCred, userCred, type Fixture } from './harness.ts';
import { afterBytes, firstBytes } from '../../server/nfs3/write.ts';

const isRoot = process.getuid?.() === 0;
let fx: Fixture;
let ro: Fixture;
let squash: Fixture;

beforeAll(async () => {
  fx = await makeFixture({ exports: [{}, { path: '/second' }], limits: { maxWrite: 65536 } });
  ro = await makeFixture({ exports: [{ options: 'ro,no_root_squash,insecure' }] });
  await writeFile(ro.hostPath('f'), 'read only');
  squash = await makeFixture({ exports: [{ options: 'rw,root_squash,insecure' }] });
  await chmod(squash.dir, 0o777);
});

afterAll(async () => {
  await fx?.close();
  await ro?.close();
  await squash?.close();
});

const attrs = (s: Partial<sattr3>): sattr3 => ({ ...EMPTY_SATTR3, ...s });

async function setattr(f: Fixture, fh: Buffer, s: Partial<sattr3>, guard?: { seconds: number; nseconds: number }, cred = rootCred) {
  const { status, wcc } = await f.wccCall(
    NFSPROC3.SETATTR,
    (w) => {
      encodeSattr3(w.opaque(fh), attrs(s));
      w.optional(guard, (x, g) => x.uint32(g.seconds).uint32(g.nseconds));
    },
    { cred },
  );
  return { status, wcc };
}

async function write(f: Fixture, fh: Buffer, offset: number | bigint, data: Buffer, stable = UNSTABLE, cred = rootCred, count = data.length, cuts?: number[]) {
  const { status, res } = await f.result('WRITE', (w) => w.opaque(fh).uint64(offset).uint32(count).uint32(stable).opaque(data), { cred, ...(cuts ? { cuts } : {}) });
  if (res.status !== NFS3_OK) return { status, wcc: res.resfail.file_wcc };
  const ok = res.resok;
  return { status, wcc: ok.file_wcc, count: ok.count, committed: ok.committed, verf: Buffer.from(ok.verf) };
}

const createArgs = (dir: Buffer, name: string, how: number, s: Partial<sattr3> | Buffer = {}) => (w: XdrWriter) => {
  encodeDiropargs3(w, { dir, name });
  w.uint32(how);
  if (Buffer.isBuffer(s)) w.fixedOpaque(s);
  else encodeSattr3(w, attrs(s));
};

const create = (f: Fixture, dir: Buffer, name: string, how = UNCHECKED, s: Partial<sattr3> | Buffer = {}, cred = rootCred) =>
  f.diropres(NFSPROC3.CREATE, createArgs(dir, name, how, s), { cred });

const mkdirCall = (f: Fixture, dir: Buffer, name: string, s: Partial<sattr3> = {}, cred = rootCred) =>
  f.diropres(NFSPROC3.MKDIR, (w) => (encodeDiropargs3(w, { dir, name }), encodeSattr3(w, attrs(s))), { cred });

const dirop = (f: Fixture, proc: number, dir: Buffer, name: string, cred = rootCred) =>
  f.wccCall(proc, (w) => encodeDiropargs3(w, { dir, name }), { cred });

describe('SETATTR', () => {
  it('changes mode and returns wcc_data with before and after attributes', async () => {
    await writeFile(fx.hostPath('sa'), 'hello');
    const fh = await fx.walk('sa');
    const before = await lstat(fx.hostPath('sa'), { bigint: true });
    const { status, wcc } = await setattr(fx, fh, { mode: 0o640 });
    expect(status).toBe(NFS3_OK);
    expect(wcc.before?.size).toBe(5n);
    expect(wcc.before?.ctime).toEqual(nfstime3FromNs(before.ctimeNs));
    expect(wcc.after?.mode).toBe(0o640);
    expect((await stat(fx.hostPath('sa'))).mode & 0o7777).toBe(0o640);
  });

  it('applies only when the ctime guard matches, else NFS3ERR_NOT_SYNC', async () => {
    const fh = await fx.walk('sa');
    const st = await lstat(fx.hostPath('sa'), { bigint: true });
    const wrong = await setattr(fx, fh, { mode: 0o600 }, { seconds: 1, nseconds: 2 });
    expect(wrong.status).toBe(NFS3ERR_NOT_SYNC);
    expect(wrong.wcc.before).toBeDefined();
    expect(wrong.wcc.after?.mode).toBe(0o640);
    expect((await setattr(fx, fh, { mode: 0o600 }, nfstime3FromNs(st.ctimeNs))).status).toBe(NFS3_OK);
  });

  it('truncates and extends; READ sees the new size even with cached pages', async () => {
    await writeFile(fx.hostPath('trunc'), Buffer.alloc(3 * PAGE_SIZE, 7));
    const fh = await fx.walk('trunc');
    expect((await fx.read(fh, 0, 3 * PAGE_SIZE)).count).toBe(3 * PAGE_SIZE);
    expect((await setattr(fx, fh, { size: 10n })).wcc.after?.size).toBe(10n);
    const r = await fx.read(fh, 0, 3 * PAGE_SIZE);
    expect([r.count, r.eof]).toEqual([10, true]);
    await setattr(fx, fh, { size: 20n });
    const r2 = await fx.read(fh, 0, 100);
    expect(r2.data).toEqual(Buffer.concat([Buffer.alloc(10, 7), Buffer.alloc(10)]));
  });

  it('sets times from the client or the server clock', async () => {
    const fh = await fx.walk('sa');
    const t = { seconds: 1_600_000_000, nseconds: 0 };
    const { status, wcc } = await setattr(fx, fh, { atime: { how: SET_TO_CLIENT_TIME, time: t }, mtime: { how: SET_TO_CLIENT_TIME, time: t } });
    expect(status).toBe(NFS3_OK);
    expect(wcc.after?.mtime).toEqual(t);
    expect(wcc.after?.atime).toEqual(t);
    const now = Math.floor(Date.now() / 1000);
    const s = await setattr(fx, fh, { mtime: { how: SET_TO_SERVER_TIME } });
    expect(Math.abs(s.wcc.after!.mtime.seconds - now)).toBeLessThan(5);
    expect(s.wcc.after?.atime).toEqual(t);
  });

  it('permission rules: chmod and client times need ownership (PERM), chown needs root (PERM), size needs write (ACCES)', async () => {
    await writeFile(fx.hostPath('others'), 'x', { mode: 0o644 });
    const fh = await fx.walk('others');
    const u = userCred(1000);
    expect((await setattr(fx, fh, { mode: 0o777 }, undefined, u)).status).toBe(NFS3ERR_PERM);
    expect((await setattr(fx, fh, { uid: 1000 }, undefined, u)).status).toBe(NFS3ERR_PERM);
    expect((await setattr(fx, fh, { size: 0n }, undefined, u)).status).toBe(NFS3ERR_ACCES);
    expect((await setattr(fx, fh, { mtime: { how: SET_TO_CLIENT_TIME, time: { seconds: 1, nseconds: 0 } } }, undefined, u)).status).toBe(NFS3ERR_PERM);
    expect((await setattr(fx, fh, { mtime: { how: SET_TO_SERVER_TIME } }, undefined, u)).status).toBe(NFS3ERR_ACCES);
  });

  it.skipIf(!isRoot)('the owner may chmod and chgrp to a group it is in; root may chown', async () => {
    await writeFile(fx.hostPath('mine'), 'x');
    await chown(fx.hostPath('mine'), 1000, 1000);
    const fh = await fx.walk('mine');
    const u = userCred(1000, 1000, [2000]);
    expect((await setattr(fx, fh, { mode: 0o600 }, undefined, u)).status).toBe(NFS3_OK);
    expect((await setattr(fx, fh, { gid: 2000 }, undefined, u)).wcc.after?.gid).toBe(2000);
    expect((await setattr(fx, fh, { gid: 3000 }, undefined, u)).status).toBe(NFS3ERR_PERM);
    expect((await setattr(fx, fh, { uid: 1234 })).wcc.after?.uid).toBe(1234);
  });

  it('size of a directory is NFS3ERR_ISDIR, of a symlink NFS3ERR_INVAL; ROFS, STALE, BADHANDLE', async () => {
    await mkdir(fx.hostPath('sadir'));
    await symlink('x', fx.hostPath('salink'));
    expect((await setattr(fx, await fx.walk('sadir'), { size: 0n })).status).toBe(NFS3ERR_ISDIR);
    expect((await setattr(fx, await fx.walk('salink'), { size: 0n })).status).toBe(NFS3ERR_INVAL);
    const rof = await setattr(ro, await ro.walk('f'), { mode: 0o600 });
    expect(rof.status).toBe(NFS3ERR_ROFS);
    expect(rof.wcc.before?.size).toBe(9n);
    expect((await setattr(fx, Buffer.alloc(44), {})).status).toBe(NFS3ERR_BADHANDLE);
    await writeFile(fx.hostPath('sagone'), '');
    const gone = await fx.walk('sagone');
    await import('node:fs/promises').then((m) => m.unlink(fx.hostPath('sagone')));
    expect((await setattr(fx, gone, { mode: 0o600 })).status).toBe(NFS3ERR_STALE);
  });
});

describe('WRITE and COMMIT', () => {
  it('writes at any offset; UNSTABLE, DATA_SYNC and FILE_SYNC are answered as done, with the server verifier', async () => {
    await writeFile(fx.hostPath('w'), '');
    const fh = await fx.walk('w');
    const a = await write(fx, fh, 0, Buffer.from('hello'), UNSTABLE);
    expect(a).toMatchObject({ status: NFS3_OK, count: 5, committed: UNSTABLE });
    expect(a.verf).toEqual(fx.ctx.writeVerifier);
    expect(a.wcc.before?.size).toBe(0n);
    expect(a.wcc.after?.size).toBe(5n);
    expect((await write(fx, fh, 5, Buffer.from(' world'), DATA_SYNC)).committed).toBe(DATA_SYNC);
    expect((await write(fx, fh, 20, Buffer.from('!'), FILE_SYNC)).committed).toBe(FILE_SYNC);
    const content = await readFile(fx.hostPath('w'));
    expect(content).toEqual(Buffer.concat([Buffer.from('hello world'), Buffer.alloc(9), Buffer.from('!')]));
    const c = await fx.call(NFSPROC3.COMMIT, (w) => w.opaque(fh).uint64(0).uint32(0));
    expect(c.status).toBe(NFS3_OK);
    const committed = NFS3_RESULTS.COMMIT.resok.decode(c.r);
    expect(committed.file_wcc.after?.size).toBe(21n);
    expect(Buffer.from(committed.verf)).toEqual(fx.ctx.writeVerifier);
  });

  it('keeps cached pages coherent: READ after WRITE sees the new bytes', async () => {
    await writeFile(fx.hostPath('coh'), Buffer.alloc(2 * PAGE_SIZE, 1));
    const fh = await fx.walk('coh');
    await fx.read(fh, 0, 2 * PAGE_SIZE);
    await write(fx, fh, PAGE_SIZE - 2, Buffer.from('ABCD'));
    const r = await fx.read(fh, PAGE_SIZE - 4, 8);
    expect(r.data).toEqual(Buffer.from([1, 1, 65, 66, 67, 68, 1, 1]));
    const stats = fx.pageCache.stats();
    expect(stats.dirty).toBeGreaterThan(0);
    await fx.call(NFSPROC3.COMMIT, (w) => w.opaque(fh).uint64(0).uint32(0));
    await write(fx, fh, 2 * PAGE_SIZE, Buffer.from('tail'), FILE_SYNC);
    expect((await fx.read(fh, 2 * PAGE_SIZE - 1, 10)).data).toEqual(Buffer.from('\x01tail'));
  });

  it('a write to pages pinned by a READ reply in flight leaves that reply unchanged (copy-on-write)', async () => {
    await writeFile(fx.hostPath('pinned'), Buffer.alloc(PAGE_SIZE, 0x61));
    const fh = await fx.walk('pinned');
    const inflight = await fx.read(fh, 0, PAGE_SIZE, { keep: true });
    const dataChunk = inflight.chunks.find((c) => c.length === PAGE_SIZE)!;
    await write(fx, fh, 0, Buffer.alloc(16, 0x62));
    expect(dataChunk.every((b) => b === 0x61)).toBe(true);
    expect((await fx.read(fh, 0, 16)).data).toEqual(Buffer.alloc(16, 0x62));
    expect(fx.pageCache.stats().cowCopies).toBeGreaterThan(0);
    inflight.release!();
    expect(fx.pageCache.pinned).toBe(0);
  });

  it('with pinnedWrite "wait", a write to a pinned page completes only after the reply is released', async () => {
    const waiting = await makeFixture({ pinnedWrite: 'wait' });
    try {
      await writeFile(waiting.hostPath('p'), Buffer.alloc(PAGE_SIZE, 0x61));
      const fh = await waiting.walk('p');
      const inflight = await waiting.read(fh, 0, PAGE_SIZE, { keep: true });
      const dataChunk = inflight.chunks.find((c) => c.length === PAGE_SIZE)!;
      let done = false;
      const pending = write(waiting, fh, 0, Buffer.alloc(8, 0x62)).then((r) => ((done = true), r));
      await new Promise((r) => setTimeout(r, 20));
      expect(done).toBe(false);
      expect(dataChunk.every((b) => b === 0x61)).toBe(true);
      inflight.release!();
      expect((await pending).status).toBe(NFS3_OK);
      expect(waiting.pageCache.stats().cowCopies).toBe(0);
      expect((await waiting.read(fh, 0, 8)).data).toEqual(Buffer.alloc(8, 0x62));
    } finally {
      await waiting.close();
    }
  });

  it('sees a change made behind the server before its own write (stale pages dropped, not relabelled)', async () => {
    await writeFile(fx.hostPath('behind'), Buffer.alloc(100, 0x30));
    const fh = await fx.walk('behind');
    await fx.read(fh, 0, 100);
    await new Promise((r) => setTimeout(r, 5));
    await writeFile(fx.hostPath('behind'), Buffer.alloc(100, 0x31));
    await write(fx, fh, 0, Buffer.from('Z'));
    const r = await fx.read(fh, 0, 100);
    expect(r.data).toEqual(Buffer.concat([Buffer.from('Z'), Buffer.alloc(99, 0x31)]));
  });

  it('WRITEs in flight together to one file: each wcc_data is of its own write (before = the previous write\'s after), and the bytes read back', async () => {
    await writeFile(fx.hostPath('together'), '');
    const fh = await fx.walk('together');
    const n = 8;
    const blocks = Array.from({ length: n }, (_, i) => Buffer.alloc(PAGE_SIZE, 0x41 + i));
    const results = await Promise.all(blocks.map((b, i) => write(fx, fh, i * PAGE_SIZE, b)));
    expect(results.map((r) => r.status)).toEqual(Array(n).fill(NFS3_OK));
    // The writes run one at a time in some order (not necessarily the order sent): there must be an
    // order in which each write's before attributes are the previous one's after, starting from the
    // empty file and ending at the whole one. Reporting the attributes from before the first write
    // for every write breaks the chain.
    const attrs = (a: { size: bigint; mtime: unknown; ctime: unknown }) => JSON.stringify([a.size, a.mtime, a.ctime], (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    const links = results.map((r) => ({ before: attrs(r.wcc.before!), beforeSize: r.wcc.before!.size, after: attrs(r.wcc.after!), afterSize: r.wcc.after!.size }));
    const chain = (at: string | null, left: typeof links): boolean =>
      left.length === 0 ||
      left.some((l, i) => (at === null ? l.beforeSize === 0n : l.before === at) && chain(l.after, left.filter((_, j) => j !== i)));
    expect(chain(null, links)).toBe(true);
    expect(links.map((l) => l.afterSize).sort((x, y) => Number(x - y)).at(-1)).toBe(BigInt(n * PAGE_SIZE));
    expect(await readFile(fx.hostPath('together'))).toEqual(Buffer.concat(blocks));
    expect((await fx.read(fh, 0, n * PAGE_SIZE)).data).toEqual(Buffer.concat(blocks));
  });

  it('a WRITE whose call arrived in pieces (fields straddling them, the payload across many) writes exactly the bytes sent: file, cached pages, a pinned page', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 3 * PAGE_SIZE + 7 }), fc.nat({ max: 2 * PAGE_SIZE + 3 }), fc.array(fc.nat({ max: 4 * PAGE_SIZE }), { maxLength: 24 }), async (length, offset, cuts) => {
        const name = `pieces-${run++}`;
        const before = Buffer.alloc(6 * PAGE_SIZE, 0x2e);
        await writeFile(fx.hostPath(name), before);
        const fh = await fx.walk(name);
        await fx.read(fh, 0, before.length);
        // A READ reply still in flight pins page 1: the write copies it first (copy-on-write).
        const inflight = await fx.read(fh, PAGE_SIZE, PAGE_SIZE, { keep: true });
        const pinned = Buffer.from(inflight.chunks.find((c) => c.length === PAGE_SIZE)!);
        const data = Buffer.alloc(length);
        for (let i = 0; i < length; i++) data[i] = (i * 31 + run) & 0xff;
        // Cuts in the first bytes too: the handle, offset, count and length words straddle pieces.
        const w = await write(fx, fh, offset, data, UNSTABLE, rootCred, length, [...cuts, ...cuts.map((c) => c % 64)]);
        expect(w).toMatchObject({ status: NFS3_OK, count: length });
        const expected = Buffer.from(before);
        data.copy(expected, offset);
        expect((await readFile(fx.hostPath(name))).equals(expected)).toBe(true);
        expect((await fx.read(fh, 0, before.length)).data!.equals(expected)).toBe(true);
        expect(inflight.chunks.find((c) => c.length === PAGE_SIZE)!.equals(pinned)).toBe(true);
        inflight.release!();
      }),
      { numRuns: 40 },
    );
    expect(fx.pageCache.pinned).toBe(0);
  });

  it('firstBytes and afterBytes cut a WRITE payload in pieces at any byte, as views', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 20 }), { maxLength: 8 }), fc.nat(), (arrays, k) => {
        const pieces = arrays.map((a) => Buffer.from(a));
        const all = Buffer.concat(pieces);
        const n = k % (all.length + 1);
        expect(Buffer.concat(firstBytes(pieces, n))).toEqual(all.subarray(0, n));
        const rest = afterBytes(pieces, n);
        expect(Buffer.concat(rest)).toEqual(all.subarray(n));
        if (rest.length > 0) expect(rest[0]!.length).toBeGreaterThan(0);
        for (const r of [...rest, ...firstBytes(pieces, n)]) expect(pieces.some((p) => p.buffer === r.buffer)).toBe(true);
      }),
    );
  });

  it('a write the kernel takes only part of (file size limit) goes on from where it stopped, and its EFBIG fails the call', () => {
    const file = fx.hostPath('fsize-limited');
    const script = [
      `import { pwritevAll } from ${JSON.stringify(path.resolve('server/nfs3/write.ts'))};`,
      `import { openSync } from 'node:fs';`,
      `const pieces = [Buffer.alloc(60000, 1), Buffer.alloc(30000, 2), Buffer.alloc(30000, 3)];`,
      `try { await pwritevAll(openSync(${JSON.stringify(file)}, 'w'), pieces, 0); console.log('done'); }`,
      `catch (e) { console.log(e.code); }`,
    ].join('\n');
    // RLIMIT_FSIZE 100,000: the first pwritev writes 100,000 of 120,000 bytes, the next one gets EFBIG.
    const r = spawnSync('prlimit', ['--fsize=100000', process.execPath, '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('EFBIG');
    const got = readFileSync(file);
    expect(got.equals(Buffer.concat([Buffer.alloc(60000, 1), Buffer.alloc(30000, 2), Buffer.alloc(10000, 3)]))).toBe(true);
  });

  it('writes at most maxWrite and at most the data sent', async () => {
    await writeFile(fx.hostPath('big'), '');
    const fh = await fx.walk('big');
    expect((await write(fx, fh, 0, Buffer.alloc(100_000, 1))).count).toBe(65536);
    expect((await stat(fx.hostPath('big'))).size).toBe(65536);
    expect((await write(fx, fh, 0, Buffer.alloc(10, 2), UNSTABLE, rootCred, 50)).count).toBe(10);
    // count below the data sent: only count bytes are written, even when the data spans pieces.
    expect((await write(fx, fh, 70_000, Buffer.alloc(9000, 3), UNSTABLE, rootCred, 5000, [3, 100, 4000, 4100])).count).toBe(5000);
    const content = await readFile(fx.hostPath('big'));
    expect(content.length).toBe(75_000);
    expect(content.subarray(0, 10).every((b) => b === 2)).toBe(true);
    expect(content.subarray(70_000).every((b) => b === 3)).toBe(true);
  });

  it('errors: ISDIR, INVAL on a symlink, FBIG, ACCES, owner override, ROFS, STALE', async () => {
    await mkdir(fx.hostPath('wdir'));
    await symlink('w', fx.hostPath('wlink'));
    expect((await write(fx, await fx.walk('wdir'), 0, Buffer.from('x'))).status).toBe(NFS3ERR_ISDIR);
    expect((await write(fx, await fx.walk('wlink'), 0, Buffer.from('x'))).status).toBe(NFS3ERR_INVAL);
    const w = await fx.walk('w');
    const fb = await write(fx, w, 2n ** 60n, Buffer.from('x'));
    expect(fb.status).toBe(NFS3ERR_FBIG);
    expect(fb.wcc.before).toBeDefined();
    await writeFile(fx.hostPath('rootfile'), 'x', { mode: 0o644 });
    expect((await write(fx, await fx.walk('rootfile'), 0, Buffer.from('y'), UNSTABLE, userCred(1000))).status).toBe(NFS3ERR_ACCES);
    if (isRoot) {
      await writeFile(fx.hostPath('readonly-owned'), 'x');
      await chown(fx.hostPath('readonly-owned'), 1000, 1000);
      await chmod(fx.hostPath('readonly-owned'), 0o444);
      expect((await write(fx, await fx.walk('readonly-owned'), 0, Buffer.from('y'), UNSTABLE, userCred(1000))).status).toBe(NFS3_OK);
    }
    expect((await write(ro, await ro.walk('f'), 0, Buffer.from('y'))).status).toBe(NFS3ERR_ROFS);
    await writeFile(fx.hostPath('wgone'), '');
    const gone = await fx.walk('wgone');
    await import('node:fs/promises').then((m) => m.unlink(fx.hostPath('wgone')));
    expect((await write(fx, gone, 0, Buffer.from('y'))).status).toBe(NFS3ERR_STALE);
    const c = await fx.call(NFSPROC3.COMMIT, (x) => x.opaque(gone).uint64(0).uint32(0));
    expect(c.status).toBe(NFS3ERR_STALE);
    expect((await fx.call(NFSPROC3.COMMIT, (x) => x.opaque(Buffer.alloc(44)).uint64(0).uint32(0))).status).toBe(NFS3ERR_BADHANDLE);
  });
});

describe('CREATE', () => {
  it('UNCHECKED creates with the given mode (no umask) and returns handle, attributes and dir_wcc', async () => {
    const root = await fx.rootFh();
    const c = await create(fx, root, 'new.txt', UNCHECKED, { mode: 0o640 });
    expect(c.status).toBe(NFS3_OK);
    expect(c.attrs).toMatchObject({ type: NF3REG, mode: 0o640, size: 0n });
    expect((await fx.getattr(c.fh!)).attrs?.fileid).toBe(c.attrs!.fileid);
    expect(c.wcc.before).toBeDefined();
    // The directory's attributes once the entry is in it, as GETATTR sees them now.
    expect(c.wcc.after).toEqual((await fx.getattr(root)).attrs);
    expect((await stat(fx.hostPath('new.txt'))).mode & 0o777).toBe(0o640);
  });

  it('UNCHECKED gives the exact mode, whatever the umask took from the mode a new file was born with', async () => {
    const root = await fx.rootFh();
    const umask = process.umask(0o077);
    try {
      const c = await create(fx, root, 'umasked', UNCHECKED, { mode: 0o666 });
      expect(c.status).toBe(NFS3_OK);
      expect(c.attrs?.mode).toBe(0o666);
      expect((await stat(fx.hostPath('umasked'))).mode & 0o7777).toBe(0o666);
    } finally {
      process.umask(umask);
    }
  });

  it('UNCHECKED on an existing file applies only the size (truncation); GUARDED refuses it', async () => {
    const root = await fx.rootFh();
    await writeFile(fx.hostPath('exists'), 'content');
    const c = await create(fx, root, 'exists', UNCHECKED, { size: 0n, mode: 0o600 });
    expect(c.status).toBe(NFS3_OK);
    expect(c.attrs?.size).toBe(0n);
    expect(c.attrs?.mode).not.toBe(0o600);
    expect((await create(fx, root, 'exists', GUARDED)).status).toBe(NFS3ERR_EXIST);
    await mkdir(fx.hostPath('existsdir'));
    expect((await create(fx, root, 'existsdir', UNCHECKED)).status).toBe(NFS3ERR_EXIST);
  });

  it('EXCLUSIVE: a retransmission with the same verifier succeeds, another verifier is NFS3ERR_EXIST', async () => {
    const root = await fx.rootFh();
    const verf = Buffer.from('01234567');
    const first = await create(fx, root, 'excl', EXCLUSIVE, verf);
    expect(first.status).toBe(NFS3_OK);
    const again = await create(fx, root, 'excl', EXCLUSIVE, verf);
    expect(again.status).toBe(NFS3_OK);
    expect(again.fh).toEqual(first.fh);
    expect((await create(fx, root, 'excl', EXCLUSIVE, Buffer.from('76543210'))).status).toBe(NFS3ERR_EXIST);
    // The client's follow-up SETATTR replaces the verifier times.
    expect((await setattr(fx, first.fh!, { mode: 0o644, mtime: { how: SET_TO_SERVER_TIME }, atime: { how: SET_TO_SERVER_TIME } })).status).toBe(NFS3_OK);
    expect((await create(fx, root, 'excl', EXCLUSIVE, verf)).status).toBe(NFS3ERR_EXIST);
  });

  it('name errors: "." and ".." EXIST, "/" ACCES, too long NAMETOOLONG; NOTDIR, ACCES, ROFS', async () => {
    const root = await fx.rootFh();
    expect((await create(fx, root, '.')).status).toBe(NFS3ERR_EXIST);
    expect((await create(fx, root, '..')).status).toBe(NFS3ERR_EXIST);
    expect((await create(fx, root, 'a/b')).status).toBe(NFS3ERR_ACCES);
    const long = await create(fx, root, 'n'.repeat(256));
    expect(long.status).toBe(NFS3ERR_NAMETOOLONG);
    expect(long.wcc.before).toBeDefined();
    expect((await create(fx, await fx.walk('new.txt'), 'x')).status).toBe(NFS3ERR_NOTDIR);
    expect((await create(fx, root, 'nope', UNCHECKED, {}, userCred(1000))).status).toBe(NFS3ERR_ACCES);
    expect((await create(ro, await ro.rootFh(), 'x')).status).toBe(NFS3ERR_ROFS);
  });

  it.skipIf(!isRoot)("gives new files the caller's identity, squashed", async () => {
    await mkdir(fx.hostPath('open'), { mode: 0o777 });
    await chmod(fx.hostPath('open'), 0o777);
    const dir = await fx.walk('open');
    const c = await create(fx, dir, 'byuser', UNCHECKED, { mode: 0o644 }, userCred(1000, 1001));
    expect([c.attrs?.uid, c.attrs?.gid]).toEqual([1000, 1001]);
    const s = await create(squash, await squash.rootFh(), 'byroot', UNCHECKED, { mode: 0o644 });
    expect([s.attrs?.uid, s.attrs?.gid]).toEqual([65534, 65534]);
    const d = await mkdirCall(fx, dir, 'userdir', { mode: 0o755 }, userCred(1000, 1001));
    expect([d.attrs?.uid, d.attrs?.gid]).toEqual([1000, 1001]);
  });
});

describe('MKDIR, SYMLINK, MKNOD', () => {
  it('MKDIR creates a directory with the given mode; EXIST when taken', async () => {
    const root = await fx.rootFh();
    const d = await mkdirCall(fx, root, 'newdir', { mode: 0o750 });
    expect(d.status).toBe(NFS3_OK);
    expect(d.attrs).toMatchObject({ type: NF3DIR, mode: 0o750 });
    expect((await mkdirCall(fx, root, 'newdir')).status).toBe(NFS3ERR_EXIST);
    expect((await mkdirCall(fx, root, '..')).status).toBe(NFS3ERR_EXIST);
    expect((await mkdirCall(ro, await ro.rootFh(), 'x')).status).toBe(NFS3ERR_ROFS);
  });

  it('SYMLINK stores the target verbatim (even one leading outside); READLINK returns it', async () => {
    const root = await fx.rootFh();
    const s = await fx.diropres(NFSPROC3.SYMLINK, (w) => (encodeDiropargs3(w, { dir: root, name: 'sl' }), encodeSattr3(w, EMPTY_SATTR3), w.string('../../etc/passwd')));
    expect(s.status).toBe(NFS3_OK);
    expect(s.attrs?.type).toBe(NF3LNK);
    expect(await readlink(fx.hostPath('sl'))).toBe('../../etc/passwd');
    const again = await fx.diropres(NFSPROC3.SYMLINK, (w) => (encodeDiropargs3(w, { dir: root, name: 'sl' }), encodeSattr3(w, EMPTY_SATTR3), w.string('x')));
    expect(again.status).toBe(NFS3ERR_EXIST);
  });

  const mknodCall = (type: number, name: string) => async () => {
    const root = await fx.rootFh();
    return fx.diropres(NFSPROC3.MKNOD, (w) => {
      encodeDiropargs3(w, { dir: root, name });
      w.uint32(type);
      if (type === NF3CHR || type === NF3BLK) encodeSattr3(w, EMPTY_SATTR3), w.uint32(1).uint32(3);
      else if (type === NF3SOCK || type === NF3FIFO) encodeSattr3(w, attrs({ mode: 0o660 }));
    });
  };

  // NOTSUPP would reach the user as the kernel-internal ENOTSUPP ("Unknown error 524"); PERM is what
  // a client can show, and what knfsd answers when it may not create device nodes.
  it('MKNOD makes FIFOs and sockets; devices are NFS3ERR_PERM when not allowed, other types NFS3ERR_BADTYPE', async () => {
    const fifo = await mknodCall(NF3FIFO, 'fifo')();
    expect(fifo.status).toBe(NFS3_OK);
    expect(fifo.attrs).toMatchObject({ type: NF3FIFO, mode: 0o660 });
    expect((await lstat(fx.hostPath('fifo'))).isFIFO()).toBe(true);
    const sock = await mknodCall(NF3SOCK, 'sock')();
    expect(sock.status).toBe(NFS3_OK);
    expect(sock.attrs?.type).toBe(NF3SOCK);
    expect((await lstat(fx.hostPath('sock'))).isSocket()).toBe(true);
    expect((await mknodCall(NF3FIFO, 'fifo')()).status).toBe(NFS3ERR_EXIST);
    expect((await mknodCall(NF3CHR, 'null')()).status).toBe(NFS3ERR_PERM);
    expect((await mknodCall(NF3BLK, 'blk')()).status).toBe(NFS3ERR_PERM);
    await expect(lstat(fx.hostPath('null'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await mknodCall(NF3REG, 'reg')()).status).toBe(NFS3ERR_BADTYPE);
    expect((await mknodCall(NF3DIR, 'dir')()).status).toBe(NFS3ERR_BADTYPE);
  });
});

describe('MKNOD devices when allowed', () => {
  it.skipIf(!isRoot)('creates character and block device nodes with their numbers', async () => {
    const dev = await makeFixture({ allowDevices: true });
    try {
      const root = await dev.rootFh();
      for (const [type, name] of [
        [NF3CHR, 'null'],
        [NF3BLK, 'blk'],
      ] as const) {
        const r = await dev.diropres(NFSPROC3.MKNOD, (w) => {
          encodeDiropargs3(w, { dir: root, name });
          w.uint32(type);
          encodeSattr3(w, attrs({ mode: 0o600 }));
          w.uint32(1).uint32(3);
        });
        expect(r.status).toBe(NFS3_OK);
        expect(r.attrs).toMatchObject({ type, mode: 0o600, rdev: { specdata1: 1, specdata2: 3 } });
      }
    } finally {
      await dev.close();
    }
  });
});

describe('REMOVE and RMDIR', () => {
  it('REMOVE unlinks; the handle goes stale; dir_wcc reports the change', async () => {
    await writeFile(fx.hostPath('rm-me'), 'x');
    const fh = await fx.walk('rm-me');
    const root = await fx.rootFh();
    const r = await dirop(fx, NFSPROC3.REMOVE, root, 'rm-me');
    expect(r.status).toBe(NFS3_OK);
    expect(r.wcc.before).toBeDefined();
    expect(r.wcc.after).toBeDefined();
    expect((await fx.getattr(fh)).status).toBe(NFS3ERR_STALE);
  });

  it('REMOVE errors: NOENT, ISDIR, ACCES for "." and without permission, ROFS', async () => {
    const root = await fx.rootFh();
    expect((await dirop(fx, NFSPROC3.REMOVE, root, 'no-such')).status).toBe(NFS3ERR_NOENT);
    await mkdir(fx.hostPath('rm-dir'));
    expect((await dirop(fx, NFSPROC3.REMOVE, root, 'rm-dir')).status).toBe(NFS3ERR_ISDIR);
    expect((await dirop(fx, NFSPROC3.REMOVE, root, '.')).status).toBe(NFS3ERR_ACCES);
    await writeFile(fx.hostPath('protected'), 'x');
    expect((await dirop(fx, NFSPROC3.REMOVE, root, 'protected', userCred(1000))).status).toBe(NFS3ERR_ACCES);
    expect((await dirop(ro, NFSPROC3.REMOVE, await ro.rootFh(), 'f')).status).toBe(NFS3ERR_ROFS);
    expect((await dirop(fx, NFSPROC3.REMOVE, await fx.walk('protected'), 'x')).status).toBe(NFS3ERR_NOTDIR);
  });

  it.skipIf(!isRoot)('a sticky directory protects other users’ files', async () => {
    await mkdir(fx.hostPath('sticky'));
    await chmod(fx.hostPath('sticky'), 0o1777);
    await writeFile(fx.hostPath('sticky', 'theirs'), 'x');
    await chown(fx.hostPath('sticky', 'theirs'), 2000, 2000);
    const dir = await fx.walk('sticky');
    expect((await dirop(fx, NFSPROC3.REMOVE, dir, 'theirs', userCred(1000))).status).toBe(NFS3ERR_ACCES);
    expect((await dirop(fx, NFSPROC3.REMOVE, dir, 'theirs', userCred(2000))).status).toBe(NFS3_OK);
  });

  it('RMDIR removes an empty directory; NOTEMPTY, NOTDIR, NOENT otherwise', async () => {
    const root = await fx.rootFh();
    await mkdir(fx.hostPath('full', 'x'), { recursive: true });
    await mkdir(fx.hostPath('empty'));
    expect((await dirop(fx, NFSPROC3.RMDIR, root, 'full')).status).toBe(NFS3ERR_NOTEMPTY);
    expect((await dirop(fx, NFSPROC3.RMDIR, root, 'protected')).status).toBe(NFS3ERR_NOTDIR);
    expect((await dirop(fx, NFSPROC3.RMDIR, root, 'no-such')).status).toBe(NFS3ERR_NOENT);
    expect((await dirop(fx, NFSPROC3.RMDIR, root, '..')).status).toBe(NFS3ERR_ACCES);
    expect((await dirop(fx, NFSPROC3.RMDIR, root, 'empty')).status).toBe(NFS3_OK);
    await expect(stat(fx.hostPath('empty'))).rejects.toThrow();
  });
});

describe('RENAME and LINK', () => {
  const renameCall = (f: Fixture, fromDir: Buffer, from: string, toDir: Buffer, to: string, cred = rootCred) =>
    f.call(
      NFSPROC3.RENAME,
      (w) => {
        encodeDiropargs3(w, { dir: fromDir, name: from });
        encodeDiropargs3(w, { dir: toDir, name: to });
      },
      { cred },
    );

  it('renames files and directories; handles keep working; both wcc_data present', async () => {
    await mkdir(fx.hostPath('ren', 'a', 'deep'), { recursive: true });
    await writeFile(fx.hostPath('ren', 'a', 'deep', 'f'), 'deep file');
    await mkdir(fx.hostPath('ren', 'b'));
    const ren = await fx.walk('ren');
    const b = await fx.walk('ren/b');
    const f = await fx.walk('ren/a/deep/f');
    const r = await renameCall(fx, ren, 'a', b, 'a2');
    expect(r.status).toBe(NFS3_OK);
    const { fromdir_wcc: fromWcc, todir_wcc: toWcc } = NFS3_RESULTS.RENAME.resok.decode(r.r);
    expect(fromWcc.before && fromWcc.after && toWcc.before && toWcc.after).toBeTruthy();
    expect((await fx.read(f, 0, 100)).data?.toString()).toBe('deep file');
    expect((await fx.walk('ren/b/a2/deep/f')).equals(f)).toBe(true);
  });

  it('replaces an existing file; the replaced file’s handle goes stale', async () => {
    await writeFile(fx.hostPath('src'), 'new');
    await writeFile(fx.hostPath('dst'), 'old');
    const dst = await fx.walk('dst');
    const root = await fx.rootFh();
    expect((await renameCall(fx, root, 'src', root, 'dst')).status).toBe(NFS3_OK);
    expect(await readFile(fx.hostPath('dst'), 'utf8')).toBe('new');
    expect((await fx.getattr(dst)).status).toBe(NFS3ERR_STALE);
  });

  it('errors: NOENT, NOTEMPTY, XDEV across exports, INVAL into itself, ACCES, ROFS', async () => {
    const root = await fx.rootFh();
    const noent = await renameCall(fx, root, 'nothing', root, 'x');
    expect(noent.status).toBe(NFS3ERR_NOENT);
    const noentWcc = NFS3_RESULTS.RENAME.resfail.decode(noent.r);
    expect(noentWcc.fromdir_wcc.before).toBeDefined();
    expect(noentWcc.todir_wcc.before).toBeDefined();
    await mkdir(fx.hostPath('d1'));
    await mkdir(fx.hostPath('d2', 'child'), { recursive: true });
    expect([NFS3ERR_NOTEMPTY, NFS3ERR_EXIST]).toContain((await renameCall(fx, root, 'd1', root, 'd2')).status);
    const other = await fx.rootFh(fx.exports[1]);
    expect((await renameCall(fx, root, 'd1', other, 'd1')).status).toBe(NFS3ERR_XDEV);
    expect((await renameCall(fx, root, 'd2', await fx.walk('d2'), 'inside')).status).toBe(NFS3ERR_INVAL);
    expect((await renameCall(fx, root, 'd1', root, 'd3', userCred(1000))).status).toBe(NFS3ERR_ACCES);
    expect((await renameCall(fx, root, '.', root, 'd3')).status).toBe(NFS3ERR_ACCES);
    const rr = await ro.rootFh();
    expect((await renameCall(ro, rr, 'f', rr, 'g')).status).toBe(NFS3ERR_ROFS);
  });

  const linkCall = (f: Fixture, file: Buffer, dir: Buffer, name: string) =>
    f.call(NFSPROC3.LINK, (w) => {
      w.opaque(file);
      encodeDiropargs3(w, { dir, name });
    });

  it('LINK adds a name; file attributes show the new link count', async () => {
    await writeFile(fx.hostPath('orig'), 'x');
    const file = await fx.walk('orig');
    const r = await linkCall(fx, file, await fx.rootFh(), 'alias');
    expect(r.status).toBe(NFS3_OK);
    const linked = NFS3_RESULTS.LINK.resok.decode(r.r);
    expect(linked.file_attributes?.nlink).toBe(2);
    expect(linked.linkdir_wcc.after).toBeDefined();
    expect((await stat(fx.hostPath('alias'))).ino).toBe((await stat(fx.hostPath('orig'))).ino);
  });

  it('LINK errors: EXIST, XDEV, a directory, ROFS', async () => {
    const root = await fx.rootFh();
    const file = await fx.walk('orig');
    const ex = await linkCall(fx, file, root, 'alias');
    expect(ex.status).toBe(NFS3ERR_EXIST);
    expect(NFS3_RESULTS.LINK.resfail.decode(ex.r).file_attributes?.type).toBe(NF3REG);
    expect((await linkCall(fx, file, await fx.rootFh(fx.exports[1]), 'x')).status).toBe(NFS3ERR_XDEV);
    expect([NFS3ERR_PERM, NFS3ERR_ISDIR]).toContain((await linkCall(fx, await fx.walk('d1'), root, 'dlink')).status);
    expect((await linkCall(ro, await ro.walk('f'), await ro.rootFh(), 'g')).status).toBe(NFS3ERR_ROFS);
  });
});
