/** UDP (RFC 768): header parse with length and checksum checks, and datagram build. */
import { inetChecksum } from '../pcap.ts';
import type { Ipv4 } from './addr.ts';
import { IPPROTO_UDP, pseudoHeader } from './ipv4.ts';

export const UDP_HLEN = 8;

export interface UdpDatagram {
  srcPort: number;
  dstPort: number;
  payload: Buffer;
}

export type UdpParse = { ok: true; dgram: UdpDatagram } | { ok: false; reason: 'udp-truncated' | 'udp-length' | 'udp-checksum' };

/** `b` is the IP payload; a zero checksum means the sender computed none (legal over IPv4). */
export function parseUdp(b: Buffer, src: Ipv4, dst: Ipv4): UdpParse {
  if (b.length < UDP_HLEN) return { ok: false, reason: 'udp-truncated' };
  const len = b.readUInt16BE(4);
  if (len < UDP_HLEN || len > b.length) return { ok: false, reason: 'udp-length' };
  const d = b.subarray(0, len);
  if (d.readUInt16BE(6) !== 0 && inetChecksum(pseudoHeader(src, dst, IPPROTO_UDP, len), d) !== 0) return { ok: false, reason: 'udp-checksum' };
  return { ok: true, dgram: { srcPort: d.readUInt16BE(0), dstPort: d.readUInt16BE(2), payload: d.subarray(UDP_HLEN) } };
}

/** A UDP datagram (header + payload) with its checksum over the payload as it is now. */
export function buildUdp(src: Ipv4, dst: Ipv4, srcPort: number, dstPort: number, payload: Buffer): Buffer {
  const b = Buffer.alloc(UDP_HLEN + payload.length);
  b.writeUInt16BE(srcPort, 0);
  b.writeUInt16BE(dstPort, 2);
  b.writeUInt16BE(b.length, 4);
  payload.copy(b, UDP_HLEN);
  const sum = inetChecksum(pseudoHeader(src, dst, IPPROTO_UDP, b.length), b);
  // A computed zero is sent as all ones (zero means "no checksum").
  b.writeUInt16BE(sum === 0 ? 0xffff : sum, 6);
  return b;
}
