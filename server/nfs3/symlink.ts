import { symlink as fsSymlink } from 'node:fs/promises';
import type { XdrReader } from '../../xdr/reader.ts';
import { NFS3ERR_INVAL, NFS3ERR_NAMETOOLONG, NFS3_PATH_MAX } from './constants.ts';
import { NfsError, toNfsError } from './errors.ts';
import { createNode } from './modify.ts';
import { failureWcc, type NfsProcedure } from './procedure.ts';
import { diropres3, type diropres3fail, type SYMLINK3resok } from './results.ts';
import { decodeDiropargs3, decodeFilename3, decodeSattr3, type diropargs3, type sattr3 } from './xdr.ts';

/** RFC 1813 §3.3.10 */
export interface SYMLINK3args {
  where: diropargs3;
  symlink_attributes: sattr3;
  symlink_data: string;
}

/** The target is stored as given: the server never resolves it, so it may point anywhere. */
export const symlink: NfsProcedure<SYMLINK3args, SYMLINK3resok, diropres3fail> = {
  name: 'SYMLINK',
  nonIdempotent: true,
  changes: (a) => [a.where.dir],
  result: diropres3,
  decode: (r: XdrReader) => ({ where: decodeDiropargs3(r), symlink_attributes: decodeSattr3(r), symlink_data: decodeFilename3(r) }),
  run: (a, call) =>
    createNode(call, a.where, 'symlink', async (dir, name, rel) => {
      const target = a.symlink_data;
      if (target.includes('\0')) throw new NfsError(NFS3ERR_INVAL, { op: 'symlink', path: rel, reason: 'NUL in target' });
      if (Buffer.byteLength(target) >= NFS3_PATH_MAX) throw new NfsError(NFS3ERR_NAMETOOLONG, { op: 'symlink', path: rel });
      await fsSymlink(target, dir.at(name)).catch((e: unknown) => {
        throw toNfsError(e, { op: 'symlink', path: rel });
      });
      return { attrs: a.symlink_attributes, isKind: (st) => st.isSymbolicLink() };
    }),
  resfail: async (a, err, call) => ({ dir_wcc: await failureWcc(call, a.where.dir, err) }),
};
