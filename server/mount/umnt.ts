import { XdrWriter } from '../../xdr/writer.ts';
import { normalizeExportPath } from '../exports/path.ts';
import { MNTPATHLEN } from './constants.ts';
import type { MountProcedure } from './procedure.ts';

/** MOUNTPROC3_UMNT: the caller forgets one mount; the list forgets it too (advisory, as everywhere). */
export const umnt: MountProcedure = {
  name: 'UMNT',
  handler(r, call, ctx) {
    const dirpath = r.string(MNTPATHLEN);
    ctx.table.remove({ hostname: call.remoteAddress, directory: normalizeExportPath(dirpath) });
    return new XdrWriter();
  },
};
