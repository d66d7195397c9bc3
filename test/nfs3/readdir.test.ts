import { lstat, mkdir, unlink, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NF3DIR, NFS3ERR_ACCES, NFS3ERR_BADHANDLE, NFS3ERR_NOTDIR, NFS3ERR_TOOSMALL, NFS3_OK, NFSPROC3 } from '../../server/nfs3/constants.ts';
import { makeFixture, userCred, type Fixture } from './harness.ts';

const MANY = 2500;
let fx: Fixture;
const manyNames = Array.from({ length: MANY }, (_, i) => `entry-${String(i).padStart(4, '0')}-${'x'.repeat(i % 23)}`);

beforeAll(async () => {
  fx = await makeFixture();
  await mkdir(fx.hostPath('many'));
  await Promise.all(manyNames.map((n) => writeFile(fx.hostPath('many', n), '')));
  await mkdir(fx.hostPath('small'));
  await writeFile(fx.hostPath('small', 'a'), 'a');
  await mkdir(fx.hostPath('small', 'd'));
  await writeFile(fx.hostPath('file'), '');
  await mkdir(fx.hostPath('closed'), { mode: 0o711 });
  await import('node:fs/promises').then((f) => f.chmod(fx.hostPath('closed'), 0o711));
});

afterAll(() => fx?.close());

/** Lists a directory completely with READDIR of `count` bytes per call. */
async function listAll(dir: Buffer, count: number, between?: (page: number) => Promise<void>) {
  const seen: { name: string; fileid: bigint; cookie: bigint }[] = [];
  let cookie = 0n;
  let verf = Buffer.alloc(8);
  for (let page = 0; ; page++) {
    const r = await fx.readdir(dir, cookie, count, verf);
    expect(r.status).toBe(NFS3_OK);
    expect(r.body.length, `page ${page} reply size`).toBeLessThanOrEqual(count);
    seen.push(...r.entries);
    if (r.eof) return { seen, pages: page + 1 };
    expect(r.entries.length).toBeGreaterThan(0);
    cookie = r.entries.at(-1)!.cookie;
    verf = r.verf!;
    await between?.(page);
  }
}

describe('READDIR', () => {
  it('lists ".", ".." and every entry with fileids matching the inodes', async () => {
    const dir = await fx.walk('small');
    const r = await fx.readdir(dir, 0n, 4096);
    expect(r.eof).toBe(true);
    expect(r.entries.map((e) => e.name).sort()).toEqual(['.', '..', 'a', 'd']);
    const a = r.entries.find((e) => e.name === 'a')!;
    expect(a.fileid).toBe((await lstat(fx.hostPath('small', 'a'), { bigint: true })).ino);
    expect(r.entries.find((e) => e.name === '..')!.fileid).toBe((await lstat(fx.dir, { bigint: true })).ino);
    expect(r.dirAttrs?.type).toBe(NF3DIR);
  });

  it('lists 2,500 entries across many small calls, each reply within count, none lost or repeated', async () => {
    const dir = await fx.walk('many');
    const { seen, pages } = await listAll(dir, 1024);
    expect(pages).toBeGreaterThan(50);
    const names = seen.map((e) => e.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names.filter((n) => n !== '.' && n !== '..').sort()).toEqual([...manyNames].sort());
    expect(new Set(seen.map((e) => e.cookie)).size).toBe(seen.length);
  });

  it('fills each reply as far as count allows (the next entry would not have fitted)', async () => {
    const dir = await fx.walk('many');
    const r = await fx.readdir(dir, 0n, 2000);
    expect(r.eof).toBe(false);
    // The longest entry here is 4 + 8 + (4 + 28) + 8 = 52 bytes: a fuller reply was impossible.
    expect(r.body.length).toBeGreaterThan(2000 - 52);
  });

  it('keeps cookies valid while entries are created and removed between calls', async () => {
    await mkdir(fx.hostPath('churn'));
    const stable = Array.from({ length: 300 }, (_, i) => `stable-${i}`);
    await Promise.all(stable.map((n) => writeFile(fx.hostPath('churn', n), '')));
    const dir = await fx.walk('churn');
    const { seen } = await listAll(dir, 900, async (page) => {
      await writeFile(fx.hostPath('churn', `new-${page}`), '');
      if (page < 100) await unlink(fx.hostPath('churn', `stable-${page * 3}`)).catch(() => undefined);
    });
    const names = seen.map((e) => e.name);
    expect(new Set(names).size).toBe(names.length);
    const present = new Set(names);
    // Every entry that existed throughout the listing is listed.
    const removed = new Set(Array.from({ length: 100 }, (_, p) => `stable-${p * 3}`));
    for (const n of stable) if (!removed.has(n)) expect(present.has(n), n).toBe(true);
  });

  it('never answers NFS3ERR_BAD_COOKIE: any verifier is accepted and echoed', async () => {
    const dir = await fx.walk('many');
    const first = await fx.readdir(dir, 0n, 1024);
    const verf = Buffer.from('garbage!');
    const r = await fx.readdir(dir, first.entries.at(-1)!.cookie, 1024, verf);
    expect(r.status).toBe(NFS3_OK);
    expect(r.verf).toEqual(verf);
    // A cookie that names no entry resumes after its position.
    const odd = await fx.readdir(dir, 123456789n, 1024);
    expect(odd.status).toBe(NFS3_OK);
  });

  it('NFS3ERR_TOOSMALL when not even one entry fits', async () => {
    const r = await fx.readdir(await fx.walk('many'), 0n, 120);
    expect(r.status).toBe(NFS3ERR_TOOSMALL);
    expect(r.dirAttrs?.type).toBe(NF3DIR);
  });

  it('an exhausted directory answers an empty eof page even with a small count', async () => {
    const dir = await fx.walk('small');
    const all = await fx.readdir(dir, 0n, 4096);
    const r = await fx.readdir(dir, all.entries.at(-1)!.cookie, 120);
    expect([r.status, r.entries.length, r.eof]).toEqual([NFS3_OK, 0, true]);
  });

  it('NFS3ERR_NOTDIR on a file, NFS3ERR_ACCES without read permission, BADHANDLE', async () => {
    const f = await fx.readdir(await fx.walk('file'), 0n, 4096);
    expect(f.status).toBe(NFS3ERR_NOTDIR);
    expect(f.dirAttrs).toBeDefined();
    expect((await fx.readdir(await fx.walk('closed'), 0n, 4096, undefined, { cred: userCred(1000) })).status).toBe(NFS3ERR_ACCES);
    expect((await fx.readdir(Buffer.alloc(3), 0n, 4096)).status).toBe(NFS3ERR_BADHANDLE);
  });
});

