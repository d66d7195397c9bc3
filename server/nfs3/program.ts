import type { Procedure, RpcProgram } from '../../rpc/program.ts';
import { access } from './access.ts';
import { commit } from './commit.ts';
import { NFS_PROGRAM, NFS_V3 } from './constants.ts';
import type { NfsContext } from './context.ts';
import { create } from './create.ts';
import { fsinfo } from './fsinfo.ts';
import { fsstat } from './fsstat.ts';
import { getattr } from './getattr.ts';
import { link } from './link.ts';
import { lookup } from './lookup.ts';
import { mkdir } from './mkdir.ts';
import { mknod } from './mknod.ts';
import { nullProcedure } from './null.ts';
import { pathconf } from './pathconf.ts';
import { toRpcProcedure } from './procedure.ts';
import { read } from './read.ts';
import { readdir } from './readdir.ts';
import { readdirplus } from './readdirplus.ts';
import { readlink } from './readlink.ts';
import { remove } from './remove.ts';
import { rename } from './rename.ts';
import { rmdir } from './rmdir.ts';
import { setattr } from './setattr.ts';
import { symlink } from './symlink.ts';
import { write } from './write.ts';

/** NFS version 3 (RFC 1813): all 22 procedures, indexed by procedure number. */
export function createNfsProgram(ctx: NfsContext): RpcProgram {
  const procedures: Procedure[] = [
    nullProcedure,
    toRpcProcedure(getattr, ctx),
    toRpcProcedure(setattr, ctx),
    toRpcProcedure(lookup, ctx),
    toRpcProcedure(access, ctx),
    toRpcProcedure(readlink, ctx),
    toRpcProcedure(read, ctx),
    toRpcProcedure(write, ctx),
    toRpcProcedure(create, ctx),
    toRpcProcedure(mkdir, ctx),
    toRpcProcedure(symlink, ctx),
    toRpcProcedure(mknod, ctx),
    toRpcProcedure(remove, ctx),
    toRpcProcedure(rmdir, ctx),
    toRpcProcedure(rename, ctx),
    toRpcProcedure(link, ctx),
    toRpcProcedure(readdir, ctx),
    toRpcProcedure(readdirplus, ctx),
    toRpcProcedure(fsstat, ctx),
    toRpcProcedure(fsinfo, ctx),
    toRpcProcedure(pathconf, ctx),
    toRpcProcedure(commit, ctx),
  ];
  return { prog: NFS_PROGRAM, name: 'nfs', versions: new Map([[NFS_V3, procedures]]) };
}
