/**
 * pcapng of what crossed the simulated wire, seen from the sender's interface: Ethernet/IPv4/
 * TCP frames with valid checksums, a synthesised handshake so Wireshark tracks the stream,
 * both directions (data as it left the device queue, lost or not; ACKs as they arrived).
 */
import { writeFile } from 'node:fs/promises';
import type { WireAck, WireSegment } from './path.ts';
import { TCPHDR_ACK, TCPHDR_FIN, TCPHDR_PSH, TCPHDR_SYN } from './skb.ts';
import { sliceViews } from './views.ts';

const LINKTYPE_ETHERNET = 1;
const ETH_HLEN = 14;
const IP_HLEN = 20;
const IPPROTO_TCP = 6;
/** Largest TCP payload one IPv4 frame can carry with a 20-byte TCP header. */
const MAX_FRAME_PAYLOAD = 65535 - IP_HLEN - 20;

/**
 * Writes pcapng blocks (SHB, one IDB, EPBs) into memory, `save` writing the file in time order — or,
 * with a `sink`, hands each block to it as it is made (a live capture streamed to a file).
 */
export class PcapWriter {
  /** The section header and interface description. */
  private readonly blocks: Buffer[] = [];
  /** Enhanced Packet Blocks with their timestamps (µs), in the order written. */
  private readonly frames: { us: bigint; b: Buffer }[] = [];

  /** `baseTime`: wall-clock ms that clock time 0 maps to (the virtual clock starts at 0). */
  constructor(
    private readonly baseTime = Date.UTC(2026, 0, 1),
    private readonly sink: ((block: Buffer) => void) | null = null,
  ) {
    const shb = Buffer.alloc(28);
    shb.writeUInt32LE(0x0a0d0d0a, 0);
    shb.writeUInt32LE(28, 4);
    shb.writeUInt32LE(0x1a2b3c4d, 8);
    shb.writeUInt16LE(1, 12);
    shb.writeUInt16LE(0, 14);
    shb.writeBigInt64LE(-1n, 16);
    shb.writeUInt32LE(28, 24);
    const idb = Buffer.alloc(20);
    idb.writeUInt32LE(1, 0);
    idb.writeUInt32LE(20, 4);
    idb.writeUInt16LE(LINKTYPE_ETHERNET, 8);
    idb.writeUInt32LE(0, 12);
    idb.writeUInt32LE(20, 16);
    this.push(shb);
    this.push(idb);
  }

  private push(block: Buffer): void {
    if (this.sink) this.sink(block);
    else this.blocks.push(block);
  }

  /** An Enhanced Packet Block at clock time `t` (ms), microsecond timestamps. */
  writeFrame(t: number, frame: Buffer): void {
    const padded = (frame.length + 3) & ~3;
    const total = 28 + padded + 4;
    const b = Buffer.alloc(total);
    const us = BigInt(Math.round((this.baseTime + t) * 1000));
    b.writeUInt32LE(6, 0);
    b.writeUInt32LE(total, 4);
    b.writeUInt32LE(0, 8);
    b.writeUInt32LE(Number(us >> 32n), 12);
    b.writeUInt32LE(Number(us & 0xffffffffn), 16);
    b.writeUInt32LE(frame.length, 20);
    b.writeUInt32LE(frame.length, 24);
    frame.copy(b, 28);
    b.writeUInt32LE(total, total - 4);
    // Streamed captures are in the order written (the wire's frames are); kept ones are sorted by time.
    if (this.sink) this.sink(b);
    else this.frames.push({ us, b });
  }

  /**
   * The file, frames in time order: connections write as they go, and a handshake is dated just
   * before its first packet, after other connections' frames of that moment.
   */
  toBuffer(): Buffer {
    const ordered = this.frames.map((f, i) => ({ ...f, i })).sort((x, y) => (x.us < y.us ? -1 : x.us > y.us ? 1 : x.i - y.i));
    return Buffer.concat([...this.blocks, ...ordered.map((f) => f.b)]);
  }

  async save(path: string): Promise<void> {
    await writeFile(path, this.toBuffer());
  }
}

