// Issue 4, acceptance 5: an exports file (`--exports-file`) with several exports, seen from a real
// RPC client over real sockets against the server started as users start it (a child process).
// ro answers NFS3ERR_ROFS to every modifying procedure; a client filter refuses other sources at MNT
// and on NFS calls; squash options decide owners and permissions; `secure` wants a privileged port.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomInt } from 'node:crypto';
import net from 'node:net';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { decodePostOpAttr, decodeWccData } from '../../server/nfs3/attr.ts';
import { NFS3_RESULTS } from '../../server/nfs3/results.ts';
import type { XdrReader } from '../../xdr/reader.ts';
import { ACCESS3_EXTEND, ACCESS3_MODIFY, ACCESS3_READ, ACCESS3_WRITES } from '../../server/exports/access.ts';
import { AUTH_NONE_CRED } from '../../rpc/index.ts';
import { MNT3ERR_ACCES, MNT3_OK } from '../../server/mount/constants.ts';
import {
  EXCLUSIVE,
  FILE_SYNC,
  GUARDED,
  NFS3ERR_ACCES,
  NFS3ERR_PERM,
  NFS3ERR_ROFS,
  NFS3_OK,
  UNCHECKED,
} from '../../server/nfs3/constants.ts';
import { EMPTY_SATTR3 } from '../../server/nfs3/xdr.ts';
import { NFSPROC3, NfsTestClient, NfsTestError, mnt, nfsArgs } from '../support/nfs-client.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';

const isRoot = process.getuid?.() === 0;

/** Whether this host can listen on `::` (IPv6 may be disabled). */
async function canListenOnIPv6Any(): Promise<boolean> {
  const srv = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(0, '::', () => resolve());
    });
    return true;
  } catch {
    return false;
  } finally {
    srv.close();
  }
}
const dualStack = await canListenOnIPv6Any();
/** A second loopback source: Linux routes all of 127.0.0.0/8 to lo. */
const OTHER_SOURCE = '127.0.0.2';

let base: string;
let varDir: string;
let server: ServerProcess;
const clients: NfsTestClient[] = [];

const dirOf = (name: string) => path.join(base, name);

beforeAll(async () => {
  base = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-exports-'));
  varDir = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-exports-var-'));
  for (const d of ['ro', 'rw', 'squash', 'anon', 'all', 'only2', 'secure']) await fs.mkdir(dirOf(d));
  // Squashed identities create files here: let anyone write (the export root is root's).
  for (const d of ['squash', 'anon', 'all']) await fs.chmod(dirOf(d), 0o777);
  await fs.writeFile(path.join(dirOf('ro'), 'file.txt'), 'read only');
  await fs.mkdir(path.join(dirOf('ro'), 'dir'));
  const exportsFile = path.join(varDir, 'exports');
  await fs.writeFile(
    exportsFile,
    [
      '# several exports, one per behaviour under test',
      `${dirOf('ro')}      127.0.0.1(ro,insecure)`,
      `${dirOf('rw')}      127.0.0.1(rw,no_root_squash,insecure)`,
      `${dirOf('squash')}  127.0.0.1(rw,insecure)`,
      `${dirOf('anon')}    127.0.0.1(rw,root_squash,anonuid=2000,anongid=2001,insecure)`,
      `${dirOf('all')}     127.0.0.1(rw,all_squash,anonuid=1234,anongid=1235,insecure)`,
      `${dirOf('only2')}   ${OTHER_SOURCE}(rw,no_root_squash,insecure)`,
      `${dirOf('secure')}  127.0.0.1(rw,no_root_squash)`,
      '',
    ].join('\n'),
  );
  server = await startServer(['--exports-file', exportsFile, '--var-dir', varDir, '--host', '127.0.0.1']);
});

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await server?.stop();
  if (base) await fs.rm(base, { recursive: true, force: true });
  if (varDir) await fs.rm(varDir, { recursive: true, force: true });
});

async function client(exportName: string, o: { uid?: number; gid?: number; localAddress?: string } = {}): Promise<NfsTestClient> {
  const c = await NfsTestClient.connect({ nfsPort: server.ports.nfs, mountPort: server.ports.mount, exportPath: dirOf(exportName), ...o });
  clients.push(c);
  return c;
}

