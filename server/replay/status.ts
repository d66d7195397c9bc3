/** Status names a fixture may expect: nfsstat3 and mountstat3, and the RPC-level outcomes. */
import * as mount from '../mount/constants.ts';
import * as nfs from '../nfs3/constants.ts';

/** Sorted by value: a module namespace's key order differs between loaders. */
function statusTable(mod: Record<string, unknown>, prefix: RegExp): [string, number][] {
  return Object.entries(mod)
    .filter((e): e is [string, number] => prefix.test(e[0]) && typeof e[1] === 'number')
    .sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]));
}

const NFS = statusTable(nfs, /^NFS3(_OK|ERR_)/);
const MOUNT = statusTable(mount, /^MNT3(_OK|ERR_)/);

/** accept_stat names a reply may carry instead of a procedure result (rpc/constants.ts). */
export const RPC_OUTCOMES = ['PROG_UNAVAIL', 'PROG_MISMATCH', 'PROC_UNAVAIL', 'GARBAGE_ARGS', 'SYSTEM_ERR', 'DENIED', 'VOID'] as const;

export const STATUS_NAMES: [string, ...string[]] = [...RPC_OUTCOMES, ...NFS.map((e) => e[0]), ...MOUNT.map((e) => e[0])];

export function statusName(program: 'nfs' | 'mount', status: number): string {
  const hit = (program === 'nfs' ? NFS : MOUNT).find((e) => e[1] === status);
  return hit ? hit[0] : `${program}-status-${status}`;
}
