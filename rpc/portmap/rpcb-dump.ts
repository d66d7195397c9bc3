import { XdrWriter } from '../../xdr/writer.ts';
import { hostFor, type PortmapProcedure } from './procedure.ts';
import { toUaddr } from './uaddr.ts';

/** RPCBPROC_DUMP: every mapping with its netid, universal address and owner. */
export const rpcbDump: PortmapProcedure = {
  name: 'DUMP',
  handler(_r, call, reg) {
    const w = new XdrWriter();
    for (const m of reg.all()) {
      w.bool(true).uint32(m.prog).uint32(m.vers).string(m.netid).string(toUaddr(hostFor(call, m.netid), m.port)).string(m.owner);
    }
    return w.bool(false);
  },
};