async function attach(root: Buffer, o: { localAddress?: string; localPort?: number } = {}): Promise<NfsTestClient> {
  const c = await NfsTestClient.attach({ nfsPort: server.ports.nfs, root, ...o });
  clients.push(c);
  return c;
}

/** The ACCESS3 bits granted for `wanted`. */
async function accessBits(c: NfsTestClient, fh: Buffer, wanted: number): Promise<number> {
  const { status, r } = await c.call(NFSPROC3.ACCESS, nfsArgs.access(fh, wanted));
  expect(status).toBe(NFS3_OK);
  return NFS3_RESULTS.ACCESS.resok.decode(r).access;
}

/**
 * A caller refused by the export (client filter, port) learns nothing from failure replies: the
 * post_op_attr and wcc_data in them are absent, as knfsd's (its fh_verify fails before any attributes).
 */
async function expectNoAttributes(c: NfsTestClient, file: Buffer, dir: Buffer, status: number): Promise<void> {
  const postOp = (r: XdrReader) => decodePostOpAttr(r) !== undefined;
  const wcc = (r: XdrReader) => {
    const d = decodeWccData(r);
    return [d.before !== undefined, d.after !== undefined];
  };
  const cases: [string, number, ReturnType<(typeof nfsArgs)['fh']>, (r: XdrReader) => unknown, unknown][] = [
    ['LOOKUP', NFSPROC3.LOOKUP, nfsArgs.dirop(dir, 'attrs-probe'), postOp, false],
    ['ACCESS', NFSPROC3.ACCESS, nfsArgs.access(file, 0x3f), postOp, false],
    ['READ', NFSPROC3.READ, nfsArgs.read(file, 0, 10), postOp, false],
    ['READDIR', NFSPROC3.READDIR, nfsArgs.readdir(dir), postOp, false],
    ['FSINFO', NFSPROC3.FSINFO, nfsArgs.fh(dir), postOp, false],
    ['WRITE', NFSPROC3.WRITE, nfsArgs.write(file, 0, Buffer.from('x'), FILE_SYNC), wcc, [false, false]],
    ['SETATTR', NFSPROC3.SETATTR, nfsArgs.setattr(file, { ...EMPTY_SATTR3, mode: 0o600 }), wcc, [false, false]],
    ['CREATE', NFSPROC3.CREATE, nfsArgs.create(dir, 'probe-new', UNCHECKED), wcc, [false, false]],
    ['REMOVE', NFSPROC3.REMOVE, nfsArgs.dirop(dir, 'attrs-probe'), wcc, [false, false]],
    ['COMMIT', NFSPROC3.COMMIT, nfsArgs.commit(file), wcc, [false, false]],
  ];
  const got: Record<string, unknown> = {};
  const want: Record<string, unknown> = {};
  for (const [name, proc, args, decode, absent] of cases) {
    const reply = await c.call(proc, args);
    got[name] = [reply.status, decode(reply.r)];
    want[name] = [status, absent];
  }
  expect(got).toEqual(want);
}

