/** The procedures a fixture may call, by program, with their numbers (RFC 1813 §3 and appendix I). */
import { MOUNT_PROGRAM, MOUNT_V3, MOUNTPROC3 } from '../mount/constants.ts';
import { NFS_PROGRAM, NFS_V3, NFSPROC3 } from '../nfs3/constants.ts';

export const PROGRAMS = {
  nfs: { prog: NFS_PROGRAM, vers: NFS_V3, procs: NFSPROC3 as Record<string, number> },
  mount: { prog: MOUNT_PROGRAM, vers: MOUNT_V3, procs: MOUNTPROC3 as Record<string, number> },
} as const;

export type ProgramName = keyof typeof PROGRAMS;

export const NFS_PROC_NAMES = Object.keys(NFSPROC3) as (keyof typeof NFSPROC3)[];
export const MOUNT_PROC_NAMES = Object.keys(MOUNTPROC3) as (keyof typeof MOUNTPROC3)[];

/** Procedure name by number, per program. */
export function procName(program: ProgramName, proc: number): string | undefined {
  for (const [name, n] of Object.entries(PROGRAMS[program].procs)) if (n === proc) return name;
  return undefined;
}
