import { randomBytes } from 'node:crypto';
import { chmodSync, renameSync } from 'node:fs';
import { chmod, link, mkdir, mkdtemp, rename, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NF3DIR, NF3LNK, NFS3ERR_BADHANDLE, NFS3ERR_INVAL, NFS3ERR_NOTDIR, NFS3ERR_STALE, NFS3_OK } from '../../server/nfs3/constants.ts';
import { FH_SECRET_FILE, FH_SIZE } from '../../server/vfs/fh.ts';
import { makeFixture, type Fixture } from './harness.ts';

let fx: Fixture;
let outside: string;

beforeAll(async () => {
  fx = await makeFixture({ exports: [{}, { path: '/other' }] });
  outside = await mkdtemp(path.join(os.tmpdir(), 'pagelife-outside-'));
  await writeFile(path.join(outside, 'passwd'), 'outside secret');
  await mkdir(fx.hostPath('sub', 'deeper'), { recursive: true });
  await writeFile(fx.hostPath('sub', 'deeper', 'file'), 'deep');
  await writeFile(fx.hostPath('hello.txt'), 'hello');
  await symlink(outside, fx.hostPath('escape'));
  await symlink('/', fx.hostPath('root-link'));
  await symlink(path.join(outside, 'passwd'), fx.hostPath('passwd-link'));
});

afterAll(async () => {
  await fx?.close();
  await rm(outside, { recursive: true, force: true });
});

describe('file handle forgery', () => {
  it('every flipped byte, truncation, extension and random handle is NFS3ERR_BADHANDLE', async () => {
    const fh = await fx.walk('hello.txt');
    expect(fh.length).toBe(FH_SIZE);
    for (let i = 0; i < fh.length; i++) {
      const bad = Buffer.from(fh);
      bad[i]! ^= 0x01;
      expect((await fx.getattr(bad)).status, `byte ${i}`).toBe(NFS3ERR_BADHANDLE);
    }
    expect((await fx.getattr(fh.subarray(0, fh.length - 1))).status).toBe(NFS3ERR_BADHANDLE);
    expect((await fx.getattr(Buffer.concat([fh, Buffer.alloc(4)]))).status).toBe(NFS3ERR_BADHANDLE);
    expect((await fx.getattr(Buffer.alloc(0))).status).toBe(NFS3ERR_BADHANDLE);
    for (let i = 0; i < 50; i++) expect((await fx.getattr(randomBytes(1 + (i % 64)))).status).toBe(NFS3ERR_BADHANDLE);
  });

  it('a handle longer than NFS3_FHSIZE is garbage (XdrError → GARBAGE_ARGS)', async () => {
    await expect(fx.getattr(randomBytes(65))).rejects.toThrow(/exceeds maximum 64/);
  });

  it('a handle issued under another secret is NFS3ERR_BADHANDLE', async () => {
    const other = await makeFixture();
    try {
      const foreign = await other.rootFh();
      expect((await fx.getattr(foreign)).status).toBe(NFS3ERR_BADHANDLE);
    } finally {
      await other.close();
    }
  });

  it('a handle cannot be moved to another export: changing the export id breaks the tag', async () => {
    const fh = Buffer.from(await fx.walk('hello.txt'));
    fh.writeUInt16BE(fx.exports[1]!.id, 2);
    expect((await fx.getattr(fh)).status).toBe(NFS3ERR_BADHANDLE);
  });

  it('keeps its secret in <stateDir>/fh-secret with mode 0600', async () => {
    const st = await stat(path.join(fx.stateDir, FH_SECRET_FILE));
    expect(st.mode & 0o777).toBe(0o600);
    expect(st.size).toBe(32);
  });
});

describe('stale handles', () => {
  it('NFS3ERR_STALE after unlink, but not while another hard link keeps the file', async () => {
    await writeFile(fx.hostPath('a'), 'x');
    await link(fx.hostPath('a'), fx.hostPath('b'));
    const fh = await fx.walk('a');
    await unlink(fx.hostPath('a'));
    expect((await fx.getattr(fh)).status).toBe(NFS3_OK);
    await unlink(fx.hostPath('b'));
    expect((await fx.getattr(fh)).status).toBe(NFS3ERR_STALE);
  });

  it('a stale handle retried at once costs one export walk, not one per call', async () => {
    await writeFile(fx.hostPath('retry'), 'x');
    const fh = await fx.walk('retry');
    await unlink(fx.hostPath('retry'));
    const before = fx.ctx.vfs.walkCount;
    for (let i = 0; i < 5; i++) expect((await fx.getattr(fh)).status).toBe(NFS3ERR_STALE);
    expect(fx.ctx.vfs.walkCount - before).toBe(1);
  });

  it('NFS3ERR_STALE for a removed directory', async () => {
    await mkdir(fx.hostPath('rmd'));
    const fh = await fx.walk('rmd');
    await rm(fx.hostPath('rmd'), { recursive: true });
    expect((await fx.getattr(fh)).status).toBe(NFS3ERR_STALE);
  });

  it('a genuine handle of an export that is no longer served is NFS3ERR_STALE', async () => {
    const base = await mkdtemp(path.join(os.tmpdir(), 'pagelife-restart-'));
    const state = path.join(base, 'state');
    const two = await makeFixture({ exports: [{}, { path: '/gone' }], stateDir: state, base });
    await writeFile(path.join(two.exports[1]!.dir, 'f'), 'x');
    const fh = (await two.ctx.vfs.lookup(await two.ctx.vfs.root(two.exports[1]!), 'f')).fh;
    const one = await makeFixture({ exports: [{}], stateDir: state, base });
    expect((await one.getattr(fh)).status).toBe(NFS3ERR_STALE);
    await rm(base, { recursive: true, force: true });
  });
});

