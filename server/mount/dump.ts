import { XdrWriter } from '../../xdr/writer.ts';
import type { MountProcedure } from './procedure.ts';

/** MOUNTPROC3_DUMP: the mount list (what `showmount -a` prints), as this server remembers it. */
export const dump: MountProcedure = {
  name: 'DUMP',
  handler(_r, _call, ctx) {
    const w = new XdrWriter();
    for (const e of ctx.table.list()) w.bool(true).string(e.hostname).string(e.directory);
    return w.bool(false);
  },
};
