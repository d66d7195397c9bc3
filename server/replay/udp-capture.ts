/**
 * UDP calls and replies in the replay's capture. The netstack writes TCP flows only; a datagram is
 * written here as an Ethernet/IPv4/UDP frame: a call when the client sends it, a reply when it arrives.
 */
import { inetChecksum, ipv4PseudoHeader, writeEthIpv4, type Ipv4Address, type PcapWriter } from '../../netstack/pcap.ts';

const ETH_HLEN = 14;
const IP_HLEN = 20;
const UDP_HLEN = 8;
const IPPROTO_UDP = 17;

function ipv4(a: string): Ipv4Address {
  const [x = 0, y = 0, z = 0, w = 0] = a.split('.').map(Number);
  return [x, y, z, w];
}

export class UdpCapture {
  private ipId = 1;

  constructor(private readonly w: PcapWriter) {}

  datagram(t: number, from: { address: string; port: number }, to: { address: string; port: number }, payload: Buffer, fromServer: boolean): void {
    const udpLen = UDP_HLEN + payload.length;
    const frame = Buffer.alloc(ETH_HLEN + IP_HLEN + udpLen);
    const src = ipv4(from.address);
    const dst = ipv4(to.address);
    const at = writeEthIpv4(frame, { fromServer, src, dst, proto: IPPROTO_UDP, ipId: this.ipId++, l4Len: udpLen });
    const udp = frame.subarray(at);
    udp.writeUInt16BE(from.port, 0);
    udp.writeUInt16BE(to.port, 2);
    udp.writeUInt16BE(udpLen, 4);
    payload.copy(udp, UDP_HLEN);
    // 0 means "no checksum" in UDP over IPv4; a computed 0 is sent as 0xffff.
    udp.writeUInt16BE(inetChecksum(ipv4PseudoHeader(src, dst, IPPROTO_UDP, udpLen), udp) || 0xffff, 6);
    this.w.writeFrame(t, frame);
  }
}