describe('ro export', () => {
  it('reads work: MNT, GETATTR, LOOKUP, READ, READDIR; ACCESS grants no write bits', async () => {
    const c = await client('ro');
    const file = await c.lookup('file.txt');
    expect(Number((await c.getattr(file)).size)).toBe('read only'.length);
    expect((await c.read(file, 0, 100)).data.toString()).toBe('read only');
    expect((await c.readdir()).sort()).toEqual(['.', '..', 'dir', 'file.txt']);
    const granted = await accessBits(c, file, 0x3f);
    expect(granted & ACCESS3_READ).toBe(ACCESS3_READ);
    expect(granted & ACCESS3_WRITES).toBe(0);
  });

  it('answers NFS3ERR_ROFS to every modifying procedure and changes nothing', async () => {
    const c = await client('ro');
    const root = c.root;
    const file = await c.lookup('file.txt');
    const before = await fs.readdir(dirOf('ro'));
    const modeBefore = (await fs.stat(path.join(dirOf('ro'), 'file.txt'))).mode;
    const calls: [string, number, ReturnType<(typeof nfsArgs)['fh']>][] = [
      ['SETATTR', NFSPROC3.SETATTR, nfsArgs.setattr(file, { ...EMPTY_SATTR3, mode: 0o600 })],
      ['SETATTR size', NFSPROC3.SETATTR, nfsArgs.setattr(file, { ...EMPTY_SATTR3, size: 0n })],
      ['WRITE', NFSPROC3.WRITE, nfsArgs.write(file, 0, Buffer.from('x'), FILE_SYNC)],
      ['CREATE UNCHECKED', NFSPROC3.CREATE, nfsArgs.create(root, 'new', UNCHECKED)],
      ['CREATE UNCHECKED existing', NFSPROC3.CREATE, nfsArgs.create(root, 'file.txt', UNCHECKED, { ...EMPTY_SATTR3, size: 0n })],
      ['CREATE GUARDED', NFSPROC3.CREATE, nfsArgs.create(root, 'new', GUARDED)],
      ['CREATE EXCLUSIVE', NFSPROC3.CREATE, nfsArgs.create(root, 'new', EXCLUSIVE, Buffer.from('12345678'))],
      ['MKDIR', NFSPROC3.MKDIR, nfsArgs.mkdir(root, 'newdir')],
      ['SYMLINK', NFSPROC3.SYMLINK, nfsArgs.symlink(root, 'newlink', 'file.txt')],
      ['MKNOD', NFSPROC3.MKNOD, nfsArgs.mknodFifo(root, 'newfifo')],
      ['REMOVE', NFSPROC3.REMOVE, nfsArgs.dirop(root, 'file.txt')],
      ['RMDIR', NFSPROC3.RMDIR, nfsArgs.dirop(root, 'dir')],
      ['RENAME', NFSPROC3.RENAME, nfsArgs.rename(root, 'file.txt', root, 'renamed')],
      ['LINK', NFSPROC3.LINK, nfsArgs.link(file, root, 'hardlink')],
      ['COMMIT', NFSPROC3.COMMIT, nfsArgs.commit(file)],
    ];
    // Root, and a user who could not write there anyway: the read-only export answers first.
    for (const who of [c, c.as(1000, 1000)]) {
      const statuses = Object.fromEntries(await Promise.all(calls.map(async ([name, proc, args]) => [name, await who.status(proc, args)] as const)));
      expect(statuses).toEqual(Object.fromEntries(calls.map(([name]) => [name, NFS3ERR_ROFS])));
    }
    expect(await fs.readdir(dirOf('ro'))).toEqual(before);
    expect(await fs.readFile(path.join(dirOf('ro'), 'file.txt'), 'utf8')).toBe('read only');
    expect((await fs.stat(path.join(dirOf('ro'), 'file.txt'))).mode).toBe(modeBefore);
  });
});

