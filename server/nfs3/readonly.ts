import { NFS3ERR_ROFS } from './constants.ts';
import { NfsError } from './errors.ts';
import type { NfsCall } from './procedure.ts';
import type { nfs_fh3 } from './xdr.ts';

/**
 * Until the write procedures land every modifying call answers NFS3ERR_ROFS, after the handle
 * checks (a bad or stale handle is still reported as such).
 */
export async function refuseWrite(call: NfsCall, fh: nfs_fh3, op: string): Promise<never> {
  const n = await call.node(fh);
  throw new NfsError(NFS3ERR_ROFS, { op, path: n.rel });
}
