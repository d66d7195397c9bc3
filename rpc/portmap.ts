import net from 'node:net';
import type { XdrReader } from '../xdr/reader.ts';
import { XdrWriter } from '../xdr/writer.ts';
import type { CallContext, Procedure, RpcProgram } from './program.ts';

/** RFC 1833: the portmapper (version 2) and rpcbind (versions 3 and 4) share program 100000. */
export const PMAP_PROG = 100000;
export const PMAP_PORT = 111;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
/** RFC 1833 caps the strings of an rpcb; netids and owners are short in practice. */
const RPCB_MAX_STRING = 1024;

export type NetId = 'tcp' | 'udp' | 'tcp6' | 'udp6';

export interface Mapping {
  prog: number;
  vers: number;
  netid: NetId;
  port: number;
  owner: string;
}

const protoOf = (netid: string): number => (netid.startsWith('tcp') ? IPPROTO_TCP : IPPROTO_UDP);
const netidOf = (prot: number): NetId | null => (prot === IPPROTO_TCP ? 'tcp' : prot === IPPROTO_UDP ? 'udp' : null);

/** RFC 1833 §2 universal address: "h1.h2.h3.h4.p1.p2" (IPv4) or "<ipv6>.p1.p2". */
export function toUaddr(host: string, port: number): string {
  return `${host}.${port >> 8}.${port & 0xff}`;
}

export function parseUaddr(uaddr: string): { host: string; port: number } | null {
  const m = /^(.*)\.(\d{1,3})\.(\d{1,3})$/.exec(uaddr);
  if (!m || !net.isIP(m[1]!)) return null;
  const hi = Number(m[2]);
  const lo = Number(m[3]);
  if (hi > 255 || lo > 255) return null;
  return { host: m[1]!, port: (hi << 8) | lo };
}

/** The portmapper's table. Mutations over the network are only accepted from loopback. */
export class PortmapRegistry {
  private readonly maps: Mapping[] = [];

  set(m: Mapping): boolean {
    if (this.maps.some((x) => x.prog === m.prog && x.vers === m.vers && x.netid === m.netid)) return false;
    this.maps.push(m);
    return true;
  }

  /** Removes every netid of (prog, vers) when `netid` is undefined (rpcbind UNSET semantics). */
  unset(prog: number, vers: number, netid?: string): boolean {
    let removed = false;
    for (let i = this.maps.length - 1; i >= 0; i--) {
      const x = this.maps[i]!;
      if (x.prog === prog && x.vers === vers && (netid === undefined || x.netid === netid)) {
        this.maps.splice(i, 1);
        removed = true;
      }
    }
    return removed;
  }

  find(prog: number, vers: number | null, netid: string): Mapping | undefined {
    return this.maps.find((x) => x.prog === prog && (vers === null || x.vers === vers) && x.netid === netid);
  }

  all(): readonly Mapping[] {
    return this.maps;
  }
}

interface Rpcb {
  prog: number;
  vers: number;
  netid: string;
  addr: string;
  owner: string;
}

const readRpcb = (r: XdrReader): Rpcb => ({
  prog: r.uint32(),
  vers: r.uint32(),
  netid: r.string(RPCB_MAX_STRING),
  addr: r.string(RPCB_MAX_STRING),
  owner: r.string(RPCB_MAX_STRING),
});

const readPmap = (r: XdrReader) => ({ prog: r.uint32(), vers: r.uint32(), prot: r.uint32(), port: r.uint32() });

function isLoopback(addr: string): boolean {
  return addr === '::1' || addr.startsWith('127.') || addr.startsWith('::ffff:127.');
}

/** The address a client reached us on, for universal addresses (clients only use the port of it). */
function hostFor(ctx: CallContext, netid: string): string {
  const local = ctx.localAddress?.replace(/^::ffff:/, '');
  if (local && local !== '0.0.0.0' && local !== '::') return local;
  return netid.endsWith('6') ? '::1' : '127.0.0.1';
}