describe('READDIRPLUS', () => {
  it('lists 2,500 entries with attributes and working handles, within maxcount and dircount', async () => {
    const dir = await fx.walk('many');
    const seen: string[] = [];
    let cookie = 0n;
    let sampled = 0;
    for (let page = 0; ; page++) {
      const r = await fx.readdirplus(dir, cookie, 1024, 8192);
      expect(r.status).toBe(NFS3_OK);
      expect(r.body.length).toBeLessThanOrEqual(8192);
      const dirInfo = r.entries.reduce((n, e) => n + 8 + 4 + ((Buffer.byteLength(e.name) + 3) & ~3) + 8, 0);
      expect(dirInfo).toBeLessThanOrEqual(1024);
      for (const e of r.entries) {
        seen.push(e.name);
        expect(e.attrs?.fileid).toBe(e.fileid);
        if (sampled++ % 250 === 0) expect((await fx.getattr(e.fh!)).attrs?.fileid).toBe(e.fileid);
      }
      if (r.eof) break;
      cookie = r.entries.at(-1)!.cookie;
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.filter((n) => n !== '.' && n !== '..').sort()).toEqual([...manyNames].sort());
  });

  it('pages with the same cookies as READDIR', async () => {
    const dir = await fx.walk('many');
    const a = await fx.readdir(dir, 0n, 8192);
    const b = await fx.readdirplus(dir, 0n, 65536, 65536);
    const plusCookies = new Map(b.entries.map((e) => [e.name, e.cookie]));
    for (const e of a.entries) expect(plusCookies.get(e.name)).toBe(e.cookie);
  });

  it('".." of the export root is the root itself', async () => {
    const root = await fx.rootFh();
    const r = await fx.readdirplus(root, 0n, 65536, 65536);
    const dotdot = r.entries.find((e) => e.name === '..')!;
    expect(dotdot.fh).toEqual(root);
    expect(r.entries.find((e) => e.name === '.')!.fh).toEqual(root);
  });

  it('NFS3ERR_TOOSMALL and NFS3ERR_NOTDIR', async () => {
    expect((await fx.readdirplus(await fx.walk('many'), 0n, 1024, 200)).status).toBe(NFS3ERR_TOOSMALL);
    expect((await fx.readdirplus(await fx.walk('file'), 0n, 1024, 8192)).status).toBe(NFS3ERR_NOTDIR);
  });
});

describe('names that are not UTF-8', () => {
  it('are refused as arguments (GARBAGE_ARGS) and left out of listings', async () => {
    await mkdir(fx.hostPath('latin1'));
    await writeFile(Buffer.concat([Buffer.from(fx.hostPath('latin1') + '/'), Buffer.from([0x63, 0x61, 0x66, 0xe9])]), 'x');
    await writeFile(fx.hostPath('latin1', 'ok'), 'x');
    const dir = await fx.walk('latin1');
    const r = await fx.readdir(dir, 0n, 4096);
    expect(r.entries.map((e) => e.name).sort()).toEqual(['.', '..', 'ok']);
    await expect(
      fx.call(NFSPROC3.LOOKUP, (w) => {
        w.opaque(dir);
        w.opaque(Buffer.from([0x63, 0x61, 0x66, 0xe9]));
      }),
    ).rejects.toThrow(/not UTF-8/);
  });
});
