import { chmod, lstat, mkdir, symlink, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCESS3_DELETE, ACCESS3_EXECUTE, ACCESS3_EXTEND, ACCESS3_LOOKUP, ACCESS3_MODIFY, ACCESS3_READ } from '../../server/exports/access.ts';
import {
  FSF3_CANSETTIME,
  FSF3_HOMOGENEOUS,
  FSF3_LINK,
  FSF3_SYMLINK,
  NF3DIR,
  NF3LNK,
  NF3REG,
  NFS3ERR_ACCES,
  NFS3ERR_BADHANDLE,
  NFS3ERR_INVAL,
  NFS3ERR_NAMETOOLONG,
  NFS3ERR_NOENT,
  NFS3ERR_NOTDIR,
  NFS3ERR_ROFS,
  NFS3ERR_STALE,
  NFS3_OK,
  NFSPROC3,
} from '../../server/nfs3/constants.ts';
import { decodePostOpAttr, nfstime3ToNs } from '../../server/nfs3/attr.ts';
import { NFS3_RESULTS } from '../../server/nfs3/results.ts';
import { encodeDiropargs3, encodeSattr3, EMPTY_SATTR3 } from '../../server/nfs3/xdr.ts';
import { makeFixture, userCred, type Fixture } from './harness.ts';

const ALL = ACCESS3_READ | ACCESS3_LOOKUP | ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE | ACCESS3_EXECUTE;
let fx: Fixture;
let ro: Fixture;

beforeAll(async () => {
  fx = await makeFixture({ limits: { maxRead: 65536, maxWrite: 32768, maxReaddir: 8192 } });
  await mkdir(fx.hostPath('sub'));
  await writeFile(fx.hostPath('sub', 'nested.txt'), 'nested');
  await writeFile(fx.hostPath('hello.txt'), 'hello');
  await writeFile(fx.hostPath('secret.txt'), 'secret', { mode: 0o600 });
  await chmod(fx.hostPath('secret.txt'), 0o600);
  await mkdir(fx.hostPath('closed'), { mode: 0o700 });
  await chmod(fx.hostPath('closed'), 0o700);
  await writeFile(fx.hostPath('closed', 'inside'), 'x');
  await symlink('hello.txt', fx.hostPath('link'));
  ro = await makeFixture({ exports: [{ options: 'ro,no_root_squash,insecure' }] });
  await writeFile(ro.hostPath('f'), 'read only');
});

afterAll(async () => {
  await fx?.close();
  await ro?.close();
});

describe('NULL', () => {
  it('answers with an empty body', async () => {
    const r = await fx.raw(fx.nfs, NFSPROC3.NULL, () => undefined);
    expect(r.body.length).toBe(0);
  });
});

describe('GETATTR', () => {
  it('returns fattr3 from lstat: type, mode, size, fileid = inode, nanosecond times, export fsid', async () => {
    const fh = await fx.walk('hello.txt');
    const { status, attrs } = await fx.getattr(fh);
    const st = await lstat(fx.hostPath('hello.txt'), { bigint: true });
    expect(status).toBe(NFS3_OK);
    expect(attrs).toMatchObject({ type: NF3REG, mode: Number(st.mode & 0o7777n), size: 5n, fileid: st.ino, uid: Number(st.uid), nlink: 1 });
    expect(nfstime3ToNs(attrs!.mtime)).toBe(st.mtimeNs);
    expect(nfstime3ToNs(attrs!.ctime)).toBe(st.ctimeNs);
    expect(attrs!.fsid).toBe(fx.exports[0]!.fsid);
    const root = await fx.getattr(await fx.rootFh());
    expect(root.attrs?.type).toBe(NF3DIR);
  });

  it('answers NFS3ERR_BADHANDLE for a handle it did not issue, with no resfail body', async () => {
    const r = await fx.call(NFSPROC3.GETATTR, (w) => w.opaque(Buffer.alloc(44, 7)));
    expect(r.status).toBe(NFS3ERR_BADHANDLE);
    expect(r.r.remaining).toBe(0);
  });
});

