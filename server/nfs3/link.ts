import { link as fsLink } from 'node:fs/promises';
import type { XdrReader } from '../../xdr/reader.ts';
import { using } from '../vfs/anchor.ts';
import { fattr3FromStats } from './attr.ts';
import { NFS3ERR_XDEV } from './constants.ts';
import { NfsError, toNfsError } from './errors.ts';
import { beginDirChange, checkNewName, wccOf, withPre } from './modify.ts';
import { failureWcc, type NfsProcedure } from './procedure.ts';
import { LINK3res, type LINK3resfail, type LINK3resok } from './results.ts';
import { decodeDiropargs3, decodeNfsFh3, type diropargs3, type nfs_fh3 } from './xdr.ts';

/** RFC 1813 §3.3.15 */
export interface LINK3args {
  file: nfs_fh3;
  link: diropargs3;
}

export const link: NfsProcedure<LINK3args, LINK3resok, LINK3resfail> = {
  name: 'LINK',
  nonIdempotent: true,
  changes: (a) => [a.file, a.link.dir],
  result: LINK3res,
  decode: (r: XdrReader) => ({ file: decodeNfsFh3(r), link: decodeDiropargs3(r) }),
  async run(a, call) {
    const file = await call.node(a.file);
    const d = await beginDirChange(call, a.link.dir, 'link');
    await withPre(d.pre, async () => {
      if (file.exp !== d.dir.exp) throw new NfsError(NFS3ERR_XDEV, { op: 'link', from: file.exp.path, to: d.dir.exp.path });
      checkNewName(a.link.name, 'link');
      // link(2) does not follow a symlink given as the source: the new name links the symlink itself.
      // A directory gives EPERM (NFS3ERR_PERM), as on Linux. The source is named through its own
      // directory's anchor (a descriptor cannot be linked without linkat's AT_EMPTY_PATH).
      const source = await call.ctx.vfs.parentAnchor(file, 'link');
      await using(source.dir, () =>
        using(call.ctx.vfs.dirAnchor(d.dir, 'link'), (dir) =>
          fsLink(source.dir.at(source.name), dir.at(a.link.name)).catch((e: unknown) => {
            throw toNfsError(e, { op: 'link', path: a.link.name });
          }),
        ),
      );
    });
    const now = await call.ctx.vfs.restat(file).catch(() => undefined);
    return { file_attributes: now && fattr3FromStats(now.st, now.exp), linkdir_wcc: await wccOf(call, d.dir, d.pre) };
  },
  async resfail(a, err, call) {
    const file_attributes = await call.attrsOf(a.file, err.status);
    return { file_attributes, linkdir_wcc: await failureWcc(call, a.link.dir, err) };
  },
};
