import { XdrWriter } from '../../xdr/writer.ts';
import { decodePmap, mayChange, type PortmapProcedure } from './procedure.ts';

/** PMAPPROC_UNSET: removes every protocol of (prog, vers). */
export const pmapUnset: PortmapProcedure = {
  name: 'UNSET',
  handler(r, call, reg) {
    const m = decodePmap(r);
    return new XdrWriter().bool(mayChange(call) && reg.unset(m.prog, m.vers));
  },
};
