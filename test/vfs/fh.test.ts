import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NFS3ERR_BADHANDLE } from '../../server/nfs3/constants.ts';
import { toNfsError } from '../../server/nfs3/errors.ts';
import { normalizeExportPath } from '../../server/exports/path.ts';
import { exportIdFor, openExports } from '../../server/vfs/export.ts';
import { FH_SECRET_FILE, FH_SIZE, FileHandleCodec, loadFhSecret } from '../../server/vfs/fh.ts';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pagelife-vfs-'));
});

afterAll(() => rm(dir, { recursive: true, force: true }));

describe('FileHandleCodec', () => {
  const id = { exportId: 513, dev: 2049n, ino: (1n << 63n) + 5n, gen: 1_700_000_000_123_456_789n };

  it('round-trips what the handle identifies', () => {
    const c = new FileHandleCodec(Buffer.alloc(32, 1));
    const fh = c.encode(id);
    expect(fh.length).toBe(FH_SIZE);
    expect(c.decode(fh)).toEqual(id);
  });

  it('refuses handles made with another secret, or altered', () => {
    const a = new FileHandleCodec(Buffer.alloc(32, 1));
    const b = new FileHandleCodec(Buffer.alloc(32, 2));
    const expectBad = (f: () => unknown) => {
      try {
        f();
        expect.unreachable();
      } catch (e) {
        // The VFS layer says EBADHANDLE; the NFS layer answers it as NFS3ERR_BADHANDLE.
        expect(toNfsError(e).status).toBe(NFS3ERR_BADHANDLE);
      }
    };
    expectBad(() => b.decode(a.encode(id)));
    const fh = a.encode(id);
    fh[1] = 1;
    expectBad(() => a.decode(fh));
    expectBad(() => a.decode(Buffer.alloc(FH_SIZE)));
  });

  it('refuses a short secret', () => {
    expect(() => new FileHandleCodec(Buffer.alloc(8))).toThrow(/at least 32/);
  });
});

describe('loadFhSecret', () => {
  it('creates a 0600 secret once and reads the same one afterwards, also when raced', async () => {
    const state = path.join(dir, 'state');
    const [a, b] = await Promise.all([loadFhSecret(state), loadFhSecret(state)]);
    expect(a).toEqual(b);
    expect(await loadFhSecret(state)).toEqual(a);
    expect(await readFile(path.join(state, FH_SECRET_FILE))).toEqual(a);
    expect((await stat(path.join(state, FH_SECRET_FILE))).mode & 0o777).toBe(0o600);
  });
});

describe('exports', () => {
  it('normalizes client paths and derives stable ids from them', () => {
    expect(normalizeExportPath('export/')).toBe('/export');
    expect(normalizeExportPath('/a//b/../c')).toBe('/a/c');
    expect(exportIdFor('/export')).toBe(exportIdFor('/export/'));
  });

  it('realpaths directories, refuses files and clashing paths', async () => {
    const [e] = await openExports([{ path: '/e', dir: path.join(dir, '.', ''), clients: [] }]);
    expect(e!.dir).toBe(await import('node:fs/promises').then((f) => f.realpath(dir)));
    await expect(openExports([{ path: '/e', dir: path.join(dir, 'missing'), clients: [] }])).rejects.toThrow(/export \/e/);
    await expect(
      openExports([
        { path: '/e', dir, clients: [] },
        { path: '/e/', dir, clients: [] },
      ]),
    ).rejects.toThrow(/clashes/);
  });
});
