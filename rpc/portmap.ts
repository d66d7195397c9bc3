/**
 * The portmapper (RFC 1833): program 100000, version 2 (portmap) and versions 3 and 4 (rpcbind), one
 * file per procedure under portmap/. CALLIT (v2 5, and v3/v4 INDIRECT/CALLIT) is not offered: an
 * indirect call is a traffic amplifier and no client here needs it.
 */
import type { Procedure, RpcProgram } from './program.ts';
import { nullProcedure } from './portmap/null.ts';
import { pmapDump } from './portmap/pmap-dump.ts';
import { pmapGetport } from './portmap/pmap-getport.ts';
import { pmapSet } from './portmap/pmap-set.ts';
import { pmapUnset } from './portmap/pmap-unset.ts';
import { toRpcProcedure, type PortmapProcedure } from './portmap/procedure.ts';
import type { PortmapRegistry } from './portmap/registry.ts';
import { rpcbDump } from './portmap/rpcb-dump.ts';
import { getaddr } from './portmap/rpcb-getaddr.ts';
import { rpcbGetaddrlist } from './portmap/rpcb-getaddrlist.ts';
import { rpcbGettime } from './portmap/rpcb-gettime.ts';
import { rpcbSet } from './portmap/rpcb-set.ts';
import { rpcbTaddr2uaddr } from './portmap/rpcb-taddr2uaddr.ts';
import { rpcbUaddr2taddr } from './portmap/rpcb-uaddr2taddr.ts';
import { rpcbUnset } from './portmap/rpcb-unset.ts';

export { PortmapRegistry, type Mapping } from './portmap/registry.ts';
export { IPPROTO_TCP, IPPROTO_UDP, parseUaddr, toUaddr, type NetId } from './portmap/uaddr.ts';

export const PMAP_PROG = 100000;
export const PMAP_PORT = 111;

export function createPortmapProgram(reg: PortmapRegistry): RpcProgram {
  const bind = (p: PortmapProcedure): Procedure => toRpcProcedure(p, reg);
  const nul = bind(nullProcedure);
  const v2: Procedure[] = [nul, bind(pmapSet), bind(pmapUnset), bind(pmapGetport), bind(pmapDump)];
  // rpcbind v3 and v4 share procedures 0–8; v4 adds GETVERSADDR (9) and GETADDRLIST (11), and its
  // GETADDR (3) falls back to any version of the program.
  const rpcb = (anyVersion: boolean): Procedure[] => {
    const v: Procedure[] = [nul, bind(rpcbSet), bind(rpcbUnset), bind(getaddr(anyVersion)), bind(rpcbDump)];
    v[6] = bind(rpcbGettime);
    v[7] = bind(rpcbUaddr2taddr);
    v[8] = bind(rpcbTaddr2uaddr);
    return v;
  };
  const v3 = rpcb(false);
  const v4 = rpcb(true);
  v4[9] = bind(getaddr(false));
  v4[11] = bind(rpcbGetaddrlist);
  return { prog: PMAP_PROG, name: 'portmapper', versions: new Map([[2, v2], [3, v3], [4, v4]]) };
}
