/**
 * Ethernet II (IEEE 802.3 with an EtherType): 14 bytes of header before the payload; no FCS,
 * which the NIC strips and QEMU's dgram backend never carries.
 */
export const ETH_HLEN = 14;
export const ETH_ALEN = 6;
export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
/** Smallest payload of a frame on the medium; shorter ones are padded (and the padding ignored on input). */
export const ETH_ZLEN = 60;

export const BROADCAST_MAC = Buffer.alloc(ETH_ALEN, 0xff);

export interface EthHeader {
  dst: Buffer;
  src: Buffer;
  type: number;
  payload: Buffer;
}

/** The header of `frame` (views into it), or null when the frame is shorter than a header. */
export function parseEth(frame: Buffer): EthHeader | null {
  if (frame.length < ETH_HLEN) return null;
  return { dst: frame.subarray(0, 6), src: frame.subarray(6, 12), type: frame.readUInt16BE(12), payload: frame.subarray(ETH_HLEN) };
}

/** Writes an Ethernet header at the start of `frame`; returns where the payload starts. */
export function writeEth(frame: Buffer, dst: Buffer, src: Buffer, type: number): number {
  dst.copy(frame, 0);
  src.copy(frame, 6);
  frame.writeUInt16BE(type, 12);
  return ETH_HLEN;
}

export function isMulticastMac(mac: Buffer): boolean {
  return (mac[0]! & 1) === 1;
}

/** `52:54:00:12:34:56` → 6 bytes; null if it is not a MAC address. */
export function parseMac(text: string): Buffer | null {
  const m = /^([0-9a-f]{2})(?::([0-9a-f]{2})){5}$/i.test(text) ? text.split(':') : null;
  return m ? Buffer.from(m.map((h) => parseInt(h, 16))) : null;
}

export function formatMac(mac: Buffer): string {
  return [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
}
