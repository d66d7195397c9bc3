import { XdrWriter } from '../../xdr/writer.ts';
import { decodeRpcb, hostFor, type PortmapProcedure } from './procedure.ts';
import { toUaddr } from './uaddr.ts';

/** RPCBPROC_GETADDRLIST (v4): every address of (prog, vers), as rpcb_entry records. */
export const rpcbGetaddrlist: PortmapProcedure = {
  name: 'GETADDRLIST',
  handler(r, call, reg) {
    const b = decodeRpcb(r);
    const w = new XdrWriter();
    for (const m of reg.all()) {
      if (m.prog !== b.prog || m.vers !== b.vers) continue;
      // rpcb_entry: maddr, netid, semantics (NC_TPI_COTS_ORD=3 for tcp, NC_TPI_CLTS=1 for udp), protofmly, proto.
      const tcp = m.netid.startsWith('tcp');
      w.bool(true).string(toUaddr(hostFor(call, m.netid), m.port)).string(m.netid).uint32(tcp ? 3 : 1);
      w.string(m.netid.endsWith('6') ? 'inet6' : 'inet').string(tcp ? 'tcp' : 'udp');
    }
    return w.bool(false);
  },
};
