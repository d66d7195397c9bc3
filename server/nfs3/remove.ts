import { lstat, rmdir as fsRmdir, unlink } from 'node:fs/promises';
import type { XdrReader } from '../../xdr/reader.ts';
import { using } from '../vfs/anchor.ts';
import { ACCESS3_DELETE } from '../exports/access.ts';
import { cacheKeyOf } from '../vfs/source.ts';
import { NFS3ERR_NOTDIR, NFS3ERR_NOTEMPTY } from './constants.ts';
import { NfsError, errnoOf, toNfsError } from './errors.ts';
import { beginDirChange, checkOldName, requireMayDelete, wccOf, withPre } from './modify.ts';
import { failureWcc, type NfsCall, type NfsProcedure } from './procedure.ts';
import { REMOVE3res, type REMOVE3resfail, type REMOVE3resok } from './results.ts';
import { decodeDiropargs3, type diropargs3 } from './xdr.ts';

/** RFC 1813 §3.3.12 REMOVE3args and §3.3.13 RMDIR3args. */
export interface REMOVE3args {
  object: diropargs3;
}
export type RMDIR3args = REMOVE3args;

/** REMOVE and RMDIR: same checks, `unlink` or `rmdir`; both answer dir_wcc whatever happens. */
export async function removeEntry(a: REMOVE3args, call: NfsCall, op: 'remove' | 'rmdir'): Promise<REMOVE3resok> {
  const d = await beginDirChange(call, a.object.dir, op, ACCESS3_DELETE);
  await withPre(d.pre, async () => {
    const { name } = a.object;
    checkOldName(name, op);
    const st = await using(call.ctx.vfs.dirAnchor(d.dir, op), async (dir) => {
      const at = dir.at(name);
      const st = await lstat(at, { bigint: true }).catch((e: unknown) => {
        throw toNfsError(e, { op, path: name });
      });
      requireMayDelete(d, st, op);
      try {
        if (op === 'rmdir') {
          if (!st.isDirectory()) throw new NfsError(NFS3ERR_NOTDIR, { op, path: name });
          await fsRmdir(at);
        } else {
          // Linux unlink(2) of a directory fails with EISDIR → NFS3ERR_ISDIR.
          await unlink(at);
        }
      } catch (e) {
        // Some file systems say EEXIST for a non-empty directory.
        if (op === 'rmdir' && errnoOf(e) === 'EEXIST') throw new NfsError(NFS3ERR_NOTEMPTY, { op, path: name });
        throw toNfsError(e, { op, path: name });
      }
      return st;
    });
    if (st.nlink <= 1n || st.isDirectory()) call.ctx.vfs.forget(d.dir.exp, st);
    // The last name of a file: its cached pages can never be read again.
    if (st.isFile() && st.nlink <= 1n) call.ctx.coherence.drop(cacheKeyOf(st));
  });
  return { dir_wcc: await wccOf(call, d.dir, d.pre) };
}

export const remove: NfsProcedure<REMOVE3args, REMOVE3resok, REMOVE3resfail> = {
  name: 'REMOVE',
  nonIdempotent: true,
  changes: (a) => [a.object.dir],
  result: REMOVE3res,
  decode: (r: XdrReader) => ({ object: decodeDiropargs3(r) }),
  run: (a, call) => removeEntry(a, call, 'remove'),
  resfail: async (a, err, call) => ({ dir_wcc: await failureWcc(call, a.object.dir, err) }),
};
