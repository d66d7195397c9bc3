import { execFile } from 'node:child_process';
import { link as fsLink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { promisify } from 'node:util';
import type { XdrReader } from '../../xdr/reader.ts';
import type { Anchor } from '../vfs/anchor.ts';
import type { specdata3 } from './attr.ts';
import {
  FTYPE3_VALUES,
  NF3BLK,
  NF3CHR,
  NF3FIFO,
  NF3SOCK,
  NFS3ERR_BADTYPE,
  NFS3ERR_EXIST,
  NFS3ERR_IO,
  NFS3ERR_PERM,
  type ftype3,
} from './constants.ts';
import { NfsError, toNfsError } from './errors.ts';
import { createNode } from './modify.ts';
import { failureWcc, type NfsProcedure } from './procedure.ts';
import { diropres3, type diropres3fail, type MKNOD3resok } from './results.ts';
import { decodeDiropargs3, decodeSattr3, type diropargs3, type sattr3 } from './xdr.ts';

/** RFC 1813 §3.3.11 mknoddata3: devices carry attributes and numbers, FIFO/socket attributes only. */
export type mknoddata3 =
  | { type: typeof NF3CHR | typeof NF3BLK; dev_attributes: sattr3; spec: specdata3 }
  | { type: typeof NF3SOCK | typeof NF3FIFO; pipe_attributes: sattr3 }
  | { type: Exclude<ftype3, typeof NF3CHR | typeof NF3BLK | typeof NF3SOCK | typeof NF3FIFO> };

export interface MKNOD3args {
  where: diropargs3;
  what: mknoddata3;
}

function decodeMknoddata3(r: XdrReader): mknoddata3 {
  const type = r.enumOf<ftype3>(FTYPE3_VALUES, 'ftype3');
  if (type === NF3CHR || type === NF3BLK) {
    const dev_attributes = decodeSattr3(r);
    return { type, dev_attributes, spec: { specdata1: r.uint32(), specdata2: r.uint32() } };
  }
  if (type === NF3SOCK || type === NF3FIFO) return { type, pipe_attributes: decodeSattr3(r) };
  return { type };
}

const run = promisify(execFile);
const NODE_MODE = 0o600;

/** Node has no mknod(2): FIFOs and device nodes come from coreutils (arguments, never a shell). */
async function mknodTool(args: string[], rel: string): Promise<void> {
  try {
    await run(args[0]!, args.slice(1), { env: { ...process.env, LC_ALL: 'C' } });
  } catch (e) {
    const stderr = String((e as { stderr?: unknown }).stderr ?? '');
    if (/File exists/.test(stderr)) throw new NfsError(NFS3ERR_EXIST, { op: 'mknod', path: rel });
    throw new NfsError(NFS3ERR_IO, { op: 'mknod', path: rel, reason: stderr.trim() || (e as Error).message });
  }
}

/**
 * A socket node: bound under a temporary name, hard-linked to the wanted name, then closed (which
 * removes the temporary name). The bind goes through the directory's anchor (/proc/self/fd/N), which
 * also keeps the path inside sun_path (108 bytes) however deep the export is.
 */
async function makeSocket(dir: Anchor, name: string, rel: string): Promise<void> {
  const tmp = dir.at(`.pagelife-mknod-${randomBytes(6).toString('hex')}`);
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(tmp, () => resolve());
  });
  try {
    await fsLink(tmp, dir.at(name));
  } catch (e) {
    throw toNfsError(e, { op: 'mknod', path: rel });
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

export const mknod: NfsProcedure<MKNOD3args, MKNOD3resok, diropres3fail> = {
  name: 'MKNOD',
  nonIdempotent: true,
  changes: (a) => [a.where.dir],
  result: diropres3,
  decode: (r: XdrReader) => ({ where: decodeDiropargs3(r), what: decodeMknoddata3(r) }),
  run: (a, call) =>
    createNode(
      call,
      a.where,
      'mknod',
      async (dir, name, rel) => {
        const what = a.what;
        if (what.type === NF3FIFO) {
          await mknodTool(['mkfifo', '-m', NODE_MODE.toString(8), '--', dir.at(name)], rel);
          return { attrs: what.pipe_attributes, isKind: (st) => st.isFIFO() };
        }
        if (what.type === NF3SOCK) {
          await makeSocket(dir, name, rel);
          return { attrs: what.pipe_attributes, isKind: (st) => st.isSocket() };
        }
        if (what.type === NF3CHR || what.type === NF3BLK) {
          // Device nodes give access to host hardware: only when the server is configured to allow them.
          if (!call.ctx.allowDevices) throw new NfsError(NFS3ERR_PERM, { op: 'mknod', path: rel, reason: 'device nodes not allowed' });
          const kind = what.type === NF3CHR ? 'c' : 'b';
          await mknodTool(['mknod', '-m', NODE_MODE.toString(8), '--', dir.at(name), kind, String(what.spec.specdata1), String(what.spec.specdata2)], rel);
          return { attrs: what.dev_attributes, isKind: (st) => (what.type === NF3CHR ? st.isCharacterDevice() : st.isBlockDevice()) };
        }
        throw new NfsError(NFS3ERR_BADTYPE, { op: 'mknod', path: rel, type: what.type });
      },
      0o644,
    ),
  resfail: async (a, err, call) => ({ dir_wcc: await failureWcc(call, a.where.dir, err) }),
};