/** One TCP connection's addressing: the sender is the server side, the receiver the client that connected. */
export interface TcpFlowAddress {
  serverIp: [number, number, number, number];
  clientIp: [number, number, number, number];
  serverPort: number;
  clientPort: number;
}

export const DEFAULT_FLOW: Readonly<TcpFlowAddress> = Object.freeze({
  serverIp: [10, 0, 0, 1] as [number, number, number, number],
  clientIp: [10, 0, 0, 2] as [number, number, number, number],
  serverPort: 2049,
  clientPort: 40000,
});

function csumAdd(sum: number, b: Buffer): number {
  const n = b.length & ~1;
  for (let i = 0; i < n; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (b.length & 1) sum += b[b.length - 1]! << 8;
  return sum;
}

function csumFold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 65536);
  return ~sum & 0xffff;
}

/** RFC 1071 ones' complement checksum over the parts (each an even run of 16-bit words, padded if odd). */
export function inetChecksum(...parts: Buffer[]): number {
  let sum = 0;
  for (const p of parts) sum = csumAdd(sum, p);
  return csumFold(sum);
}

const SERVER_MAC = Buffer.from([0x02, 0, 0, 0, 0, 1]);
const CLIENT_MAC = Buffer.from([0x02, 0, 0, 0, 0, 2]);
export type Ipv4Address = readonly [number, number, number, number];

/**
 * Writes the Ethernet and IPv4 headers (DF set, TTL 64, header checksum) at the start of `frame`
 * for a packet of `l4Len` transport bytes; returns where the transport header starts.
 */
export function writeEthIpv4(frame: Buffer, o: { fromServer: boolean; src: Ipv4Address; dst: Ipv4Address; proto: number; ipId: number; l4Len: number }): number {
  (o.fromServer ? CLIENT_MAC : SERVER_MAC).copy(frame, 0);
  (o.fromServer ? SERVER_MAC : CLIENT_MAC).copy(frame, 6);
  frame.writeUInt16BE(0x0800, 12);
  const ip = ETH_HLEN;
  frame[ip] = 0x45;
  frame.writeUInt16BE(IP_HLEN + o.l4Len, ip + 2);
  frame.writeUInt16BE(o.ipId & 0xffff, ip + 4);
  frame.writeUInt16BE(0x4000, ip + 6);
  frame[ip + 8] = 64;
  frame[ip + 9] = o.proto;
  frame.set(o.src, ip + 12);
  frame.set(o.dst, ip + 16);
  frame.writeUInt16BE(0, ip + 10);
  frame.writeUInt16BE(inetChecksum(frame.subarray(ip, ip + IP_HLEN)), ip + 10);
  return ip + IP_HLEN;
}

/** The IPv4 pseudo-header that TCP and UDP checksums cover. */
export function ipv4PseudoHeader(src: Ipv4Address, dst: Ipv4Address, proto: number, l4Len: number): Buffer {
  const pseudo = Buffer.alloc(12);
  pseudo.set(src, 0);
  pseudo.set(dst, 4);
  pseudo[9] = proto;
  pseudo.writeUInt16BE(l4Len, 10);
  return pseudo;
}

interface TcpHeader {
  seq: number;
  ack: number;
  flags: number;
  window: number;
  options?: Buffer;
}

/** Builds the frames of one TCP flow into a PcapWriter. */
export class TcpFlowCapture {
  private ipId = 1;
  /** The client's next sequence number: after the SYN and every call byte captured. */
  private clientNext: number;
  /** The last ACK the client sent (the server's stream it had). */
  private serverAcked: number;

  constructor(
    private readonly w: PcapWriter,
    private readonly addr: TcpFlowAddress,
    /** The sender's ISS and the receiver's (client's) ISS. */
    private readonly iss: number,
    private readonly irs: number,
    private readonly mss: number,
    /** Window scale both sides announce; ACK windows are written shifted by it. */
    private readonly wscale: number,
  ) {
    this.clientNext = (irs + 1) >>> 0;
    this.serverAcked = (iss + 1) >>> 0;
  }

