/** ICMP (RFC 792): echo request → reply, and destination unreachable for a port nobody serves. */
import { inetChecksum } from '../pcap.ts';

export const ICMP_ECHOREPLY = 0;
export const ICMP_DEST_UNREACH = 3;
export const ICMP_ECHO = 8;
export const ICMP_PORT_UNREACH = 3;
/** What an error quotes of the offending datagram: its IP header and the first 8 bytes after it. */
export const ICMP_QUOTE = 20 + 8;

export interface IcmpMessage {
  type: number;
  code: number;
  /** Everything after the type, code and checksum. */
  rest: Buffer;
}

export type IcmpParse = { ok: true; msg: IcmpMessage } | { ok: false; reason: 'icmp-truncated' | 'icmp-checksum' };

export function parseIcmp(b: Buffer): IcmpParse {
  if (b.length < 8) return { ok: false, reason: 'icmp-truncated' };
  if (inetChecksum(b) !== 0) return { ok: false, reason: 'icmp-checksum' };
  return { ok: true, msg: { type: b[0]!, code: b[1]!, rest: b.subarray(4) } };
}

export function buildIcmp(type: number, code: number, rest: Buffer): Buffer {
  const b = Buffer.alloc(4 + rest.length);
  b[0] = type;
  b[1] = code;
  rest.copy(b, 4);
  b.writeUInt16BE(inetChecksum(b), 2);
  return b;
}

/** icmp_echo: the reply carries the request's identifier, sequence and data. */
export function echoReply(request: IcmpMessage): Buffer {
  return buildIcmp(ICMP_ECHOREPLY, 0, request.rest);
}

/** Port unreachable quoting `ipPacket` (its header and 8 bytes of transport header). */
export function portUnreachable(ipPacket: Buffer): Buffer {
  const rest = Buffer.alloc(4 + Math.min(ipPacket.length, ICMP_QUOTE));
  ipPacket.copy(rest, 4, 0, Math.min(ipPacket.length, ICMP_QUOTE));
  return buildIcmp(ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, rest);
}
