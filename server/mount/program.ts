/**
 * MOUNT version 3 (RFC 1813 appendix I), and version 1 for DUMP and EXPORT. Version 1's MNT returns
 * a fixed 32-byte handle, which cannot carry ours (44 bytes): it stays PROC_UNAVAIL.
 */
import type { Procedure, RpcProgram } from '../../rpc/program.ts';
import type { NfsContext } from '../nfs3/context.ts';
import { MOUNT_PROGRAM, MOUNT_V1, MOUNT_V3 } from './constants.ts';
import { dump } from './dump.ts';
import { exportList } from './export.ts';
import { mnt } from './mnt.ts';
import { MountTable } from './mount-table.ts';
import { nullProcedure } from './null.ts';
import { toRpcProcedure, type MountProcedure } from './procedure.ts';
import { umnt } from './umnt.ts';
import { umntall } from './umntall.ts';

export interface MountProgramOptions {
  table?: MountTable;
}

export function createMountProgram(nfs: NfsContext, opts: MountProgramOptions = {}): RpcProgram {
  const ctx = { nfs, table: opts.table ?? new MountTable() };
  const bind = (p: MountProcedure): Procedure => toRpcProcedure(p, ctx);
  const p = { null: bind(nullProcedure), mnt: bind(mnt), dump: bind(dump), umnt: bind(umnt), umntall: bind(umntall), export: bind(exportList) };
  const v3: Procedure[] = [p.null, p.mnt, p.dump, p.umnt, p.umntall, p.export];
  // Version 1 has the same procedures except MNT's result; version 1 EXPORTALL (6) is EXPORT again.
  const v1: (Procedure | undefined)[] = [p.null, undefined, p.dump, p.umnt, p.umntall, p.export, p.export];
  return {
    prog: MOUNT_PROGRAM,
    name: 'mount',
    versions: new Map<number, ReadonlyArray<Procedure | undefined>>([
      [MOUNT_V1, v1],
      [MOUNT_V3, v3],
    ]),
  };
}
