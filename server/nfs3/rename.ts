import { lstat, rename as fsRename } from 'node:fs/promises';
import type { XdrReader } from '../../xdr/reader.ts';
import { using } from '../vfs/anchor.ts';
import { ACCESS3_DELETE, ACCESS3_EXTEND } from '../exports/access.ts';
import { cacheKeyOf } from '../vfs/source.ts';
import { NFS3ERR_XDEV } from './constants.ts';
import { NfsError, toNfsError } from './errors.ts';
import { beginDirChange, checkOldName, requireMayDelete, wccOf, withPre } from './modify.ts';
import { failureWcc, type NfsProcedure } from './procedure.ts';
import { RENAME3res, type RENAME3resfail, type RENAME3resok } from './results.ts';
import { decodeDiropargs3, type diropargs3 } from './xdr.ts';

/** RFC 1813 §3.3.14 */
export interface RENAME3args {
  from: diropargs3;
  to: diropargs3;
}

export const rename: NfsProcedure<RENAME3args, RENAME3resok, RENAME3resfail> = {
  name: 'RENAME',
  nonIdempotent: true,
  changes: (a) => [a.from.dir, a.to.dir],
  result: RENAME3res,
  decode: (r: XdrReader) => ({ from: decodeDiropargs3(r), to: decodeDiropargs3(r) }),
  async run(a, call) {
    const from = await beginDirChange(call, a.from.dir, 'rename', ACCESS3_DELETE);
    const to = await beginDirChange(call, a.to.dir, 'rename', ACCESS3_EXTEND).catch((e: unknown) => {
      const err = toNfsError(e);
      throw new NfsError(err.status, { ...err.context, pre: from.pre, toPre: err.context.pre });
    });
    await withPre(
      from.pre,
      async () => {
        if (from.dir.exp !== to.dir.exp) throw new NfsError(NFS3ERR_XDEV, { op: 'rename', from: from.dir.exp.path, to: to.dir.exp.path });
        checkOldName(a.from.name, 'rename');
        checkOldName(a.to.name, 'rename');
        const { src, dst } = await using(call.ctx.vfs.dirAnchor(from.dir, 'rename'), (fromDir) =>
          using(call.ctx.vfs.dirAnchor(to.dir, 'rename'), async (toDir) => {
            const fromAt = fromDir.at(a.from.name);
            const toAt = toDir.at(a.to.name);
            const src = await lstat(fromAt, { bigint: true }).catch((e: unknown) => {
              throw toNfsError(e, { op: 'rename', path: a.from.name });
            });
            requireMayDelete(from, src, 'rename');
            const dst = await lstat(toAt, { bigint: true }).catch(() => undefined);
            if (dst) requireMayDelete(to, dst, 'rename');
            await fsRename(fromAt, toAt).catch((e: unknown) => {
              throw toNfsError(e, { op: 'rename', path: a.from.name, to: a.to.name });
            });
            return { src, dst };
          }),
        );
        const exp = from.dir.exp;
        const relOf = (dirRel: string, name: string) => (dirRel === '' ? name : `${dirRel}/${name}`);
        // A replaced target that was its file's last name is gone, and so are its cached pages.
        if (dst && (dst.ino !== src.ino || dst.dev !== src.dev) && (dst.nlink <= 1n || dst.isDirectory())) {
          call.ctx.vfs.forget(exp, dst);
          if (dst.isFile()) call.ctx.coherence.drop(cacheKeyOf(dst));
        }
        call.ctx.vfs.moved(exp, relOf(from.dir.rel, a.from.name), relOf(to.dir.rel, a.to.name), src);
      },
      { toPre: to.pre },
    );
    const fromdir_wcc = await wccOf(call, from.dir, from.pre);
    return { fromdir_wcc, todir_wcc: await wccOf(call, to.dir, to.pre) };
  },
  async resfail(a, err, call) {
    const fromdir_wcc = await failureWcc(call, a.from.dir, err);
    return { fromdir_wcc, todir_wcc: await failureWcc(call, a.to.dir, err, 'toPre') };
  },
};
