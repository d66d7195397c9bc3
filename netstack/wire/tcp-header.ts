/** The TCP header (RFC 9293): parse with checksum and option checks, and build. */
import { inetChecksum } from '../pcap.ts';
import type { Ipv4 } from './addr.ts';
import { IPPROTO_TCP, pseudoHeader } from './ipv4.ts';

export const TCP_HLEN = 20;
export const TCPHDR_FIN = 0x01;
export const TCPHDR_SYN = 0x02;
export const TCPHDR_RST = 0x04;
export const TCPHDR_PSH = 0x08;
export const TCPHDR_ACK = 0x10;
export const TCPHDR_URG = 0x20;

export const TCPOPT_EOL = 0;
export const TCPOPT_NOP = 1;
export const TCPOPT_MSS = 2;
export const TCPOPT_WINDOW = 3;
export const TCPOPT_SACK_PERM = 4;
export const TCPOPT_TIMESTAMP = 8;
/** Largest window scale shift (RFC 7323 2.3). */
export const TCP_MAX_WSCALE = 14;

export interface TcpOptions {
  mss: number | null;
  wscale: number | null;
  sackPerm: boolean;
}

export interface TcpSegment {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  /** The window field as sent (unscaled). */
  window: number;
  options: TcpOptions;
  payload: Buffer;
}

export type TcpParse = { ok: true; seg: TcpSegment } | { ok: false; reason: 'tcp-truncated' | 'tcp-header-length' | 'tcp-checksum' | 'tcp-options' };

/** tcp_parse_options: options are read on any segment; a malformed list drops the segment. */
function parseOptions(o: Buffer): TcpOptions | null {
  const out: TcpOptions = { mss: null, wscale: null, sackPerm: false };
  let i = 0;
  while (i < o.length) {
    const kind = o[i]!;
    if (kind === TCPOPT_EOL) break;
    if (kind === TCPOPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= o.length) return null;
    const len = o[i + 1]!;
    if (len < 2 || i + len > o.length) return null;
    if (kind === TCPOPT_MSS && len === 4) out.mss = o.readUInt16BE(i + 2);
    else if (kind === TCPOPT_WINDOW && len === 3) out.wscale = Math.min(o[i + 2]!, TCP_MAX_WSCALE);
    else if (kind === TCPOPT_SACK_PERM && len === 2) out.sackPerm = true;
    i += len;
  }
  return out;
}

export function parseTcp(b: Buffer, src: Ipv4, dst: Ipv4): TcpParse {
  if (b.length < TCP_HLEN) return { ok: false, reason: 'tcp-truncated' };
  const doff = (b[12]! >> 4) * 4;
  if (doff < TCP_HLEN || doff > b.length) return { ok: false, reason: 'tcp-header-length' };
  if (inetChecksum(pseudoHeader(src, dst, IPPROTO_TCP, b.length), b) !== 0) return { ok: false, reason: 'tcp-checksum' };
  const options = parseOptions(b.subarray(TCP_HLEN, doff));
  if (!options) return { ok: false, reason: 'tcp-options' };
  return {
    ok: true,
    seg: {
      srcPort: b.readUInt16BE(0),
      dstPort: b.readUInt16BE(2),
      seq: b.readUInt32BE(4),
      ack: b.readUInt32BE(8),
      flags: b[13]!,
      window: b.readUInt16BE(14),
      options,
      payload: b.subarray(doff),
    },
  };
}

export interface TcpOut {
  src: Ipv4;
  dst: Ipv4;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  /** SYN options: MSS and (when the peer offered it) window scale. */
  mss?: number;
  wscale?: number;
}

/** SYN options, padded to 32-bit words: MSS, then NOP + window scale. */
function synOptions(o: TcpOut): Buffer {
  const parts: number[] = [];
  if (o.mss !== undefined) parts.push(TCPOPT_MSS, 4, o.mss >> 8, o.mss & 0xff);
  if (o.wscale !== undefined) parts.push(TCPOPT_NOP, TCPOPT_WINDOW, 3, o.wscale);
  return Buffer.from(parts);
}

/**
 * The TCP segment (header + payload) for `o`, its checksum computed over the payload bytes as
 * they are at this moment (the device queue's exit).
 */
export function buildTcp(o: TcpOut, payload: Buffer | null): Buffer {
  const opts = synOptions(o);
  const hlen = TCP_HLEN + opts.length;
  const b = Buffer.alloc(hlen + (payload?.length ?? 0));
  b.writeUInt16BE(o.srcPort, 0);
  b.writeUInt16BE(o.dstPort, 2);
  b.writeUInt32BE(o.seq >>> 0, 4);
  b.writeUInt32BE(o.ack >>> 0, 8);
  b[12] = (hlen / 4) << 4;
  b[13] = o.flags;
  b.writeUInt16BE(Math.max(0, Math.min(0xffff, o.window)), 14);
  opts.copy(b, TCP_HLEN);
  payload?.copy(b, hlen);
  b.writeUInt16BE(inetChecksum(pseudoHeader(o.src, o.dst, IPPROTO_TCP, b.length), b), 16);
  return b;
}