describe('client filter (export to 127.0.0.2 only)', () => {
  it('refuses MNT from 127.0.0.1 with MNT3ERR_ACCES and mounts from 127.0.0.2', async () => {
    expect((await mnt({ mountPort: server.ports.mount, exportPath: dirOf('only2') })).status).toBe(MNT3ERR_ACCES);
    const ok = await mnt({ mountPort: server.ports.mount, exportPath: dirOf('only2'), localAddress: OTHER_SOURCE });
    expect(ok.status).toBe(MNT3_OK);
    expect(ok.fh).toBeDefined();
    // A directory below the export is the export's too.
    await fs.mkdir(path.join(dirOf('only2'), 'below'), { recursive: true });
    expect((await mnt({ mountPort: server.ports.mount, exportPath: `${dirOf('only2')}/below` })).status).toBe(MNT3ERR_ACCES);
    expect((await mnt({ mountPort: server.ports.mount, exportPath: `${dirOf('only2')}/below`, localAddress: OTHER_SOURCE })).status).toBe(MNT3_OK);
    await fs.rmdir(path.join(dirOf('only2'), 'below'));
  });

  it('refuses MNT from 127.0.0.2 of the exports for 127.0.0.1 only', async () => {
    for (const name of ['ro', 'rw', 'squash']) {
      expect((await mnt({ mountPort: server.ports.mount, exportPath: dirOf(name), localAddress: OTHER_SOURCE })).status).toBe(MNT3ERR_ACCES);
    }
  });

  it('answers NFS3ERR_ACCES to 127.0.0.1 holding a handle mounted from 127.0.0.2, and serves 127.0.0.2', async () => {
    const allowed = await client('only2', { localAddress: OTHER_SOURCE });
    const made = await allowed.create('from-allowed');
    await allowed.write(made, 0, Buffer.from('allowed'));
    expect((await allowed.read(made, 0, 100)).data.toString()).toBe('allowed');
    expect(await fs.readFile(path.join(dirOf('only2'), 'from-allowed'), 'utf8')).toBe('allowed');

    const refused = await attach(allowed.root);
    expect(await refused.status(NFSPROC3.GETATTR, nfsArgs.fh(allowed.root))).toBe(NFS3ERR_ACCES);
    expect(await refused.status(NFSPROC3.LOOKUP, nfsArgs.dirop(allowed.root, 'from-allowed'))).toBe(NFS3ERR_ACCES);
    expect(await refused.status(NFSPROC3.READ, nfsArgs.read(made, 0, 100))).toBe(NFS3ERR_ACCES);
    expect(await refused.status(NFSPROC3.WRITE, nfsArgs.write(made, 0, Buffer.from('refused'), FILE_SYNC))).toBe(NFS3ERR_ACCES);
    expect(await refused.status(NFSPROC3.CREATE, nfsArgs.create(allowed.root, 'from-refused', UNCHECKED))).toBe(NFS3ERR_ACCES);
    expect(await refused.status(NFSPROC3.REMOVE, nfsArgs.dirop(allowed.root, 'from-allowed'))).toBe(NFS3ERR_ACCES);
    expect(await fs.readdir(dirOf('only2'))).toEqual(['from-allowed']);
    expect(await fs.readFile(path.join(dirOf('only2'), 'from-allowed'), 'utf8')).toBe('allowed');
  });

  it("tells a refused client nothing about the export's objects: failure replies carry no attributes", async () => {
    const allowed = await client('only2', { localAddress: OTHER_SOURCE });
    const file = await allowed.create('attrs-probe');
    const refused = await attach(allowed.root);
    await expectNoAttributes(refused, file, allowed.root, NFS3ERR_ACCES);
  });
});

/** Runs `fn` on a local port below 1024 not otherwise in use (binding one needs root). */
async function onPrivilegedPort<T>(fn: (port: number) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const port = randomInt(600, 1024);
    try {
      return await fn(port);
    } catch (e) {
      if ((e as { code?: string }).code !== 'EADDRINUSE' || attempt > 20) throw e;
    }
  }
}

describe.runIf(isRoot)('secure export (needs root to bind ports below 1024)', () => {
  it('refuses MNT from an unprivileged port with MNT3ERR_ACCES and accepts one from a privileged port', async () => {
    const refused = await mnt({ mountPort: server.ports.mount, exportPath: dirOf('secure') });
    expect(refused.status).toBe(MNT3ERR_ACCES);
    const ok = await onPrivilegedPort((localPort) => mnt({ mountPort: server.ports.mount, exportPath: dirOf('secure'), localPort }));
    expect(ok.status).toBe(MNT3_OK);
  });

  it('answers NFS calls from an unprivileged port with NFS3ERR_PERM and serves a privileged one', async () => {
    const { fh: root } = await onPrivilegedPort((localPort) => mnt({ mountPort: server.ports.mount, exportPath: dirOf('secure'), localPort }));
    const high = await attach(root!);
    expect(high.rpc.localPort).toBeGreaterThanOrEqual(1024);
    expect(await high.status(NFSPROC3.GETATTR, nfsArgs.fh(root!))).toBe(NFS3ERR_PERM);
    expect(await high.status(NFSPROC3.CREATE, nfsArgs.create(root!, 'from-high', UNCHECKED))).toBe(NFS3ERR_PERM);
    // NULL is not checked: clients ping from any port.
    await high.rpc.call(100003, 3, NFSPROC3.NULL);

    await expectNoAttributes(high, root!, root!, NFS3ERR_PERM);
    const low = await onPrivilegedPort((localPort) => attach(root!, { localPort }));
    expect(low.rpc.localPort).toBeLessThan(1024);
    const made = await low.create('from-low');
    await low.write(made, 0, Buffer.from('privileged'));
    expect(await fs.readdir(dirOf('secure'))).toEqual(['from-low']);
    expect(await fs.readFile(path.join(dirOf('secure'), 'from-low'), 'utf8')).toBe('privileged');
  });
});

