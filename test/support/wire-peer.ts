/**
 * A hand-built peer for the wire stack's tests: builds the frames a guest would send and takes
 * apart the stack's frames by byte offset, with its own checksum (not the stack's), so the two
 * sides cannot share a mistake.
 */

export const GUEST_MAC = Buffer.from([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
export const SERVER_MAC = Buffer.from([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
export const GUEST_IP = [10, 0, 3, 15] as const;
export const SERVER_IP = [10, 0, 3, 1] as const;

/** RFC 1071, over the concatenation of the parts. */
export function csum(...parts: Buffer[]): number {
  const b = Buffer.concat(parts);
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i);
  if (b.length & 1) sum += b[b.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export function eth(type: number, payload: Buffer, dst: Buffer = SERVER_MAC, src: Buffer = GUEST_MAC): Buffer {
  const h = Buffer.alloc(14);
  dst.copy(h, 0);
  src.copy(h, 6);
  h.writeUInt16BE(type, 12);
  return Buffer.concat([h, payload]);
}

export function arpRequest(tpa: readonly number[] = SERVER_IP, spa: readonly number[] = GUEST_IP, sha: Buffer = GUEST_MAC): Buffer {
  const a = Buffer.alloc(28);
  a.writeUInt16BE(1, 0);
  a.writeUInt16BE(0x0800, 2);
  a[4] = 6;
  a[5] = 4;
  a.writeUInt16BE(1, 6);
  sha.copy(a, 8);
  Buffer.from(spa).copy(a, 14);
  Buffer.from(tpa).copy(a, 24);
  return eth(0x0806, a, Buffer.alloc(6, 0xff), sha);
}

export interface IpOpts {
  proto: number;
  id?: number;
  ttl?: number;
  df?: boolean;
  mf?: boolean;
  fragOff?: number;
  options?: Buffer;
  src?: readonly number[];
  dst?: readonly number[];
  badChecksum?: boolean;
}

export function ipv4(o: IpOpts, payload: Buffer): Buffer {
  const opts = o.options ?? Buffer.alloc(0);
  const h = Buffer.alloc(20 + opts.length);
  h[0] = 0x40 | (h.length / 4);
  h.writeUInt16BE(h.length + payload.length, 2);
  h.writeUInt16BE(o.id ?? 1, 4);
  h.writeUInt16BE((o.df ? 0x4000 : 0) | (o.mf ? 0x2000 : 0) | ((o.fragOff ?? 0) >> 3), 6);
  h[8] = o.ttl ?? 64;
  h[9] = o.proto;
  Buffer.from(o.src ?? GUEST_IP).copy(h, 12);
  Buffer.from(o.dst ?? SERVER_IP).copy(h, 16);
  opts.copy(h, 20);
  h.writeUInt16BE(csum(h) ^ (o.badChecksum ? 0x5555 : 0), 10);
  return Buffer.concat([h, payload]);
}

function pseudo(proto: number, len: number, src: readonly number[] = GUEST_IP, dst: readonly number[] = SERVER_IP): Buffer {
  const p = Buffer.alloc(12);
  Buffer.from(src).copy(p, 0);
  Buffer.from(dst).copy(p, 4);
  p[9] = proto;
  p.writeUInt16BE(len, 10);
  return p;
}

export function udp(srcPort: number, dstPort: number, payload: Buffer, o: { noChecksum?: boolean; badChecksum?: boolean } = {}): Buffer {
  const u = Buffer.alloc(8 + payload.length);
  u.writeUInt16BE(srcPort, 0);
  u.writeUInt16BE(dstPort, 2);
  u.writeUInt16BE(u.length, 4);
  payload.copy(u, 8);
  if (!o.noChecksum) u.writeUInt16BE((csum(pseudo(17, u.length), u) || 0xffff) ^ (o.badChecksum ? 0x1111 : 0), 6);
  return u;
}

export function icmpEcho(id: number, seq: number, data: Buffer): Buffer {
  const b = Buffer.alloc(8 + data.length);
  b[0] = 8;
  b.writeUInt16BE(id, 4);
  b.writeUInt16BE(seq, 6);
  data.copy(b, 8);
  b.writeUInt16BE(csum(b), 2);
  return b;
}

export const FIN = 0x01;
export const SYN = 0x02;
export const RST = 0x04;
export const PSH = 0x08;
export const ACK = 0x10;

export interface TcpOpts {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack?: number;
  flags: number;
  window?: number;
  mss?: number;
  wscale?: number;
  sackPerm?: boolean;
  badChecksum?: boolean;
  /** Source address for the pseudo-header (default the guest's). */
  src?: readonly number[];
}

export function tcp(o: TcpOpts, payload: Buffer = Buffer.alloc(0)): Buffer {
  const opts: number[] = [];
  if (o.mss !== undefined) opts.push(2, 4, o.mss >> 8, o.mss & 0xff);
  if (o.sackPerm) opts.push(4, 2);
  if (o.wscale !== undefined) opts.push(1, 3, 3, o.wscale);
  while (opts.length % 4) opts.push(0);
  const h = Buffer.alloc(20 + opts.length);
  h.writeUInt16BE(o.srcPort, 0);
  h.writeUInt16BE(o.dstPort, 2);
  h.writeUInt32BE(o.seq >>> 0, 4);
  h.writeUInt32BE((o.ack ?? 0) >>> 0, 8);
  h[12] = (h.length / 4) << 4;
  h[13] = o.flags;
  h.writeUInt16BE(o.window ?? 65535, 14);
  Buffer.from(opts).copy(h, 20);
  const seg = Buffer.concat([h, payload]);
  seg.writeUInt16BE(csum(pseudo(6, seg.length, o.src), seg) ^ (o.badChecksum ? 0x2222 : 0), 16);
  return seg;
}

/** A TCP frame from the guest. */
export function tcpFrame(o: TcpOpts, payload?: Buffer, ip: Partial<IpOpts> = {}): Buffer {
  return eth(0x0800, ipv4({ proto: 6, df: true, ...ip }, tcp(o, payload)));
}

export function udpFrame(srcPort: number, dstPort: number, payload: Buffer, ip: Partial<IpOpts> = {}): Buffer {
  return eth(0x0800, ipv4({ proto: 17, ...ip }, udp(srcPort, dstPort, payload)));
}

/** What a frame from the stack holds, every checksum verified here. */
export interface Dissected {
  dstMac: Buffer;
  type: number;
  arp?: { op: number; sha: Buffer; spa: string; tpa: string };
  ip?: { src: string; dst: string; proto: number; id: number; df: boolean; mf: boolean; fragOff: number; ttl: number; payload: Buffer; checksumOk: boolean };
  icmp?: { type: number; code: number; rest: Buffer; checksumOk: boolean };
  udp?: { srcPort: number; dstPort: number; payload: Buffer; checksumOk: boolean };
  tcp?: { srcPort: number; dstPort: number; seq: number; ack: number; flags: number; window: number; options: Buffer; payload: Buffer; checksumOk: boolean };
}

const dotted = (b: Buffer) => [...b].join('.');

export function dissect(frame: Buffer): Dissected {
  const d: Dissected = { dstMac: frame.subarray(0, 6), type: frame.readUInt16BE(12) };
  const p = frame.subarray(14);
  if (d.type === 0x0806) {
    d.arp = { op: p.readUInt16BE(6), sha: p.subarray(8, 14), spa: dotted(p.subarray(14, 18)), tpa: dotted(p.subarray(24, 28)) };
    return d;
  }
  const ihl = (p[0]! & 15) * 4;
  const total = p.readUInt16BE(2);
  const frag = p.readUInt16BE(6);
  const ip = {
    src: dotted(p.subarray(12, 16)),
    dst: dotted(p.subarray(16, 20)),
    proto: p[9]!,
    id: p.readUInt16BE(4),
    df: (frag & 0x4000) !== 0,
    mf: (frag & 0x2000) !== 0,
    fragOff: (frag & 0x1fff) * 8,
    ttl: p[8]!,
    payload: p.subarray(ihl, total),
    checksumOk: csum(p.subarray(0, ihl)) === 0,
  };
  d.ip = ip;
  if (ip.mf || ip.fragOff > 0) return d;
  const l4 = ip.payload;
  const ps = pseudo(ip.proto, l4.length, [...p.subarray(12, 16)], [...p.subarray(16, 20)]);
  if (ip.proto === 1) d.icmp = { type: l4[0]!, code: l4[1]!, rest: l4.subarray(4), checksumOk: csum(l4) === 0 };
  if (ip.proto === 17) d.udp = { srcPort: l4.readUInt16BE(0), dstPort: l4.readUInt16BE(2), payload: l4.subarray(8), checksumOk: csum(ps, l4) === 0 };
  if (ip.proto === 6) {
    const doff = (l4[12]! >> 4) * 4;
    d.tcp = {
      srcPort: l4.readUInt16BE(0),
      dstPort: l4.readUInt16BE(2),
      seq: l4.readUInt32BE(4),
      ack: l4.readUInt32BE(8),
      flags: l4[13]!,
      window: l4.readUInt16BE(14),
      options: l4.subarray(20, doff),
      payload: l4.subarray(doff),
      checksumOk: csum(ps, l4) === 0,
    };
  }
  return d;
}
