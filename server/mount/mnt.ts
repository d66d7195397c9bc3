import type { CallContext } from '../../rpc/program.ts';
import { AUTH_NONE, AUTH_SYS } from '../../rpc/program.ts';
import { XdrWriter } from '../../xdr/writer.ts';
import { portAllowed } from '../exports/match.ts';
import { normalizeExportPath } from '../exports/path.ts';
import type { Export } from '../vfs/export.ts';
import { MNT3ERR_ACCES, MNT3ERR_NAMETOOLONG, MNT3ERR_NOENT, MNT3ERR_NOTDIR, MNT3_OK, MNTPATHLEN } from './constants.ts';
import { MountError, type MountContext, type MountProcedure } from './procedure.ts';

/** What MNT answers: the handle and the flavours the client may use, in order of preference. */
export const MOUNT_AUTH_FLAVORS = [AUTH_SYS, AUTH_NONE] as const;

/** The export a client path lies in: the export itself, or a directory below it (longest match). */
function exportFor(exports: readonly Export[], dirpath: string): { exp: Export; sub: string } | undefined {
  let best: Export | undefined;
  for (const e of exports) {
    const inside = dirpath === e.path || dirpath.startsWith(e.path === '/' ? '/' : `${e.path}/`);
    if (inside && (!best || e.path.length > best.path.length)) best = e;
  }
  if (!best) return undefined;
  return { exp: best, sub: dirpath.slice(best.path.length).replace(/^\/+/, '') };
}

/** The root handle of `dirpathRaw` for this caller, or the MountError that refuses it. */
async function mountedHandle(dirpathRaw: string, call: CallContext, ctx: MountContext): Promise<Buffer> {
  const { vfs, access, exports, log } = ctx.nfs;
  if (!dirpathRaw.startsWith('/')) throw new MountError(MNT3ERR_NOENT, { dirpath: dirpathRaw, reason: 'relative path' });
  const dirpath = normalizeExportPath(dirpathRaw);
  const found = exportFor(exports, dirpath);
  if (!found) throw new MountError(MNT3ERR_NOENT, { dirpath });
  const { exp, sub } = found;
  const opts = await access.optionsFor(exp.clients, call.remoteAddress);
  if (!opts) throw new MountError(MNT3ERR_ACCES, { dirpath, reason: 'client not allowed' });
  // As rpc.mountd: a `secure` export refuses MNT from unprivileged ports.
  if (!portAllowed(opts, call.remotePort)) throw new MountError(MNT3ERR_ACCES, { dirpath, reason: 'insecure port', port: call.remotePort });
  let node = await vfs.root(exp).catch(() => {
    throw new MountError(MNT3ERR_NOENT, { dirpath, reason: 'export directory unavailable' });
  });
  // A subdirectory mount: each component must be a real directory, looked up in the one before it
  // through its anchor (symlinks are not followed, and a swapped component does not lead out).
  for (const name of sub === '' ? [] : sub.split('/')) {
    const next = await vfs.lookup(node, name).catch(() => undefined);
    if (!next) throw new MountError(MNT3ERR_NOENT, { dirpath });
    if (!next.st.isDirectory()) throw new MountError(MNT3ERR_NOTDIR, { dirpath });
    node = next;
  }
  ctx.table.add({ hostname: call.remoteAddress, directory: dirpath });
  log.info({ client: call.remoteAddress, dirpath }, 'mount: MNT');
  return node.fh;
}

/** MOUNTPROC3_MNT: the root handle of an export (or a directory in it) and the auth flavours. */
export const mnt: MountProcedure = {
  name: 'MNT',
  async handler(r, call, ctx) {
    const dirpath = r.string(MNTPATHLEN + 1);
    const w = new XdrWriter();
    if (Buffer.byteLength(dirpath) > MNTPATHLEN) return w.uint32(MNT3ERR_NAMETOOLONG);
    try {
      const fh = await mountedHandle(dirpath, call, ctx);
      w.uint32(MNT3_OK).opaque(fh);
      w.array(MOUNT_AUTH_FLAVORS, (x, f) => x.uint32(f));
    } catch (e) {
      if (!(e instanceof MountError)) throw e;
      ctx.nfs.log.info({ client: call.remoteAddress, status: e.status, ...e.context }, 'mount: MNT refused');
      w.uint32(e.status);
    }
    return w;
  },
};
