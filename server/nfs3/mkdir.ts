import { mkdir as fsMkdir } from 'node:fs/promises';
import path from 'node:path';
import type { XdrReader } from '../../xdr/reader.ts';
import { toNfsError } from './errors.ts';
import { applySattr, beginDirChange, checkNewName, encodeDiropres, ownNew, wccOf, withPre } from './modify.ts';
import { failWcc, okWriter, type NfsProcedure } from './procedure.ts';
import { decodeDiropargs3, decodeSattr3, type diropargs3, type sattr3 } from './xdr.ts';

/** RFC 1813 §3.3.9 */
export interface MKDIR3args {
  where: diropargs3;
  attributes: sattr3;
}

const DEFAULT_DIR_MODE = 0o755;

export const mkdir: NfsProcedure<MKDIR3args> = {
  name: 'MKDIR',
  nonIdempotent: true,
  decode: (r: XdrReader) => ({ where: decodeDiropargs3(r), attributes: decodeSattr3(r) }),
  async run(a, call) {
    const d = await beginDirChange(call, a.where.dir, 'mkdir');
    const obj = await withPre(d.pre, async () => {
      const { name } = a.where;
      checkNewName(name, 'mkdir');
      const abs = path.join(d.dir.abs, name);
      // Private until owned and given its mode, so nobody slips in between.
      await fsMkdir(abs, 0o700).catch((e: unknown) => {
        throw toNfsError(e, { op: 'mkdir', path: name });
      });
      await ownNew(d, abs);
      const s = a.attributes;
      await applySattr(call, await call.ctx.vfs.child(d.dir, name), { ...s, mode: s.mode ?? DEFAULT_DIR_MODE, uid: undefined, gid: undefined, size: undefined }, 'mkdir', true);
      return call.ctx.vfs.child(d.dir, name);
    });
    const wcc = await wccOf(call, d.dir, d.pre);
    const w = okWriter();
    encodeDiropres(w, obj, wcc);
    return w;
  },
  resfail: failWcc((a) => a.where.dir),
};
