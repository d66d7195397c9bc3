import { mkdir, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTH_NONE, AUTH_SYS } from '../../rpc/program.ts';
import { MNT3ERR_ACCES, MNT3ERR_NOENT, MNT3ERR_NOTDIR, MNT3_OK, MOUNTPROC3, MOUNT_V1 } from '../../server/mount/constants.ts';
import { makeFixture, type Fixture } from '../nfs3/harness.ts';

let fx: Fixture;

beforeAll(async () => {
  fx = await makeFixture({
    exports: [{}, { path: '/private', clients: '10.0.0.0/8' }, { path: '/secure', options: 'ro,secure' }],
  });
  await mkdir(fx.hostPath('sub', 'inner'), { recursive: true });
  await writeFile(fx.hostPath('file'), 'x');
});

afterAll(() => fx?.close());

async function mnt(dirpath: string, o: { remoteAddress?: string; remotePort?: number } = {}) {
  const { r } = await fx.raw(fx.mount, MOUNTPROC3.MNT, (w) => w.string(dirpath), o);
  const status = r.uint32();
  if (status !== MNT3_OK) return { status };
  const fh = Buffer.from(r.opaque(64));
  const flavors = r.array(16, (x) => x.uint32());
  return { status, fh, flavors };
}

async function dump(vers?: number) {
  const { r } = await fx.raw(fx.mount, MOUNTPROC3.DUMP, () => undefined, vers ? { vers } : {});
  const out: { host: string; dir: string }[] = [];
  while (r.bool()) out.push({ host: r.string(255), dir: r.string(1024) });
  return out;
}

describe('MOUNT v3', () => {
  it('NULL answers empty', async () => {
    expect((await fx.raw(fx.mount, MOUNTPROC3.NULL, () => undefined)).body.length).toBe(0);
  });

  it('MNT of an export returns its root handle and AUTH_SYS, AUTH_NONE', async () => {
    const m = await mnt('/export');
    expect(m.status).toBe(MNT3_OK);
    expect(m.fh).toEqual(await fx.rootFh());
    expect(m.flavors).toEqual([AUTH_SYS, AUTH_NONE]);
    expect((await mnt('/export/')).fh).toEqual(await fx.rootFh());
  });

  it('MNT of a subdirectory returns that directory; of a file NOTDIR; of nothing NOENT', async () => {
    const m = await mnt('/export/sub/inner');
    expect(m.status).toBe(MNT3_OK);
    expect(m.fh).toEqual(await fx.walk('sub/inner'));
    expect((await mnt('/export/file')).status).toBe(MNT3ERR_NOTDIR);
    expect((await mnt('/export/missing')).status).toBe(MNT3ERR_NOENT);
    expect((await mnt('/nope')).status).toBe(MNT3ERR_NOENT);
    expect((await mnt('/exportfoo')).status).toBe(MNT3ERR_NOENT);
    expect((await mnt('export')).status).toBe(MNT3ERR_NOENT);
    expect((await mnt('/export/../private')).status).toBe(MNT3ERR_ACCES);
  });

  it('MNT3ERR_ACCES for a client the rules do not allow, or from an insecure port on a secure export', async () => {
    expect((await mnt('/private')).status).toBe(MNT3ERR_ACCES);
    expect((await mnt('/private', { remoteAddress: '10.1.2.3' })).status).toBe(MNT3_OK);
    expect((await mnt('/secure', { remotePort: 40000 })).status).toBe(MNT3ERR_ACCES);
    expect((await mnt('/secure', { remotePort: 700 })).status).toBe(MNT3_OK);
  });

  it('DUMP lists mounts; UMNT and UMNTALL remove them', async () => {
    fx.mounts.removeHost('127.0.0.1');
    fx.mounts.removeHost('10.1.2.3');
    await mnt('/export', { remoteAddress: '127.0.0.1' });
    await mnt('/export/sub', { remoteAddress: '127.0.0.1' });
    await mnt('/private', { remoteAddress: '10.1.2.3' });
    expect((await dump()).sort((a, b) => a.dir.localeCompare(b.dir))).toEqual([
      { host: '127.0.0.1', dir: '/export' },
      { host: '127.0.0.1', dir: '/export/sub' },
      { host: '10.1.2.3', dir: '/private' },
    ]);
    await fx.raw(fx.mount, MOUNTPROC3.UMNT, (w) => w.string('/export/sub'));
    expect((await dump()).length).toBe(2);
    await fx.raw(fx.mount, MOUNTPROC3.UMNTALL, () => undefined, { remoteAddress: '10.1.2.3' });
    expect(await dump()).toEqual([{ host: '127.0.0.1', dir: '/export' }]);
    expect(await dump(MOUNT_V1)).toEqual([{ host: '127.0.0.1', dir: '/export' }]);
  });

  it('EXPORT lists every export with its client specifications as groups (v3 and v1)', async () => {
    for (const vers of [3, MOUNT_V1]) {
      const { r } = await fx.raw(fx.mount, MOUNTPROC3.EXPORT, () => undefined, { vers });
      const list: { dir: string; groups: string[] }[] = [];
      while (r.bool()) {
        const dir = r.string(1024);
        const groups: string[] = [];
        while (r.bool()) groups.push(r.string(255));
        list.push({ dir, groups });
      }
      expect(r.remaining).toBe(0);
      expect(list).toEqual([
        { dir: '/export', groups: ['*'] },
        { dir: '/private', groups: ['10.0.0.0/8'] },
        { dir: '/secure', groups: ['*'] },
      ]);
    }
  });

  it('version 1 has no MNT (its 32-byte handle cannot carry ours)', () => {
    expect(fx.mount.versions.get(MOUNT_V1)?.[MOUNTPROC3.MNT]).toBeUndefined();
  });
});
