import net from 'node:net';
import { XdrWriter } from '../../xdr/writer.ts';
import { RPCB_MAX_STRING, type PortmapProcedure } from './procedure.ts';
import { parseUaddr } from './uaddr.ts';

/** RPCBPROC_UADDR2TADDR: a universal address as a netbuf holding a struct sockaddr_in (IPv4 only). */
export const rpcbUaddr2taddr: PortmapProcedure = {
  name: 'UADDR2TADDR',
  handler(r) {
    const p = parseUaddr(r.string(RPCB_MAX_STRING));
    // netbuf { maxlen; buf<> } holding a struct sockaddr_in in network order; empty when unparseable.
    if (!p || !net.isIPv4(p.host)) return new XdrWriter().uint32(0).opaque(Buffer.alloc(0));
    const sa = Buffer.alloc(16);
    sa.writeUInt16LE(2, 0);
    sa.writeUInt16BE(p.port, 2);
    p.host.split('.').forEach((o, i) => sa.writeUInt8(Number(o), 4 + i));
    return new XdrWriter().uint32(sa.length).opaque(sa);
  },
};
