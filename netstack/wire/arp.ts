/**
 * ARP for IPv4 over Ethernet (RFC 826): parse and build, and the neighbour cache (a bounded
 * table with expiry, as net/core/neighbour.c bounds it with gc_thresh3 and reachable time).
 */
import type { Clock } from '../clock.ts';
import type { Ipv4 } from './addr.ts';

export const ARPHRD_ETHER = 1;
export const ARPOP_REQUEST = 1;
export const ARPOP_REPLY = 2;
/** The ARP body for Ethernet/IPv4: hardware and protocol types, sizes, op, two address pairs. */
export const ARP_LEN = 28;

export interface ArpPacket {
  op: number;
  sha: Buffer;
  spa: Ipv4;
  tha: Buffer;
  tpa: Ipv4;
}

/** The ARP packet in `b`, or null unless it is Ethernet/IPv4 ARP of the right length. */
export function parseArp(b: Buffer): ArpPacket | null {
  if (b.length < ARP_LEN) return null;
  if (b.readUInt16BE(0) !== ARPHRD_ETHER || b.readUInt16BE(2) !== 0x0800 || b[4] !== 6 || b[5] !== 4) return null;
  const op = b.readUInt16BE(6);
  if (op !== ARPOP_REQUEST && op !== ARPOP_REPLY) return null;
  return { op, sha: b.subarray(8, 14), spa: b.readUInt32BE(14), tha: b.subarray(18, 24), tpa: b.readUInt32BE(24) };
}

export function buildArp(p: ArpPacket): Buffer {
  const b = Buffer.alloc(ARP_LEN);
  b.writeUInt16BE(ARPHRD_ETHER, 0);
  b.writeUInt16BE(0x0800, 2);
  b[4] = 6;
  b[5] = 4;
  b.writeUInt16BE(p.op, 6);
  p.sha.copy(b, 8);
  b.writeUInt32BE(p.spa >>> 0, 14);
  p.tha.copy(b, 18);
  b.writeUInt32BE(p.tpa >>> 0, 24);
  return b;
}

export interface ArpCacheLimits {
  /** Entries at most; the oldest goes to make room (gc_thresh3). */
  maxEntries: number;
  /** An entry older than this is not used (base_reachable_time, simplified). */
  ttlMs: number;
}

/** The neighbour table: IPv4 → MAC, learnt from requests and replies addressed to us. */
export class ArpCache {
  private readonly entries = new Map<Ipv4, { mac: Buffer; at: number }>();

  constructor(
    private readonly limits: ArpCacheLimits,
    private readonly clock: Clock,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  learn(ip: Ipv4, mac: Buffer): void {
    this.entries.delete(ip);
    while (this.entries.size >= this.limits.maxEntries) this.entries.delete(this.entries.keys().next().value as Ipv4);
    this.entries.set(ip, { mac: Buffer.from(mac), at: this.clock.now() });
  }

  /** The MAC of `ip` if known and fresh; a stale entry is forgotten. */
  lookup(ip: Ipv4): Buffer | null {
    const e = this.entries.get(ip);
    if (!e) return null;
    if (this.clock.now() - e.at > this.limits.ttlMs) {
      this.entries.delete(ip);
      return null;
    }
    return e.mac;
  }
}
