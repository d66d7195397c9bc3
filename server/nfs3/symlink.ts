import { symlink as fsSymlink } from 'node:fs/promises';
import path from 'node:path';
import type { XdrReader } from '../../xdr/reader.ts';
import { NFS3ERR_INVAL, NFS3ERR_NAMETOOLONG, NFS3_PATH_MAX } from './constants.ts';
import { NfsError, toNfsError } from './errors.ts';
import { applySattr, beginDirChange, checkNewName, encodeDiropres, ownNew, wccOf, withPre } from './modify.ts';
import { failWcc, okWriter, type NfsProcedure } from './procedure.ts';
import { decodeDiropargs3, decodeFilename3, decodeSattr3, type diropargs3, type sattr3 } from './xdr.ts';

/** RFC 1813 §3.3.10 */
export interface SYMLINK3args {
  where: diropargs3;
  symlink_attributes: sattr3;
  symlink_data: string;
}

/** The target is stored as given: the server never resolves it, so it may point anywhere. */
export const symlink: NfsProcedure<SYMLINK3args> = {
  name: 'SYMLINK',
  nonIdempotent: true,
  decode: (r: XdrReader) => ({ where: decodeDiropargs3(r), symlink_attributes: decodeSattr3(r), symlink_data: decodeFilename3(r) }),
  async run(a, call) {
    const d = await beginDirChange(call, a.where.dir, 'symlink');
    const obj = await withPre(d.pre, async () => {
      const { name } = a.where;
      checkNewName(name, 'symlink');
      const target = a.symlink_data;
      if (target.includes('\0')) throw new NfsError(NFS3ERR_INVAL, { op: 'symlink', name, reason: 'NUL in target' });
      if (Buffer.byteLength(target) >= NFS3_PATH_MAX) throw new NfsError(NFS3ERR_NAMETOOLONG, { op: 'symlink', name });
      const abs = path.join(d.dir.abs, name);
      await fsSymlink(target, abs).catch((e: unknown) => {
        throw toNfsError(e, { op: 'symlink', path: name });
      });
      await ownNew(d, abs);
      const s = a.symlink_attributes;
      await applySattr(call, await call.ctx.vfs.child(d.dir, name), { ...s, uid: undefined, gid: undefined, size: undefined }, 'symlink', true);
      return call.ctx.vfs.child(d.dir, name);
    });
    const wcc = await wccOf(call, d.dir, d.pre);
    const w = okWriter();
    encodeDiropres(w, obj, wcc);
    return w;
  },
  resfail: failWcc((a) => a.where.dir),
};
