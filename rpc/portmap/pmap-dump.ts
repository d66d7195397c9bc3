import { XdrWriter } from '../../xdr/writer.ts';
import type { PortmapProcedure } from './procedure.ts';
import { protoOf } from './uaddr.ts';

/** PMAPPROC_DUMP: every IPv4 mapping (version 2 has no netids for IPv6). */
export const pmapDump: PortmapProcedure = {
  name: 'DUMP',
  handler(_r, _call, reg) {
    const w = new XdrWriter();
    for (const m of reg.all()) {
      if (m.netid.endsWith('6')) continue;
      w.bool(true).uint32(m.prog).uint32(m.vers).uint32(protoOf(m.netid)).uint32(m.port);
    }
    return w.bool(false);
  },
};
