import { XdrWriter } from '../../xdr/writer.ts';
import type { MountProcedure } from './procedure.ts';

/** MOUNTPROC3_UMNTALL: every mount of the caller's host leaves the list. */
export const umntall: MountProcedure = {
  name: 'UMNTALL',
  handler(_r, call, ctx) {
    ctx.table.removeHost(call.remoteAddress);
    return new XdrWriter();
  },
};
