import { XdrWriter } from '../../xdr/writer.ts';
import { decodeRpcb, mayChange, type PortmapProcedure } from './procedure.ts';

/** RPCBPROC_UNSET: removes (prog, vers) for one netid, or for all when the netid is empty. */
export const rpcbUnset: PortmapProcedure = {
  name: 'UNSET',
  handler(r, call, reg) {
    const b = decodeRpcb(r);
    return new XdrWriter().bool(mayChange(call) && reg.unset(b.prog, b.vers, b.netid === '' ? undefined : b.netid));
  },
};