describe('LOOKUP', () => {
  it('finds a file and returns its handle, attributes and the directory attributes', async () => {
    const l = await fx.lookup(await fx.rootFh(), 'hello.txt');
    expect(l.status).toBe(NFS3_OK);
    expect(l.attrs?.type).toBe(NF3REG);
    expect(l.dirAttrs?.type).toBe(NF3DIR);
    expect((await fx.getattr(l.fh!)).attrs?.size).toBe(5n);
  });

  it('NFS3ERR_NOENT with the directory attributes for a missing name', async () => {
    const l = await fx.lookup(await fx.rootFh(), 'missing');
    expect(l.status).toBe(NFS3ERR_NOENT);
    expect(l.dirAttrs?.type).toBe(NF3DIR);
  });

  it('NFS3ERR_NOTDIR when the "directory" is a file', async () => {
    const l = await fx.lookup(await fx.walk('hello.txt'), 'x');
    expect(l.status).toBe(NFS3ERR_NOTDIR);
    expect(l.dirAttrs?.type).toBe(NF3REG);
  });

  it('"." is the directory, ".." its parent, and ".." at the export root is the root', async () => {
    const root = await fx.rootFh();
    const sub = await fx.walk('sub');
    expect((await fx.lookup(sub, '.')).fh).toEqual(sub);
    expect((await fx.lookup(sub, '..')).fh).toEqual(root);
    expect((await fx.lookup(root, '..')).fh).toEqual(root);
    expect((await fx.lookup(root, '.')).fh).toEqual(root);
  });

  it('refuses names that are paths or hold NUL, and over-long names', async () => {
    const root = await fx.rootFh();
    expect((await fx.lookup(root, 'sub/nested.txt')).status).toBe(NFS3ERR_ACCES);
    expect((await fx.lookup(root, '../etc')).status).toBe(NFS3ERR_ACCES);
    expect((await fx.lookup(root, 'hello.txt\0')).status).toBe(NFS3ERR_ACCES);
    expect((await fx.lookup(root, '')).status).toBe(NFS3ERR_NOENT);
    expect((await fx.lookup(root, 'a'.repeat(256))).status).toBe(NFS3ERR_NAMETOOLONG);
    expect((await fx.lookup(root, 'a'.repeat(255))).status).toBe(NFS3ERR_NOENT);
  });

  it('returns a symlink as a symlink (never followed)', async () => {
    const l = await fx.lookup(await fx.rootFh(), 'link');
    expect(l.attrs?.type).toBe(NF3LNK);
  });

  it('NFS3ERR_ACCES without search permission on the directory', async () => {
    const closed = await fx.walk('closed');
    expect((await fx.lookup(closed, 'inside', { cred: userCred(1000) })).status).toBe(NFS3ERR_ACCES);
    expect((await fx.lookup(closed, 'inside')).status).toBe(NFS3_OK);
  });

  it('NFS3ERR_STALE for a handle whose object is gone', async () => {
    await writeFile(fx.hostPath('gone-dir-file'), 'x');
    const fh = await fx.walk('gone-dir-file');
    await import('node:fs/promises').then((f) => f.unlink(fx.hostPath('gone-dir-file')));
    expect((await fx.lookup(fh, 'x')).status).toBe(NFS3ERR_STALE);
  });
});

