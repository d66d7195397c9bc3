import { XdrWriter } from '../../xdr/writer.ts';
import { decodePmap, mayChange, type PortmapProcedure } from './procedure.ts';
import { netidOf } from './uaddr.ts';

/** PMAPPROC_SET: registers (prog, vers, protocol) → port, unless already registered. */
export const pmapSet: PortmapProcedure = {
  name: 'SET',
  handler(r, call, reg) {
    const m = decodePmap(r);
    const netid = netidOf(m.prot);
    const ok = mayChange(call) && netid !== null && reg.set({ prog: m.prog, vers: m.vers, netid, port: m.port, owner: 'unknown' });
    return new XdrWriter().bool(ok);
  },
};
