/**
 * IPv4 reassembly (ip_fragment.c's ipq): incoming fragments are queued per (src, dst, id,
 * proto) until the datagram is whole. Bounded three ways, as Linux bounds it: a number of
 * queues, a total of queued bytes (ipfrag_high_thresh) and an age (ipfrag_time). An overlapping
 * fragment drops its whole datagram (what Linux does since the FragmentSmack fixes); an exact
 * duplicate is dropped alone.
 */
import type { Clock } from '../clock.ts';
import type { Ipv4Header } from './ipv4.ts';

/** Largest IPv4 datagram: the total-length field's range. */
export const IP_MAX_DATAGRAM = 65535;

export interface IpFragLimits {
  /** Datagrams being reassembled at once; a fragment of one more is dropped. */
  maxQueues: number;
  /** Bytes held across all queues (ipfrag_high_thresh). */
  maxBytes: number;
  /** A datagram not complete after this long is dropped (ipfrag_time). */
  timeoutMs: number;
}

export type FragDrop = 'frag-overlap' | 'frag-duplicate' | 'frag-too-big' | 'frag-queues' | 'frag-memory' | 'frag-inconsistent';

export type FragResult = { done: Buffer } | { queued: true } | { dropped: FragDrop };

interface IpFrag {
  off: number;
  data: Buffer;
}

interface Ipq {
  frags: IpFrag[];
  /** Total length, once the last fragment (MF clear) arrived; -1 before. */
  len: number;
  bytes: number;
  expires: number;
}

export class IpReassembly {
  private readonly queues = new Map<string, Ipq>();
  private bytes = 0;
  /** Datagrams dropped unfinished because they timed out. */
  timeouts = 0;

  constructor(
    private readonly limits: IpFragLimits,
    private readonly clock: Clock,
  ) {}

  get queued(): number {
    return this.queues.size;
  }

  get queuedBytes(): number {
    return this.bytes;
  }

  /** ip_defrag: adds one fragment; returns the whole payload once complete. */
  add(h: Ipv4Header): FragResult {
    this.expire();
    const key = `${h.src}:${h.dst}:${h.id}:${h.proto}`;
    const end = h.fragOff + h.payload.length;
    if (end > IP_MAX_DATAGRAM - 20) return this.drop(key, 'frag-too-big');
    // Every fragment but the last carries a multiple of 8 bytes (RFC 791).
    if (h.mf && h.payload.length % 8 !== 0) return this.drop(key, 'frag-inconsistent');
    let q = this.queues.get(key);
    if (!q) {
      if (this.queues.size >= this.limits.maxQueues) return { dropped: 'frag-queues' };
      q = { frags: [], len: -1, bytes: 0, expires: this.clock.now() + this.limits.timeoutMs };
      this.queues.set(key, q);
    }
    if (!h.mf) {
      if ((q.len >= 0 && q.len !== end) || q.frags.some((f) => f.off + f.data.length > end)) return this.drop(key, 'frag-inconsistent');
      q.len = end;
    } else if (q.len >= 0 && end > q.len) return this.drop(key, 'frag-inconsistent');
    for (const f of q.frags) {
      const fEnd = f.off + f.data.length;
      if (f.off === h.fragOff && fEnd === end) return { dropped: 'frag-duplicate' };
      if (h.fragOff < fEnd && f.off < end) return this.drop(key, 'frag-overlap');
    }
    if (this.bytes + h.payload.length > this.limits.maxBytes) return this.drop(key, 'frag-memory');
    // Copied: the fragment's frame buffer is not ours to keep.
    q.frags.push({ off: h.fragOff, data: Buffer.from(h.payload) });
    q.bytes += h.payload.length;
    this.bytes += h.payload.length;
    if (q.len < 0 || q.bytes !== q.len) return { queued: true };
    this.forget(key, q);
    const out = Buffer.alloc(q.len);
    for (const f of q.frags) f.data.copy(out, f.off);
    return { done: out };
  }

  /** Drops datagrams past their age (checked on every fragment and by the stack's timer). */
  expire(): void {
    const now = this.clock.now();
    for (const [key, q] of this.queues) {
      if (q.expires > now) continue;
      this.forget(key, q);
      this.timeouts++;
    }
  }

  private drop(key: string, reason: FragDrop): FragResult {
    const q = this.queues.get(key);
    if (q) this.forget(key, q);
    return { dropped: reason };
  }

  private forget(key: string, q: Ipq): void {
    this.queues.delete(key);
    this.bytes -= q.bytes;
  }
}
