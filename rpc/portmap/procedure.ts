/**
 * The one handler shape of the portmapper's procedures (versions 2, 3 and 4 of program 100000,
 * RFC 1833), one file each, and what they share: the argument structures and who may change the table.
 */
import type { XdrReader } from '../../xdr/reader.ts';
import type { XdrWriter } from '../../xdr/writer.ts';
import type { CallContext, Procedure } from '../program.ts';
import type { PortmapRegistry } from './registry.ts';

export interface PortmapProcedure {
  name: string;
  handler(r: XdrReader, call: CallContext, reg: PortmapRegistry): XdrWriter;
}

export function toRpcProcedure(p: PortmapProcedure, reg: PortmapRegistry): Procedure {
  return { name: p.name, handler: (r, call) => p.handler(r, call, reg) };
}

/** RFC 1833 caps the strings of an rpcb; netids and owners are short in practice. */
export const RPCB_MAX_STRING = 1024;

/** RFC 1833 rpcb: the argument of rpcbind's SET, UNSET, GETADDR… */
export interface rpcb {
  prog: number;
  vers: number;
  netid: string;
  addr: string;
  owner: string;
}

export const decodeRpcb = (r: XdrReader): rpcb => ({
  prog: r.uint32(),
  vers: r.uint32(),
  netid: r.string(RPCB_MAX_STRING),
  addr: r.string(RPCB_MAX_STRING),
  owner: r.string(RPCB_MAX_STRING),
});

/** RFC 1833 pmap: the argument of portmapper v2's SET, UNSET and GETPORT. */
export const decodePmap = (r: XdrReader) => ({ prog: r.uint32(), vers: r.uint32(), prot: r.uint32(), port: r.uint32() });

/** The table changes only for callers on this machine (as rpcbind without its -i). */
export function mayChange(call: CallContext): boolean {
  const a = call.remoteAddress;
  return a === '::1' || a.startsWith('127.') || a.startsWith('::ffff:127.');
}

/** The address a client reached us on, for universal addresses (clients only use the port of it). */
export function hostFor(call: CallContext, netid: string): string {
  const local = call.localAddress?.replace(/^::ffff:/, '');
  if (local && local !== '0.0.0.0' && local !== '::') return local;
  return netid.endsWith('6') ? '::1' : '127.0.0.1';
}
