import { XdrWriter } from '../../xdr/writer.ts';
import { decodeRpcb, mayChange, type PortmapProcedure } from './procedure.ts';
import { parseUaddr } from './uaddr.ts';

const NETIDS = ['tcp', 'udp', 'tcp6', 'udp6'] as const;

/** RPCBPROC_SET: registers (prog, vers, netid) → universal address, unless already registered. */
export const rpcbSet: PortmapProcedure = {
  name: 'SET',
  handler(r, call, reg) {
    const b = decodeRpcb(r);
    const addr = parseUaddr(b.addr);
    const netid = NETIDS.find((n) => n === b.netid);
    const ok = mayChange(call) && addr !== null && netid !== undefined && reg.set({ prog: b.prog, vers: b.vers, netid, port: addr.port, owner: b.owner });
    return new XdrWriter().bool(ok);
  },
};
