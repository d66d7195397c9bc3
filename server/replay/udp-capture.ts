/**
 * UDP replies in the replay's capture. The netstack writes TCP flows only; a datagram is written
 * here, as an Ethernet/IPv4/UDP frame from the server to the client, when it reaches the client.
 */
import type { PcapWriter } from '../../netstack/pcap.ts';

const ETH_HLEN = 14;
const IP_HLEN = 20;
const UDP_HLEN = 8;
const ETHERTYPE_IPV4 = 0x0800;
const IPPROTO_UDP = 17;
const IP_TTL = 64;
/** Don't Fragment: every datagram is one frame here, whatever its size (the IP length field allows 64 KiB). */
const IP_DF = 0x4000;
const SERVER_MAC = Buffer.from([0x02, 0, 0, 0, 0, 1]);
const CLIENT_MAC = Buffer.from([0x02, 0, 0, 0, 0, 2]);

/** RFC 1071 ones' complement sum of 16-bit words, folded and inverted. */
function checksum(...parts: Buffer[]): number {
  let sum = 0;
  for (const b of parts) {
    const n = b.length & ~1;
    for (let i = 0; i < n; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
    if (b.length & 1) sum += b[b.length - 1]! << 8;
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

function ipv4(a: string): Buffer {
  return Buffer.from(a.split('.').map(Number));
}

export class UdpCapture {
  private ipId = 1;

  constructor(private readonly w: PcapWriter) {}

  datagram(t: number, from: { address: string; port: number }, to: { address: string; port: number }, payload: Buffer): void {
    const udpLen = UDP_HLEN + payload.length;
    const frame = Buffer.alloc(ETH_HLEN + IP_HLEN + udpLen);
    CLIENT_MAC.copy(frame, 0);
    SERVER_MAC.copy(frame, 6);
    frame.writeUInt16BE(ETHERTYPE_IPV4, 12);
    const ip = frame.subarray(ETH_HLEN, ETH_HLEN + IP_HLEN);
    ip[0] = 0x45;
    ip.writeUInt16BE(IP_HLEN + udpLen, 2);
    ip.writeUInt16BE(this.ipId++ & 0xffff, 4);
    ip.writeUInt16BE(IP_DF, 6);
    ip[8] = IP_TTL;
    ip[9] = IPPROTO_UDP;
    ipv4(from.address).copy(ip, 12);
    ipv4(to.address).copy(ip, 16);
    ip.writeUInt16BE(checksum(ip), 10);
    const udp = frame.subarray(ETH_HLEN + IP_HLEN);
    udp.writeUInt16BE(from.port, 0);
    udp.writeUInt16BE(to.port, 2);
    udp.writeUInt16BE(udpLen, 4);
    payload.copy(udp, UDP_HLEN);
    const pseudo = Buffer.alloc(12);
    ip.copy(pseudo, 0, 12, 20);
    pseudo[9] = IPPROTO_UDP;
    pseudo.writeUInt16BE(udpLen, 10);
    // 0 means "no checksum" in UDP over IPv4; a computed 0 is sent as 0xffff.
    udp.writeUInt16BE(checksum(pseudo, udp) || 0xffff, 6);
    this.w.writeFrame(t, frame);
  }
}