  /** SYN (client), SYN-ACK (server), ACK (client), just before `t`. */
  handshake(t: number): void {
    // MSS, NOP, window scale: 8 bytes, a whole number of 32-bit words.
    const mss = Math.min(this.mss, 0xffff);
    const synOpts = Buffer.from([2, 4, mss >> 8, mss & 0xff, 1, 3, 3, this.wscale]);
    this.frame(t - 0.003, false, { seq: this.irs, ack: 0, flags: TCPHDR_SYN, window: 65535, options: synOpts }, []);
    this.frame(t - 0.002, true, { seq: this.iss, ack: (this.irs + 1) >>> 0, flags: TCPHDR_SYN | TCPHDR_ACK, window: 65535, options: synOpts }, []);
    this.frame(t - 0.001, false, { seq: (this.irs + 1) >>> 0, ack: (this.iss + 1) >>> 0, flags: TCPHDR_ACK, window: 65535 >> this.wscale }, []);
  }

  /**
   * Bytes the client sent (its RPC calls, which reach the server over a real socket, not the
   * simulated path): without them a dissector has no call to match a reply's XID to.
   */
  clientData(t: number, bytes: Buffer): void {
    for (let off = 0; off < bytes.length; off += MAX_FRAME_PAYLOAD) {
      const n = Math.min(MAX_FRAME_PAYLOAD, bytes.length - off);
      this.frame(t, false, { seq: this.clientNext, ack: this.serverAcked, flags: TCPHDR_ACK | TCPHDR_PSH, window: 65535 >> this.wscale }, [bytes.subarray(off, off + n)]);
      this.clientNext = (this.clientNext + n) >>> 0;
    }
  }

  /** A data segment from the sender (split into several frames if it exceeds one IPv4 packet). */
  data(t: number, seg: WireSegment): void {
    const ack = this.clientNext;
    const window = 65535 >> this.wscale;
    let seq = seg.seq;
    let off = 0;
    do {
      const n = Math.min(MAX_FRAME_PAYLOAD, seg.len - off);
      const last = off + n >= seg.len;
      const flags = TCPHDR_ACK | (last ? seg.flags & (TCPHDR_FIN | TCPHDR_PSH) : 0);
      this.frame(t, true, { seq, ack, flags, window }, sliceViews(seg.payload, off, n));
      seq = (seq + n) >>> 0;
      off += n;
    } while (off < seg.len);
  }

  /** An ACK from the receiver. */
  ack(t: number, a: WireAck): void {
    this.serverAcked = a.ack;
    this.frame(t, false, { seq: this.clientNext, ack: a.ack, flags: TCPHDR_ACK, window: Math.min(0xffff, a.window >> this.wscale) }, []);
  }

  private frame(t: number, fromServer: boolean, h: TcpHeader, payload: Buffer[]): void {
    const opts = h.options ?? Buffer.alloc(0);
    const tcpHlen = 20 + opts.length;
    let plen = 0;
    for (const p of payload) plen += p.length;
    const frame = Buffer.alloc(ETH_HLEN + IP_HLEN + tcpHlen + plen);
    const src = fromServer ? this.addr.serverIp : this.addr.clientIp;
    const dst = fromServer ? this.addr.clientIp : this.addr.serverIp;
    const tcp = writeEthIpv4(frame, { fromServer, src, dst, proto: IPPROTO_TCP, ipId: this.ipId++, l4Len: tcpHlen + plen });
    frame.writeUInt16BE(fromServer ? this.addr.serverPort : this.addr.clientPort, tcp);
    frame.writeUInt16BE(fromServer ? this.addr.clientPort : this.addr.serverPort, tcp + 2);
    frame.writeUInt32BE(h.seq >>> 0, tcp + 4);
    frame.writeUInt32BE(h.ack >>> 0, tcp + 8);
    frame[tcp + 12] = (tcpHlen / 4) << 4;
    frame[tcp + 13] = h.flags;
    frame.writeUInt16BE(h.window & 0xffff, tcp + 14);
    opts.copy(frame, tcp + 20);
    let pos = tcp + tcpHlen;
    for (const p of payload) {
      p.copy(frame, pos);
      pos += p.length;
    }
    frame.writeUInt16BE(inetChecksum(ipv4PseudoHeader(src, dst, IPPROTO_TCP, tcpHlen + plen), frame.subarray(tcp)), tcp + 16);
    this.w.writeFrame(t, frame);
  }
}