describe('handles survive restart and rename', () => {
  it('resolves after a restart (new process state, same secret) by walking the export', async () => {
    const base = await mkdtemp(path.join(os.tmpdir(), 'pagelife-restart-'));
    const state = path.join(base, 'state');
    const first = await makeFixture({ stateDir: state, base });
    await mkdir(first.hostPath('x', 'y'), { recursive: true });
    await writeFile(first.hostPath('x', 'y', 'z'), 'zzz');
    const fh = await first.walk('x/y/z');
    const second = await makeFixture({ stateDir: state, base });
    const r = await second.read(fh, 0, 10);
    expect(r.status).toBe(NFS3_OK);
    expect(r.data!.toString()).toBe('zzz');
    await rm(base, { recursive: true, force: true });
  });

  it('resolves after the file and its directory were renamed behind the server', async () => {
    const fh = await fx.walk('sub/deeper/file');
    await rename(fx.hostPath('sub', 'deeper'), fx.hostPath('sub', 'moved'));
    const r = await fx.read(fh, 0, 10);
    expect(r.data!.toString()).toBe('deep');
    await rename(fx.hostPath('sub', 'moved'), fx.hostPath('sub', 'deeper'));
  });
});

describe('no way out of the export', () => {
  it('a symlink to outside is returned as a symlink; used as a directory it is NOTDIR', async () => {
    const root = await fx.rootFh();
    for (const name of ['escape', 'root-link', 'passwd-link']) {
      const l = await fx.lookup(root, name);
      expect(l.attrs?.type).toBe(NF3LNK);
      expect((await fx.lookup(l.fh!, 'passwd')).status).toBe(NFS3ERR_NOTDIR);
      expect((await fx.readdir(l.fh!, 0n, 4096)).status).toBe(NFS3ERR_NOTDIR);
      expect((await fx.read(l.fh!, 0, 100)).status).toBe(NFS3ERR_INVAL);
    }
  });

  it('".." at the root stays at the root, however often', async () => {
    const root = await fx.rootFh();
    let fh = root;
    for (let i = 0; i < 5; i++) fh = (await fx.lookup(fh, '..')).fh!;
    expect(fh).toEqual(root);
    const attrs = (await fx.getattr(fh)).attrs!;
    expect(attrs.type).toBe(NF3DIR);
  });

  it('a directory swapped for a symlink after its handle was issued is not traversed', async () => {
    await mkdir(fx.hostPath('swap'));
    await writeFile(fx.hostPath('swap', 'f'), 'inside');
    const fh = await fx.walk('swap/f');
    // Move the directory out of the export and leave a symlink to it in its place.
    await rename(fx.hostPath('swap'), path.join(outside, 'swap'));
    await symlink(path.join(outside, 'swap'), fx.hostPath('swap'));
    expect((await fx.getattr(fh)).status).toBe(NFS3ERR_STALE);
    expect((await fx.read(fh, 0, 10)).status).toBe(NFS3ERR_STALE);
  });
});

describe('calls dispatched together share one check of a kept handle', () => {
  it('a change made between calls of one batch shows in the next batch, not in the same one', async () => {
    await writeFile(fx.hostPath('batch.txt'), 'b');
    await chmod(fx.hostPath('batch.txt'), 0o644);
    const fh = await fx.walk('batch.txt');
    expect((await fx.getattr(fh)).attrs?.mode).toBe(0o644);
    // Both handlers resolve synchronously, as the calls of one socket read are dispatched.
    const first = fx.getattr(fh);
    chmodSync(fx.hostPath('batch.txt'), 0o600);
    const second = fx.getattr(fh);
    expect((await first).attrs?.mode).toBe(0o644);
    expect((await second).attrs?.mode).toBe(0o644);
    expect((await fx.getattr(fh)).attrs?.mode).toBe(0o600);
  });

  it('an object moved out of the export during a batch is STALE from the next batch on', async () => {
    await writeFile(fx.hostPath('leaving.txt'), 'l');
    const fh = await fx.walk('leaving.txt');
    expect((await fx.getattr(fh)).status).toBe(NFS3_OK);
    const first = fx.getattr(fh);
    renameSync(fx.hostPath('leaving.txt'), path.join(outside, 'left.txt'));
    const second = fx.getattr(fh);
    expect((await first).status).toBe(NFS3_OK);
    expect((await second).status).toBe(NFS3_OK);
    expect((await fx.getattr(fh)).status).toBe(NFS3ERR_STALE);
    expect((await fx.read(fh, 0, 10)).status).toBe(NFS3ERR_STALE);
  });
});