describe('ACCESS', () => {
  const access = async (f: Fixture, fh: Buffer, bits: number, cred = userCred(0)) => {
    const { status, res } = await f.result('ACCESS', (w) => w.opaque(fh).uint32(bits), { cred });
    const attrs = res.status === NFS3_OK ? res.resok.obj_attributes : res.resfail.obj_attributes;
    return { status, attrs, granted: res.status === NFS3_OK ? res.resok.access : undefined };
  };

  it('grants by mode bits for the squashed identity, only bits that apply to the type', async () => {
    const file = await fx.walk('hello.txt');
    const secret = await fx.walk('secret.txt');
    const dir = await fx.walk('sub');
    expect((await access(fx, file, ALL)).granted).toBe(ACCESS3_READ | ACCESS3_MODIFY | ACCESS3_EXTEND);
    expect((await access(fx, dir, ALL)).granted).toBe(ACCESS3_READ | ACCESS3_LOOKUP | ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE);
    expect((await access(fx, secret, ALL, userCred(1000))).granted).toBe(0);
    expect((await access(fx, file, ACCESS3_READ, userCred(1000))).granted).toBe(ACCESS3_READ);
    expect((await access(fx, file, 0, userCred(1000))).granted).toBe(0);
  });

  it('grants no write bits on a read-only export', async () => {
    const f = await ro.walk('f');
    const res = await access(ro, f, ALL);
    expect(res.status).toBe(NFS3_OK);
    expect(res.granted).toBe(ACCESS3_READ);
    expect(res.attrs?.type).toBe(NF3REG);
  });
});

describe('READLINK', () => {
  it('returns the stored target', async () => {
    expect((await fx.call(NFSPROC3.READLINK, (w) => w.opaque(Buffer.alloc(0)))).status).toBe(NFS3ERR_BADHANDLE);
    const link = await fx.walk('link');
    const res = await fx.call(NFSPROC3.READLINK, (w) => w.opaque(link));
    expect(res.status).toBe(NFS3_OK);
    const ok = NFS3_RESULTS.READLINK.resok.decode(res.r);
    expect(ok.symlink_attributes?.type).toBe(NF3LNK);
    expect(ok.data.toString()).toBe('hello.txt');
  });

  it('NFS3ERR_INVAL on an object that is not a symlink', async () => {
    const fh = await fx.walk('hello.txt');
    const res = await fx.call(NFSPROC3.READLINK, (w) => w.opaque(fh));
    expect(res.status).toBe(NFS3ERR_INVAL);
    expect(NFS3_RESULTS.READLINK.resfail.decode(res.r).symlink_attributes?.type).toBe(NF3REG);
  });
});

describe('FSSTAT, FSINFO, PATHCONF', () => {
  it('FSSTAT reports the export file system', async () => {
    const fh = await fx.rootFh();
    const { status, r } = await fx.call(NFSPROC3.FSSTAT, (w) => w.opaque(fh));
    expect(status).toBe(NFS3_OK);
    const { obj_attributes, tbytes, fbytes, abytes, tfiles, ffiles, afiles, invarsec } = NFS3_RESULTS.FSSTAT.resok.decode(r);
    expect(obj_attributes?.type).toBe(NF3DIR);
    expect(tbytes).toBeGreaterThan(0n);
    expect(fbytes).toBeLessThanOrEqual(tbytes);
    expect(abytes).toBeLessThanOrEqual(fbytes);
    expect(ffiles).toBeLessThanOrEqual(tfiles);
    expect(afiles).toBe(ffiles);
    expect(invarsec).toBe(0);
    expect(r.remaining).toBe(0);
  });

  it('FSINFO advertises the configured sizes and properties', async () => {
    const fh = await fx.rootFh();
    const { status, r } = await fx.call(NFSPROC3.FSINFO, (w) => w.opaque(fh));
    expect(status).toBe(NFS3_OK);
    const i = NFS3_RESULTS.FSINFO.resok.decode(r);
    const v = [i.rtmax, i.rtpref, i.rtmult, i.wtmax, i.wtpref, i.wtmult, i.dtpref];
    expect(v).toEqual([65536, 65536, 4096, 32768, 32768, 4096, 8192]);
    expect(i.maxfilesize).toBe(BigInt(Number.MAX_SAFE_INTEGER));
    expect([i.time_delta.seconds, i.time_delta.nseconds]).toEqual([0, 1]);
    expect(i.properties).toBe(FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME);
  });

  it('PATHCONF', async () => {
    const fh = await fx.walk('hello.txt');
    const { status, r } = await fx.call(NFSPROC3.PATHCONF, (w) => w.opaque(fh));
    expect(status).toBe(NFS3_OK);
    const p = NFS3_RESULTS.PATHCONF.resok.decode(r);
    expect(p.obj_attributes?.type).toBe(NF3REG);
    expect(p.linkmax).toBeGreaterThan(1);
    expect(p.name_max).toBe(255);
    expect([p.no_trunc, p.chown_restricted, p.case_insensitive, p.case_preserving]).toEqual([true, true, false, true]);
  });

  it('each answers NFS3ERR_STALE / BADHANDLE with an empty post_op_attr', async () => {
    for (const proc of [NFSPROC3.FSSTAT, NFSPROC3.FSINFO, NFSPROC3.PATHCONF, NFSPROC3.ACCESS, NFSPROC3.READLINK]) {
      const res = await fx.call(proc, (w) => {
        w.opaque(Buffer.from('nope'));
        if (proc === NFSPROC3.ACCESS) w.uint32(1);
      });
      expect(res.status).toBe(NFS3ERR_BADHANDLE);
      expect(decodePostOpAttr(res.r)).toBeUndefined();
      expect(res.r.remaining).toBe(0);
    }
  });
});

