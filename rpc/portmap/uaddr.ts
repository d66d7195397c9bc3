import net from 'node:net';

export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

export type NetId = 'tcp' | 'udp' | 'tcp6' | 'udp6';

export const protoOf = (netid: string): number => (netid.startsWith('tcp') ? IPPROTO_TCP : IPPROTO_UDP);
export const netidOf = (prot: number): NetId | null => (prot === IPPROTO_TCP ? 'tcp' : prot === IPPROTO_UDP ? 'udp' : null);

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
