import { execFile } from 'node:child_process';
import { close as closeFd, constants, openSync } from 'node:fs';
import { link as fsLink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import type { XdrReader } from '../../xdr/reader.ts';
import type { specdata3 } from '../vfs/attr.ts';
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
import { failWcc, type NfsProcedure } from './procedure.ts';
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
 * removes the temporary name). The bind goes through /proc/self/fd/N of the directory so the path
 * fits sun_path (108 bytes) however deep the export is.
 */
async function makeSocket(dirAbs: string, name: string, rel: string): Promise<void> {
  const tmpName = `.pagelife-mknod-${randomBytes(6).toString('hex')}`;
  const dirFd = openSync(dirAbs, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    const short = `/proc/self/fd/${dirFd}/${tmpName}`;
    const bindPath = short.length < 100 ? short : path.join(dirAbs, tmpName);
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(bindPath, () => resolve());
    });
    try {
      await fsLink(path.join(dirAbs, tmpName), path.join(dirAbs, name));
    } catch (e) {
      throw toNfsError(e, { op: 'mknod', path: rel });
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  } finally {
    closeFd(dirFd, () => undefined);
  }
}

export const mknod: NfsProcedure<MKNOD3args> = {
  name: 'MKNOD',
  nonIdempotent: true,
  decode: (r: XdrReader) => ({ where: decodeDiropargs3(r), what: decodeMknoddata3(r) }),
  run: (a, call) =>
    createNode(
      call,
      a.where,
      'mknod',
      async (abs, rel) => {
        const what = a.what;
        if (what.type === NF3FIFO) {
          await mknodTool(['mkfifo', '-m', NODE_MODE.toString(8), '--', abs], rel);
          return what.pipe_attributes;
        }
        if (what.type === NF3SOCK) {
          await makeSocket(path.dirname(abs), path.basename(abs), rel);
          return what.pipe_attributes;
        }
        if (what.type === NF3CHR || what.type === NF3BLK) {
          // Device nodes give access to host hardware: only when the server is configured to allow them.
          if (!call.ctx.allowDevices) throw new NfsError(NFS3ERR_PERM, { op: 'mknod', path: rel, reason: 'device nodes not allowed' });
          const kind = what.type === NF3CHR ? 'c' : 'b';
          await mknodTool(['mknod', '-m', NODE_MODE.toString(8), '--', abs, kind, String(what.spec.specdata1), String(what.spec.specdata2)], rel);
          return what.dev_attributes;
        }
        throw new NfsError(NFS3ERR_BADTYPE, { op: 'mknod', path: rel, type: what.type });
      },
      0o644,
    ),
  resfail: failWcc((a) => a.where.dir),
};