export function createPortmapProgram(reg: PortmapRegistry): RpcProgram {
  const nul: Procedure = { name: 'NULL', handler: () => new XdrWriter() };
  const mayChange = (ctx: CallContext) => isLoopback(ctx.remoteAddress);

  const v2: Procedure[] = [
    nul,
    {
      name: 'SET',
      handler: (a, ctx) => {
        const m = readPmap(a);
        const netid = netidOf(m.prot);
        const ok = mayChange(ctx) && netid !== null && reg.set({ prog: m.prog, vers: m.vers, netid, port: m.port, owner: 'unknown' });
        return new XdrWriter().bool(ok);
      },
    },
    {
      name: 'UNSET',
      handler: (a, ctx) => {
        const m = readPmap(a);
        return new XdrWriter().bool(mayChange(ctx) && reg.unset(m.prog, m.vers));
      },
    },
    {
      name: 'GETPORT',
      handler: (a) => {
        const m = readPmap(a);
        const netid = netidOf(m.prot);
        return new XdrWriter().uint32(netid ? (reg.find(m.prog, m.vers, netid)?.port ?? 0) : 0);
      },
    },
    {
      name: 'DUMP',
      handler: () => {
        const w = new XdrWriter();
        for (const m of reg.all()) {
          if (m.netid.endsWith('6')) continue;
          w.bool(true).uint32(m.prog).uint32(m.vers).uint32(protoOf(m.netid)).uint32(m.port);
        }
        return w.bool(false);
      },
    },
    // CALLIT (5) is not offered: an indirect call is a traffic amplifier and no client here needs it.
  ];

  const rpcbSet: Procedure = {
    name: 'SET',
    handler: (a, ctx) => {
      const b = readRpcb(a);
      const addr = parseUaddr(b.addr);
      const netid = (['tcp', 'udp', 'tcp6', 'udp6'] as const).find((n) => n === b.netid);
      const ok = mayChange(ctx) && addr !== null && netid !== undefined && reg.set({ prog: b.prog, vers: b.vers, netid, port: addr.port, owner: b.owner });
      return new XdrWriter().bool(ok);
    },
  };
  const rpcbUnset: Procedure = {
    name: 'UNSET',
    handler: (a, ctx) => {
      const b = readRpcb(a);
      return new XdrWriter().bool(mayChange(ctx) && reg.unset(b.prog, b.vers, b.netid === '' ? undefined : b.netid));
    },
  };
  const getaddr = (anyVersion: boolean): Procedure => ({
    name: anyVersion ? 'GETADDR' : 'GETVERSADDR',
    handler: (a, ctx) => {
      const b = readRpcb(a);
      // rpcbind v4 GETADDR falls back to any version of the program; GETVERSADDR and v3 do not.
      const m = reg.find(b.prog, b.vers, b.netid) ?? (anyVersion ? reg.find(b.prog, null, b.netid) : undefined);
      return new XdrWriter().string(m ? toUaddr(hostFor(ctx, m.netid), m.port) : '');
    },
  });
  const rpcbDump: Procedure = {
    name: 'DUMP',
    handler: (_a, ctx) => {
      const w = new XdrWriter();
      for (const m of reg.all()) {
        w.bool(true).uint32(m.prog).uint32(m.vers).string(m.netid).string(toUaddr(hostFor(ctx, m.netid), m.port)).string(m.owner);
      }
      return w.bool(false);
    },
  };
  const gettime: Procedure = { name: 'GETTIME', handler: () => new XdrWriter().uint32(Math.floor(Date.now() / 1000)) };
  const uaddr2taddr: Procedure = {
    name: 'UADDR2TADDR',
    handler: (a) => {
      const p = parseUaddr(a.string(RPCB_MAX_STRING));
      // netbuf { maxlen; buf<> } holding a struct sockaddr_in in network order; empty when unparseable.
      if (!p || !net.isIPv4(p.host)) return new XdrWriter().uint32(0).opaque(Buffer.alloc(0));
      const sa = Buffer.alloc(16);
      sa.writeUInt16LE(2, 0);
      sa.writeUInt16BE(p.port, 2);
      p.host.split('.').forEach((o, i) => sa.writeUInt8(Number(o), 4 + i));
      return new XdrWriter().uint32(sa.length).opaque(sa);
    },
  };
  const taddr2uaddr: Procedure = {
    name: 'TADDR2UADDR',
    handler: (a) => {
      a.uint32();
      const sa = a.opaque(128);
      if (sa.length < 8 || sa.readUInt16LE(0) !== 2) return new XdrWriter().string('');
      return new XdrWriter().string(toUaddr(`${sa[4]}.${sa[5]}.${sa[6]}.${sa[7]}`, sa.readUInt16BE(2)));
    },
  };
  const getaddrlist: Procedure = {
    name: 'GETADDRLIST',
    handler: (a, ctx) => {
      const b = readRpcb(a);
      const w = new XdrWriter();
      for (const m of reg.all()) {
        if (m.prog !== b.prog || m.vers !== b.vers) continue;
        // rpcb_entry: maddr, netid, semantics (NC_TPI_COTS_ORD=3 for tcp, NC_TPI_CLTS=1 for udp), protofmly, proto.
        const tcp = m.netid.startsWith('tcp');
        w.bool(true).string(toUaddr(hostFor(ctx, m.netid), m.port)).string(m.netid).uint32(tcp ? 3 : 1);
        w.string(m.netid.endsWith('6') ? 'inet6' : 'inet').string(tcp ? 'tcp' : 'udp');
      }
      return w.bool(false);
    },
  };

  const v3: Procedure[] = [nul, rpcbSet, rpcbUnset, getaddr(false), rpcbDump];
  v3[6] = gettime;
  v3[7] = uaddr2taddr;
  v3[8] = taddr2uaddr;
  const v4: Procedure[] = [nul, rpcbSet, rpcbUnset, getaddr(true), rpcbDump];
  v4[6] = gettime;
  v4[7] = uaddr2taddr;
  v4[8] = taddr2uaddr;
  v4[9] = getaddr(false);
  v4[11] = getaddrlist;

  return { prog: PMAP_PROG, name: 'portmapper', versions: new Map([[2, v2], [3, v3], [4, v4]]) };
}
