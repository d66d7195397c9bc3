import { XdrWriter } from '../../xdr/writer.ts';
import { decodeRpcb, hostFor, type PortmapProcedure } from './procedure.ts';
import { toUaddr } from './uaddr.ts';

/**
 * RPCBPROC_GETADDR (any version of the program when the asked one is not registered: rpcbind v4)
 * and RPCBPROC_GETVERSADDR / v3 GETADDR (that version only): the universal address, '' if none.
 */
export function getaddr(anyVersion: boolean): PortmapProcedure {
  return {
    name: anyVersion ? 'GETADDR' : 'GETVERSADDR',
    handler(r, call, reg) {
      const b = decodeRpcb(r);
      const m = reg.find(b.prog, b.vers, b.netid) ?? (anyVersion ? reg.find(b.prog, null, b.netid) : undefined);
      return new XdrWriter().string(m ? toUaddr(hostFor(call, m.netid), m.port) : '');
    },
  };
}
