/**
 * IPv4 (RFC 791): header parse with every check ip_rcv_core makes (version, IHL, total length,
 * header checksum), header build, and fragmentation of an outgoing datagram (ip_fragment).
 */
import { inetChecksum } from '../pcap.ts';
import type { Ipv4 } from './addr.ts';

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IP_HLEN = 20;
export const IP_DF = 0x4000;
export const IP_MF = 0x2000;
export const IP_OFFSET = 0x1fff;
/** The TTL of what we send (sysctl_ip_default_ttl). */
export const IPDEFTTL = 64;

export interface Ipv4Header {
  ihl: number;
  tos: number;
  totalLen: number;
  id: number;
  df: boolean;
  mf: boolean;
  /** Fragment offset in bytes. */
  fragOff: number;
  ttl: number;
  proto: number;
  src: Ipv4;
  dst: Ipv4;
  /** The payload, trimmed to the total length (Ethernet padding dropped). */
  payload: Buffer;
}

/** Why an IPv4 packet was dropped on input (each one a counter). */
export type Ipv4Drop = 'ip-truncated' | 'ip-version' | 'ip-header-length' | 'ip-total-length' | 'ip-checksum' | 'ip-options' | 'ip-ttl';

export type Ipv4Parse = { ok: true; hdr: Ipv4Header } | { ok: false; reason: Ipv4Drop };

/**
 * Parses and checks an IPv4 packet. IP options are refused: nothing we serve needs them, and a
 * host that does not forward has no use for source routes or record-route (a counted drop).
 */
export function parseIpv4Packet(b: Buffer): Ipv4Parse {
  if (b.length < IP_HLEN) return { ok: false, reason: 'ip-truncated' };
  if (b[0]! >> 4 !== 4) return { ok: false, reason: 'ip-version' };
  const ihl = (b[0]! & 15) * 4;
  if (ihl < IP_HLEN || ihl > b.length) return { ok: false, reason: 'ip-header-length' };
  const totalLen = b.readUInt16BE(2);
  if (totalLen < ihl || totalLen > b.length) return { ok: false, reason: 'ip-total-length' };
  if (inetChecksum(b.subarray(0, ihl)) !== 0) return { ok: false, reason: 'ip-checksum' };
  if (ihl !== IP_HLEN) return { ok: false, reason: 'ip-options' };
  const ttl = b[8]!;
  if (ttl === 0) return { ok: false, reason: 'ip-ttl' };
  const frag = b.readUInt16BE(6);
  return {
    ok: true,
    hdr: {
      ihl,
      tos: b[1]!,
      totalLen,
      id: b.readUInt16BE(4),
      df: (frag & IP_DF) !== 0,
      mf: (frag & IP_MF) !== 0,
      fragOff: (frag & IP_OFFSET) * 8,
      ttl,
      proto: b[9]!,
      src: b.readUInt32BE(12),
      dst: b.readUInt32BE(16),
      payload: b.subarray(ihl, totalLen),
    },
  };
}

export interface Ipv4Out {
  src: Ipv4;
  dst: Ipv4;
  proto: number;
  id: number;
  df: boolean;
  mf?: boolean;
  fragOff?: number;
  ttl?: number;
  payloadLen: number;
}

/** Writes a 20-byte IPv4 header with its checksum at `at`; returns where the payload starts. */
export function writeIpv4(b: Buffer, at: number, h: Ipv4Out): number {
  b[at] = 0x45;
  b[at + 1] = 0;
  b.writeUInt16BE(IP_HLEN + h.payloadLen, at + 2);
  b.writeUInt16BE(h.id & 0xffff, at + 4);
  b.writeUInt16BE((h.df ? IP_DF : 0) | (h.mf ? IP_MF : 0) | ((h.fragOff ?? 0) >> 3), at + 6);
  b[at + 8] = h.ttl ?? IPDEFTTL;
  b[at + 9] = h.proto;
  b.writeUInt16BE(0, at + 10);
  b.writeUInt32BE(h.src >>> 0, at + 12);
  b.writeUInt32BE(h.dst >>> 0, at + 16);
  b.writeUInt16BE(inetChecksum(b.subarray(at, at + IP_HLEN)), at + 10);
  return at + IP_HLEN;
}

/** The IPv4 pseudo-header that TCP and UDP checksums cover (RFC 793, RFC 768). */
export function pseudoHeader(src: Ipv4, dst: Ipv4, proto: number, l4Len: number): Buffer {
  const p = Buffer.alloc(12);
  p.writeUInt32BE(src >>> 0, 0);
  p.writeUInt32BE(dst >>> 0, 4);
  p[9] = proto;
  p.writeUInt16BE(l4Len, 10);
  return p;
}

/**
 * ip_fragment: the byte ranges of a `len`-byte payload that fit an MTU, every one but the last
 * a multiple of 8 bytes. One range when it fits whole.
 */
export function fragmentRanges(len: number, mtu: number): { off: number; len: number; mf: boolean }[] {
  const max = (mtu - IP_HLEN) & ~7;
  if (len + IP_HLEN <= mtu) return [{ off: 0, len, mf: false }];
  const out: { off: number; len: number; mf: boolean }[] = [];
  for (let off = 0; off < len; off += max) out.push({ off, len: Math.min(max, len - off), mf: off + max < len });
  return out;
}
