// RFC 1813 error statuses not covered by the per-procedure suites, table-driven.
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientNameCache, type NameResolver } from '../../server/exports/index.ts';
import {
  NF3FIFO,
  NFS3ERR_ACCES,
  NFS3ERR_EXIST,
  NFS3ERR_INVAL,
  NFS3ERR_ISDIR,
  NFS3ERR_JUKEBOX,
  NFS3ERR_NAMETOOLONG,
  NFS3ERR_NOTDIR,
  NFS3ERR_PERM,
  NFS3ERR_ROFS,
  NFS3_OK,
  NFSPROC3,
} from '../../server/nfs3/constants.ts';
import { EMPTY_SATTR3, encodeDiropargs3, encodeSattr3 } from '../../server/nfs3/xdr.ts';
import { PAGE_SIZE } from '../../server/pagecache/page-cache.ts';
import { decodeWccData } from '../../server/nfs3/attr.ts';
import { NFS3_RESULTS } from '../../server/nfs3/results.ts';
import type { XdrWriter } from '../../xdr/writer.ts';
import { makeFixture, userCred, type Fixture } from './harness.ts';

let fx: Fixture;
let ro: Fixture;
let root: Buffer;
let file: Buffer;
let dir: Buffer;
let roRoot: Buffer;
const LONG = 'n'.repeat(256);

beforeAll(async () => {
  fx = await makeFixture({ pages: 4 });
  ro = await makeFixture({ exports: [{ options: 'ro,no_root_squash,insecure' }] });
  await writeFile(fx.hostPath('file'), Buffer.alloc(8 * PAGE_SIZE, 1));
  await mkdir(fx.hostPath('dir'));
  await writeFile(fx.hostPath('dir', 'x'), 'x');
  await mkdir(fx.hostPath('closed'));
  await chmod(fx.hostPath('closed'), 0o700);
  await mkdir(ro.hostPath('d'));
  root = await fx.rootFh();
  file = await fx.walk('file');
  dir = await fx.walk('dir');
  roRoot = await ro.rootFh();
});

afterAll(async () => {
  await fx?.close();
  await ro?.close();
});

const symlinkArgs = (d: Buffer, name: string, target: string) => (w: XdrWriter) => {
  encodeDiropargs3(w, { dir: d, name });
  encodeSattr3(w, EMPTY_SATTR3);
  w.string(target);
};
const mknodFifo = (d: Buffer, name: string) => (w: XdrWriter) => {
  encodeDiropargs3(w, { dir: d, name });
  w.uint32(NF3FIFO);
  encodeSattr3(w, EMPTY_SATTR3);
};
const mkdirArgs = (d: Buffer, name: string) => (w: XdrWriter) => {
  encodeDiropargs3(w, { dir: d, name });
  encodeSattr3(w, EMPTY_SATTR3);
};
const diropArgs = (d: Buffer, name: string) => (w: XdrWriter) => encodeDiropargs3(w, { dir: d, name });
const renameArgs = (fd: Buffer, fn: string, td: Buffer, tn: string) => (w: XdrWriter) => {
  encodeDiropargs3(w, { dir: fd, name: fn });
  encodeDiropargs3(w, { dir: td, name: tn });
};
const linkArgs = (f: Buffer, d: Buffer, name: string) => (w: XdrWriter) => {
  w.opaque(f);
  encodeDiropargs3(w, { dir: d, name });
};

