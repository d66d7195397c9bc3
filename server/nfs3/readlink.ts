import { readlink as fsReadlink } from 'node:fs/promises';
import type { XdrReader } from '../../xdr/reader.ts';
import { using } from '../vfs/anchor.ts';
import { fattr3FromStats } from './attr.ts';
import { NFS3ERR_INVAL } from './constants.ts';
import { NfsError, toNfsError } from './errors.ts';
import type { NfsProcedure } from './procedure.ts';
import { READLINK3res, type READLINK3resfail, type READLINK3resok } from './results.ts';
import { decodeNfsFh3, type nfs_fh3 } from './xdr.ts';

/** RFC 1813 §3.3.5 */
export interface READLINK3args {
  symlink: nfs_fh3;
}

/** The target is returned as stored; the server never follows it (the client resolves it). */
export const readlink: NfsProcedure<READLINK3args, READLINK3resok, READLINK3resfail> = {
  name: 'READLINK',
  decode: (r: XdrReader) => ({ symlink: decodeNfsFh3(r) }),
  result: READLINK3res,
  async run(a, call) {
    const n = await call.node(a.symlink);
    if (!n.st.isSymbolicLink()) throw new NfsError(NFS3ERR_INVAL, { op: 'readlink', path: n.rel, reason: 'not a symlink' });
    // readlink of an anchor would give the anchor's path: the target is read by name in the link's
    // own (anchored) directory.
    const at = await call.ctx.vfs.parentAnchor(n, 'readlink').catch((e: unknown) => {
      throw toNfsError(e, { op: 'readlink', path: n.rel });
    });
    const target = await using(at.dir, (dir) =>
      fsReadlink(dir.at(at.name), { encoding: 'buffer' }).catch((e: unknown) => {
        throw toNfsError(e, { op: 'readlink', path: n.rel });
      }),
    );
    return { symlink_attributes: fattr3FromStats(n.st, n.exp), data: target };
  },
  resfail: async (a, err, call) => ({ symlink_attributes: await call.attrsOf(a.symlink, err.status) }),
};