describe.runIf(isRoot)('squashing (needs a root server to give files away)', () => {
  async function ownerOf(exportName: string, name: string): Promise<[number, number]> {
    const st = await fs.lstat(path.join(dirOf(exportName), name));
    return [st.uid, st.gid];
  }

  it('root_squash: a file created by uid 0 belongs to the anonymous ids (65534 by default)', async () => {
    const c = await client('squash');
    await c.create('by-root');
    await c.mkdir('dir-by-root');
    expect(await ownerOf('squash', 'by-root')).toEqual([65534, 65534]);
    expect(await ownerOf('squash', 'dir-by-root')).toEqual([65534, 65534]);
    // Other users keep their ids.
    await c.as(1000, 1000).create('by-1000');
    expect(await ownerOf('squash', 'by-1000')).toEqual([1000, 1000]);
    // gid 0 is squashed on its own, whatever the uid.
    await c.as(1000, 0).create('by-1000-gid0');
    expect(await ownerOf('squash', 'by-1000-gid0')).toEqual([1000, 65534]);
  });

  it("root_squash: uid 0 cannot read another user's 0600 file, nor give files away; the owner can read it", async () => {
    const host = path.join(dirOf('squash'), 'private');
    await fs.writeFile(host, 'secret', { mode: 0o600 });
    await fs.chown(host, 1000, 1000);
    await fs.chmod(host, 0o600);
    const c = await client('squash');
    const fh = await c.lookup('private');
    expect(await c.status(NFSPROC3.READ, nfsArgs.read(fh, 0, 100))).toBe(NFS3ERR_ACCES);
    expect(await c.status(NFSPROC3.WRITE, nfsArgs.write(fh, 0, Buffer.from('x'), FILE_SYNC))).toBe(NFS3ERR_ACCES);
    expect(await c.status(NFSPROC3.SETATTR, nfsArgs.setattr(fh, { ...EMPTY_SATTR3, uid: 0, gid: 0 }))).toBe(NFS3ERR_PERM);
    expect(await ownerOf('squash', 'private')).toEqual([1000, 1000]);
    expect((await c.as(1000, 1000).read(fh, 0, 100)).data.toString()).toBe('secret');
    expect(await accessBits(c, fh, 0x3f)).toBe(0);
    expect(await accessBits(c.as(1000, 1000), fh, 0x3f)).toBe(ACCESS3_READ | ACCESS3_MODIFY | ACCESS3_EXTEND);
  });

  it('AUTH_NONE callers are the anonymous user, even without root_squash', async () => {
    const c = await client('rw');
    // The export root is root's 0755: the anonymous user may not create there.
    expect(await c.status(NFSPROC3.CREATE, nfsArgs.create(c.root, 'by-nobody', UNCHECKED), { cred: AUTH_NONE_CRED })).toBe(NFS3ERR_ACCES);
    await fs.mkdir(path.join(dirOf('rw'), 'open'));
    await fs.chmod(path.join(dirOf('rw'), 'open'), 0o777);
    const open = await c.lookup('open');
    expect(await c.status(NFSPROC3.CREATE, nfsArgs.create(open, 'by-nobody', UNCHECKED), { cred: AUTH_NONE_CRED })).toBe(NFS3_OK);
    expect(await ownerOf('rw', 'open/by-nobody')).toEqual([65534, 65534]);
  });

  it('anonuid/anongid: root is squashed to the ids the export names', async () => {
    const c = await client('anon');
    await c.create('by-root');
    expect(await ownerOf('anon', 'by-root')).toEqual([2000, 2001]);
    await c.as(1000, 1000).create('by-1000');
    expect(await ownerOf('anon', 'by-1000')).toEqual([1000, 1000]);
  });

  it('all_squash: every caller, root or not, becomes anonuid/anongid', async () => {
    const c = await client('all');
    await c.create('by-root');
    await c.as(1000, 1000, [10, 20]).create('by-1000');
    await c.as(4242, 4243).mkdir('dir-by-4242');
    expect(await ownerOf('all', 'by-root')).toEqual([1234, 1235]);
    expect(await ownerOf('all', 'by-1000')).toEqual([1234, 1235]);
    expect(await ownerOf('all', 'dir-by-4242')).toEqual([1234, 1235]);
    // Files of the anonymous user are everyone's: another uid may write what uid 1000 created.
    const fh = await c.as(7, 7).lookup('by-1000');
    await c.as(7, 7).write(fh, 0, Buffer.from('anyone'));
    expect(await fs.readFile(path.join(dirOf('all'), 'by-1000'), 'utf8')).toBe('anyone');
  });

  it('no_root_squash: root keeps uid 0, reads private files and may chown', async () => {
    const c = await client('rw');
    const fh = await c.create('by-root');
    expect(await ownerOf('rw', 'by-root')).toEqual([0, 0]);
    await c.setattr(fh, { ...EMPTY_SATTR3, uid: 4321, gid: 4322 });
    expect(await ownerOf('rw', 'by-root')).toEqual([4321, 4322]);
    expect((await c.getattr(fh)).uid).toBe(4321);

    const host = path.join(dirOf('rw'), 'private');
    await fs.writeFile(host, 'secret', { mode: 0o600 });
    await fs.chown(host, 1000, 1000);
    expect((await c.read(await c.lookup('private'), 0, 100)).data.toString()).toBe('secret');
    // A non-root caller still may not chown.
    const err = await c
      .as(1000, 1000)
      .setattr(await c.lookup('private'), { ...EMPTY_SATTR3, uid: 1001 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NfsTestError);
    expect((err as NfsTestError).status).toBe(NFS3ERR_PERM);
  });
});

describe.runIf(dualStack)('a dual-stack server (--host ::): IPv4 callers arrive as ::ffff:a.b.c.d and match IPv4 rules', () => {
  let dual: ServerProcess | undefined;
  afterAll(() => dual?.stop());

  it('filters MNT and NFS (TCP and UDP) by the IPv4 rule', async () => {
    const exportsFile = path.join(varDir, 'exports-dual');
    await fs.writeFile(exportsFile, `${dirOf('only2')} ${OTHER_SOURCE}(rw,no_root_squash,insecure)\n`);
    const dualVar = path.join(varDir, 'dual');
    dual = await startServer(['--exports-file', exportsFile, '--var-dir', dualVar, '--host', '::']);
    const mountPort = dual.ports.mount;
    expect((await mnt({ mountPort, exportPath: dirOf('only2') })).status).toBe(MNT3ERR_ACCES);
    const ok = await mnt({ mountPort, exportPath: dirOf('only2'), localAddress: OTHER_SOURCE });
    expect(ok.status).toBe(MNT3_OK);
    for (const transport of ['tcp', 'udp'] as const) {
      const allowed = await NfsTestClient.attach({ nfsPort: dual.ports.nfs, root: ok.fh!, localAddress: OTHER_SOURCE, transport });
      const refused = await NfsTestClient.attach({ nfsPort: dual.ports.nfs, root: ok.fh!, transport });
      clients.push(allowed, refused);
      expect(await allowed.status(NFSPROC3.GETATTR, nfsArgs.fh(ok.fh!))).toBe(NFS3_OK);
      expect(await refused.status(NFSPROC3.GETATTR, nfsArgs.fh(ok.fh!))).toBe(NFS3ERR_ACCES);
    }
  });
});