describe('error statuses, procedure by procedure', () => {
  const cases: [string, number, () => (w: XdrWriter) => void, number, { ro?: boolean; uid?: number }?][] = [
    ['SYMLINK target too long', NFSPROC3.SYMLINK, () => symlinkArgs(root, 's1', 'x'.repeat(5000)), NFS3ERR_NAMETOOLONG],
    ['SYMLINK NUL in target', NFSPROC3.SYMLINK, () => symlinkArgs(root, 's2', 'a\0b'), NFS3ERR_INVAL],
    ['SYMLINK name too long', NFSPROC3.SYMLINK, () => symlinkArgs(root, LONG, 'x'), NFS3ERR_NAMETOOLONG],
    ['SYMLINK in a file', NFSPROC3.SYMLINK, () => symlinkArgs(file, 's3', 'x'), NFS3ERR_NOTDIR],
    ['SYMLINK without permission', NFSPROC3.SYMLINK, () => symlinkArgs(root, 's4', 'x'), NFS3ERR_ACCES, { uid: 1000 }],
    ['SYMLINK on read-only', NFSPROC3.SYMLINK, () => symlinkArgs(roRoot, 's5', 'x'), NFS3ERR_ROFS, { ro: true }],
    ['MKNOD in a file', NFSPROC3.MKNOD, () => mknodFifo(file, 'p'), NFS3ERR_NOTDIR],
    ['MKNOD without permission', NFSPROC3.MKNOD, () => mknodFifo(root, 'p'), NFS3ERR_ACCES, { uid: 1000 }],
    ['MKNOD name too long', NFSPROC3.MKNOD, () => mknodFifo(root, LONG), NFS3ERR_NAMETOOLONG],
    ['MKNOD on read-only', NFSPROC3.MKNOD, () => mknodFifo(roRoot, 'p'), NFS3ERR_ROFS, { ro: true }],
    ['MKDIR in a file', NFSPROC3.MKDIR, () => mkdirArgs(file, 'd'), NFS3ERR_NOTDIR],
    ['MKDIR without permission', NFSPROC3.MKDIR, () => mkdirArgs(root, 'd'), NFS3ERR_ACCES, { uid: 1000 }],
    ['MKDIR name too long', NFSPROC3.MKDIR, () => mkdirArgs(root, LONG), NFS3ERR_NAMETOOLONG],
    ['REMOVE name too long', NFSPROC3.REMOVE, () => diropArgs(root, LONG), NFS3ERR_NAMETOOLONG],
    ['RMDIR in a file', NFSPROC3.RMDIR, () => diropArgs(file, 'x'), NFS3ERR_NOTDIR],
    ['RMDIR without permission', NFSPROC3.RMDIR, () => diropArgs(root, 'dir'), NFS3ERR_ACCES, { uid: 1000 }],
    ['RMDIR name too long', NFSPROC3.RMDIR, () => diropArgs(root, LONG), NFS3ERR_NAMETOOLONG],
    ['RMDIR on read-only', NFSPROC3.RMDIR, () => diropArgs(roRoot, 'd'), NFS3ERR_ROFS, { ro: true }],
    ['RENAME from a file', NFSPROC3.RENAME, () => renameArgs(file, 'a', root, 'b'), NFS3ERR_NOTDIR],
    ['RENAME a directory onto a file', NFSPROC3.RENAME, () => renameArgs(root, 'dir', root, 'file'), NFS3ERR_NOTDIR],
    ['RENAME a file onto a directory', NFSPROC3.RENAME, () => renameArgs(root, 'file', root, 'dir'), NFS3ERR_ISDIR],
    ['RENAME to a long name', NFSPROC3.RENAME, () => renameArgs(root, 'file', root, LONG), NFS3ERR_NAMETOOLONG],
    ['LINK into a file', NFSPROC3.LINK, () => linkArgs(file, file, 'l'), NFS3ERR_NOTDIR],
    ['LINK to a long name', NFSPROC3.LINK, () => linkArgs(file, root, LONG), NFS3ERR_NAMETOOLONG],
    ['LINK ".."', NFSPROC3.LINK, () => linkArgs(file, root, '..'), NFS3ERR_EXIST],
    ['LINK without permission', NFSPROC3.LINK, () => linkArgs(file, root, 'l'), NFS3ERR_ACCES, { uid: 1000 }],
    ['COMMIT a directory', NFSPROC3.COMMIT, () => (w) => w.opaque(dir).uint64(0).uint32(0), NFS3ERR_ISDIR],
  ];
  for (const [what, proc, args, status, o] of cases) {
    it(`${what}: ${status}`, async () => {
      const f = o?.ro ? ro : fx;
      const res = await f.call(proc, args(), o?.uid ? { cred: userCred(o.uid) } : {});
      expect(res.status).toBe(status);
      // Every one of these has a wcc_data (LINK's after its post_op_attr) in its resfail.
      const wcc = proc === NFSPROC3.LINK ? NFS3_RESULTS.LINK.resfail.decode(res.r).linkdir_wcc : decodeWccData(res.r);
      expect(wcc.after).toBeDefined();
    });
  }

  it('READDIRPLUS without read permission on the directory is NFS3ERR_ACCES', async () => {
    const closed = await fx.walk('closed');
    expect((await fx.readdirplus(closed, 0n, 4096, 8192, undefined, { cred: userCred(1000) })).status).toBe(NFS3ERR_ACCES);
  });

  it('READ answers NFS3ERR_JUKEBOX while every page frame is pinned, and works again after release', async () => {
    const held = await fx.read(file, 0, 4 * PAGE_SIZE, { keep: true });
    expect(fx.pageCache.pinned).toBe(4);
    const r = await fx.read(file, 4 * PAGE_SIZE, PAGE_SIZE);
    expect(r.status).toBe(NFS3ERR_JUKEBOX);
    expect(r.attrs).toBeDefined();
    held.release!();
    expect((await fx.read(file, 4 * PAGE_SIZE, PAGE_SIZE)).status).toBe(NFS3_OK);
    expect(fx.pageCache.pinned).toBe(0);
  });

  it('WRITE to pinned pages with no frame free for copy-on-write still succeeds; the reply in flight keeps its bytes', async () => {
    const held = await fx.read(file, 0, 4 * PAGE_SIZE, { keep: true });
    const before = Buffer.concat(held.chunks.filter((c) => c.length === PAGE_SIZE));
    const { status } = await fx.call(NFSPROC3.WRITE, (w) => w.opaque(file).uint64(0).uint32(4).uint32(0).opaque(Buffer.from('NEW!')));
    expect(status).toBe(NFS3_OK);
    expect(Buffer.concat(held.chunks.filter((c) => c.length === PAGE_SIZE)).equals(before)).toBe(true);
    held.release!();
    expect((await fx.read(file, 0, 4)).data?.toString()).toBe('NEW!');
  });
});

