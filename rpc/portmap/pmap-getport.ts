import { XdrWriter } from '../../xdr/writer.ts';
import { decodePmap, type PortmapProcedure } from './procedure.ts';
import { netidOf } from './uaddr.ts';

/** PMAPPROC_GETPORT: the port of (prog, vers, protocol), 0 if none. */
export const pmapGetport: PortmapProcedure = {
  name: 'GETPORT',
  handler(r, _call, reg) {
    const m = decodePmap(r);
    const netid = netidOf(m.prot);
    return new XdrWriter().uint32(netid ? (reg.find(m.prog, m.vers, netid)?.port ?? 0) : 0);
  },
};
