import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fattr3FromStats, ftype3Of, nfstime3FromNs, rdevOf } from '../../server/nfs3/attr.ts';
import { NF3CHR, NF3DIR, NF3FIFO, NF3LNK, NF3REG, NF3SOCK } from '../../server/nfs3/constants.ts';
import type { Export } from '../../server/vfs/export.ts';

const U32 = 0xffff_ffffn;

describe('attribute conversions', () => {
  it('nfstime3FromNs keeps the low 32 bits of the seconds and the nanoseconds, for any time', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }), (ns) => {
        const want = ns < 0n ? { seconds: 0, nseconds: 0 } : { seconds: Number((ns / 1_000_000_000n) & U32), nseconds: Number(ns % 1_000_000_000n) };
        expect(nfstime3FromNs(ns)).toEqual(want);
      }),
    );
    expect(nfstime3FromNs(2n ** 32n * 1_000_000_000n + 5n)).toEqual({ seconds: 0, nseconds: 5 });
  });

  it('rdevOf splits a Linux dev_t, and 0 is 0:0', () => {
    expect(rdevOf(0n)).toEqual({ specdata1: 0, specdata2: 0 });
    expect(rdevOf((8n << 8n) | 1n)).toEqual({ specdata1: 8, specdata2: 1 });
    // glibc gnu_dev_makedev
    const makedev = (major: bigint, minor: bigint) => (minor & 0xffn) | ((major & 0xfffn) << 8n) | ((minor & ~0xffn) << 12n) | ((major & ~0xfffn) << 32n);
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: U32 }), fc.bigInt({ min: 0n, max: U32 }), (major, minor) => {
        expect(rdevOf(makedev(major, minor))).toEqual({ specdata1: Number(major), specdata2: Number(minor) });
      }),
    );
  });

  it('ftype3Of tells each kind of object a real stat describes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'attr-'));
    const server = net.createServer();
    try {
      writeFileSync(join(dir, 'f'), '');
      mkdirSync(join(dir, 'd'));
      symlinkSync('f', join(dir, 'l'));
      execFileSync('mkfifo', [join(dir, 'p')]);
      await new Promise<void>((ok) => server.listen(join(dir, 's'), ok));
      const typeOf = (name: string) => ftype3Of(lstatSync(join(dir, name), { bigint: true }));
      expect(['f', 'd', 'l', 'p', 's'].map(typeOf)).toEqual([NF3REG, NF3DIR, NF3LNK, NF3FIFO, NF3SOCK]);
      expect(ftype3Of(statSync('/dev/null', { bigint: true }))).toBe(NF3CHR);
    } finally {
      server.close();
      rmSync(dir, { recursive: true });
    }
  });

  it('fattr3FromStats of a real file carries its stat', () => {
    const dir = mkdtempSync(join(tmpdir(), 'attr-'));
    try {
      const f = join(dir, 'f');
      writeFileSync(f, 'hello', { mode: 0o4751 });
      const st = statSync(f, { bigint: true });
      const exp = { dev: st.dev, fsid: 7n } as Export;
      const a = fattr3FromStats(st, exp);
      expect(a).toMatchObject({ mode: Number(st.mode & 0o7777n), nlink: 1, uid: Number(st.uid), gid: Number(st.gid), size: 5n, fsid: 7n, fileid: st.ino });
      expect(a.mtime).toEqual(nfstime3FromNs(st.mtimeNs));
      expect(a.rdev).toEqual({ specdata1: 0, specdata2: 0 });
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});