describe('read-only export', () => {
  it('modifying procedures answer NFS3ERR_ROFS with wcc_data of the object', async () => {
    const root = await ro.rootFh();
    const f = await ro.walk('f');
    const cases: [number, (w: import('../../xdr/writer.ts').XdrWriter) => void][] = [
      [NFSPROC3.SETATTR, (w) => (encodeSattr3(w.opaque(f), EMPTY_SATTR3), w.bool(false))],
      [NFSPROC3.WRITE, (w) => w.opaque(f).uint64(0).uint32(1).uint32(2).opaque(Buffer.from('x'))],
      [NFSPROC3.CREATE, (w) => (encodeDiropargs3(w, { dir: root, name: 'n' }), w.uint32(0), encodeSattr3(w, EMPTY_SATTR3))],
      [NFSPROC3.MKDIR, (w) => (encodeDiropargs3(w, { dir: root, name: 'n' }), encodeSattr3(w, EMPTY_SATTR3))],
      [NFSPROC3.SYMLINK, (w) => (encodeDiropargs3(w, { dir: root, name: 'n' }), encodeSattr3(w, EMPTY_SATTR3), w.string('f'))],
      [NFSPROC3.MKNOD, (w) => (encodeDiropargs3(w, { dir: root, name: 'n' }), w.uint32(7), encodeSattr3(w, EMPTY_SATTR3))],
      [NFSPROC3.REMOVE, (w) => encodeDiropargs3(w, { dir: root, name: 'f' })],
      [NFSPROC3.RMDIR, (w) => encodeDiropargs3(w, { dir: root, name: 'f' })],
      [NFSPROC3.COMMIT, (w) => w.opaque(f).uint64(0).uint32(0)],
    ];
    for (const [proc, enc] of cases) {
      const { status, wcc, r } = await ro.wccCall(proc, enc);
      expect(status, `proc ${proc}`).toBe(NFS3ERR_ROFS);
      expect(wcc.after, `proc ${proc}`).toBeDefined();
      expect(r.remaining).toBe(0);
    }
    const ren = await ro.call(NFSPROC3.RENAME, (w) => {
      encodeDiropargs3(w, { dir: root, name: 'f' });
      encodeDiropargs3(w, { dir: root, name: 'g' });
    });
    expect(ren.status).toBe(NFS3ERR_ROFS);
    const link = await ro.call(NFSPROC3.LINK, (w) => {
      w.opaque(f);
      encodeDiropargs3(w, { dir: root, name: 'g' });
    });
    expect(link.status).toBe(NFS3ERR_ROFS);
    expect(NFS3_RESULTS.LINK.resfail.decode(link.r).file_attributes?.type).toBe(NF3REG);
  });
});
