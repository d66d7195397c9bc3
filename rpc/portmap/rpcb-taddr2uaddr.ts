import { XdrWriter } from '../../xdr/writer.ts';
import type { PortmapProcedure } from './procedure.ts';
import { toUaddr } from './uaddr.ts';

/** RPCBPROC_TADDR2UADDR: a netbuf holding a struct sockaddr_in as a universal address ('' otherwise). */
export const rpcbTaddr2uaddr: PortmapProcedure = {
  name: 'TADDR2UADDR',
  handler(r) {
    r.uint32();
    const sa = r.opaque(128);
    if (sa.length < 8 || sa.readUInt16LE(0) !== 2) return new XdrWriter().string('');
    return new XdrWriter().string(toUaddr(`${sa[4]}.${sa[5]}.${sa[6]}.${sa[7]}`, sa.readUInt16BE(2)));
  },
};
