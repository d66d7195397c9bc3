import { XdrWriter } from '../../xdr/writer.ts';
import type { MountProcedure } from './procedure.ts';

/** MOUNTPROC3_EXPORT: each export with its client specifications as groups (what `showmount -e` prints). */
export const exportList: MountProcedure = {
  name: 'EXPORT',
  handler(_r, _call, ctx) {
    const w = new XdrWriter();
    for (const e of ctx.nfs.exports) {
      w.bool(true).string(e.path);
      for (const rule of e.clients) w.bool(true).string(rule.spec);
      w.bool(false);
    }
    return w.bool(false);
  },
};