describe('admission by host name (options decided after a DNS lookup)', () => {
  it('answers a named client, refuses another, and checks `secure` after the lookup', async () => {
    const resolver: NameResolver = {
      reverse: async (a) => (a === '10.0.0.7' ? ['h.lab.example.org'] : []),
      lookup: async (n) => (n === 'h.lab.example.org' ? ['10.0.0.7'] : []),
    };
    const fx = await makeFixture({
      exports: [{ clients: '*.lab.example.org', options: 'rw,no_root_squash,insecure' }, { clients: '*.lab.example.org', options: 'rw' }],
      names: new ClientNameCache({ resolver }),
    });
    try {
      const [open, secure] = [await fx.rootFh(), await fx.rootFh(fx.exports[1])];
      expect((await fx.getattr(open, { remoteAddress: '10.0.0.7' })).status).toBe(NFS3_OK);
      expect((await fx.getattr(open, { remoteAddress: '::ffff:10.0.0.7' })).status).toBe(NFS3_OK);
      expect((await fx.getattr(open, { remoteAddress: '10.0.0.8' })).status).toBe(NFS3ERR_ACCES);
      expect((await fx.getattr(secure, { remoteAddress: '10.0.0.7', remotePort: 40000 })).status).toBe(NFS3ERR_PERM);
      expect((await fx.getattr(secure, { remoteAddress: '10.0.0.7', remotePort: 700 })).status).toBe(NFS3_OK);
    } finally {
      await fx.close();
    }
  });
});
