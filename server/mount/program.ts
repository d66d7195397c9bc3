/**
 * MOUNT version 3 (RFC 1813 appendix I), and version 1 for DUMP and EXPORT. Version 1's MNT returns
 * a fixed 32-byte handle, which cannot carry ours (44 bytes): it stays PROC_UNAVAIL.
 */
import type { CallContext, Procedure, RpcProgram } from '../../rpc/program.ts';
import { AUTH_NONE, AUTH_SYS } from '../../rpc/program.ts';
import type { XdrReader } from '../../xdr/reader.ts';
import { XdrWriter } from '../../xdr/writer.ts';
import { portAllowed } from '../exports/match.ts';
import type { NfsContext } from '../nfs3/context.ts';
import type { Export } from '../vfs/export.ts';
import { normalizeExportPath } from '../exports/path.ts';
import {
  MNT3ERR_ACCES,
  MNT3ERR_NAMETOOLONG,
  MNT3ERR_NOENT,
  MNT3ERR_NOTDIR,
  MNT3_OK,
  MNTPATHLEN,
  MOUNT_PROGRAM,
  MOUNT_V1,
  MOUNT_V3,
  type mountstat3,
} from './constants.ts';
import { MountTable } from './mount-table.ts';

/** What MNT answers: the handle and the flavours the client may use, in order of preference. */
export const MOUNT_AUTH_FLAVORS = [AUTH_SYS, AUTH_NONE] as const;

class MountError extends Error {
  override readonly name = 'MountError';
  constructor(
    readonly status: Exclude<mountstat3, 0>,
    readonly context: Record<string, unknown>,
  ) {
    super(`mount status ${status}`);
  }
}

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

export interface MountProgramOptions {
  table?: MountTable;
}

export function createMountProgram(ctx: NfsContext, opts: MountProgramOptions = {}): RpcProgram {
  const table = opts.table ?? new MountTable();
  const { vfs, access, log } = ctx;

  async function mnt(dirpathRaw: string, call: CallContext): Promise<Buffer> {
    if (!dirpathRaw.startsWith('/')) throw new MountError(MNT3ERR_NOENT, { dirpath: dirpathRaw, reason: 'relative path' });
    const dirpath = normalizeExportPath(dirpathRaw);
    const found = exportFor(ctx.exports, dirpath);
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
    table.add({ hostname: call.remoteAddress, directory: dirpath });
    log.info({ client: call.remoteAddress, dirpath }, 'mount: MNT');
    return node.fh;
  }

  const nullProc: Procedure = { name: 'NULL', handler: () => new XdrWriter() };

  const mntProc: Procedure = {
    name: 'MNT',
    async handler(r: XdrReader, call: CallContext) {
      const dirpath = r.string(MNTPATHLEN + 1);
      const w = new XdrWriter();
      if (Buffer.byteLength(dirpath) > MNTPATHLEN) return w.uint32(MNT3ERR_NAMETOOLONG);
      try {
        const fh = await mnt(dirpath, call);
        w.uint32(MNT3_OK).opaque(fh);
        w.array(MOUNT_AUTH_FLAVORS, (x, f) => x.uint32(f));
      } catch (e) {
        if (!(e instanceof MountError)) throw e;
        log.info({ client: call.remoteAddress, status: e.status, ...e.context }, 'mount: MNT refused');
        w.uint32(e.status);
      }
      return w;
    },
  };

  const dumpProc: Procedure = {
    name: 'DUMP',
    handler() {
      const w = new XdrWriter();
      for (const e of table.list()) w.bool(true).string(e.hostname).string(e.directory);
      return w.bool(false);
    },
  };

  const umntProc: Procedure = {
    name: 'UMNT',
    handler(r: XdrReader, call: CallContext) {
      const dirpath = r.string(MNTPATHLEN);
      table.remove({ hostname: call.remoteAddress, directory: normalizeExportPath(dirpath) });
      return new XdrWriter();
    },
  };

  const umntallProc: Procedure = {
    name: 'UMNTALL',
    handler(_r: XdrReader, call: CallContext) {
      table.removeHost(call.remoteAddress);
      return new XdrWriter();
    },
  };

  // exports: each export with its client specifications as groups (what `showmount -e` prints).
  const exportProc: Procedure = {
    name: 'EXPORT',
    handler() {
      const w = new XdrWriter();
      for (const e of ctx.exports) {
        w.bool(true).string(e.path);
        for (const rule of e.clients) w.bool(true).string(rule.spec);
        w.bool(false);
      }
      return w.bool(false);
    },
  };

  const v3: Procedure[] = [nullProc, mntProc, dumpProc, umntProc, umntallProc, exportProc];
  // Version 1 has the same procedures except MNT's result; version 1 EXPORTALL (6) is EXPORT again.
  const v1: (Procedure | undefined)[] = [nullProc, undefined, dumpProc, umntProc, umntallProc, exportProc, exportProc];
  return {
    prog: MOUNT_PROGRAM,
    name: 'mount',
    versions: new Map<number, ReadonlyArray<Procedure | undefined>>([
      [MOUNT_V1, v1],
      [MOUNT_V3, v3],
    ]),
  };
}
