import { mkdir as fsMkdir } from 'node:fs/promises';
import type { XdrReader } from '../../xdr/reader.ts';
import { toNfsError } from './errors.ts';
import { createNode } from './modify.ts';
import { failureWcc, type NfsProcedure } from './procedure.ts';
import { diropres3, type diropres3fail, type MKDIR3resok } from './results.ts';
import { decodeDiropargs3, decodeSattr3, type diropargs3, type sattr3 } from './xdr.ts';

/** RFC 1813 §3.3.9 */
export interface MKDIR3args {
  where: diropargs3;
  attributes: sattr3;
}

const DEFAULT_DIR_MODE = 0o755;
const NEW_DIR_MODE = 0o700;

export const mkdir: NfsProcedure<MKDIR3args, MKDIR3resok, diropres3fail> = {
  name: 'MKDIR',
  nonIdempotent: true,
  changes: (a) => [a.where.dir],
  result: diropres3,
  decode: (r: XdrReader) => ({ where: decodeDiropargs3(r), attributes: decodeSattr3(r) }),
  run: (a, call) =>
    createNode(
      call,
      a.where,
      'mkdir',
      async (dir, name, rel) => {
        // Private until owned and given its mode, so nobody slips in between.
        await fsMkdir(dir.at(name), NEW_DIR_MODE).catch((e: unknown) => {
          throw toNfsError(e, { op: 'mkdir', path: rel });
        });
        return { attrs: a.attributes, isKind: (st) => st.isDirectory() && (st.mode & 0o777n) === BigInt(NEW_DIR_MODE) && st.nlink === 2n };
      },
      DEFAULT_DIR_MODE,
    ),
  resfail: async (a, err, call) => ({ dir_wcc: await failureWcc(call, a.where.dir, err) }),
};
