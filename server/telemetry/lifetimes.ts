/**
 * Page lifetimes: one record per pinned reply, from `reply-pin` to `reply-release`, with the
 * netstack events that kept its pages alive. The netstack speaks of destructor ids, skb ids and
 * sequence ranges, so this module keeps the links between them:
 * - transmit/retransmit carry the destructor ids of the skb they send; their sequence ranges are
 *   remembered per connection so a drop, a stale retransmit or an ACK (which carry only ranges)
 *   can be attributed to the replies whose bytes they concern;
 * - frag-ref and skb-clone tell which skbs hold a destructor's pages; a hold names an skb.
 * Events may precede the pin's announcement (sendpage transmits before the reply path reports the
 * pin) and follow the pages' return to the cache (legacy mode's stale retransmit): both land on
 * the record.
 */
import type { NetstackEvent } from '../../netstack/events.ts';
import { after, before } from '../../netstack/tcp/seq.ts';
import type { ReplyEvent } from '../reply/types.ts';
import type { TelemetryLimits } from './limits.ts';
import { Ring } from './ring.ts';

export type MarkKind = 'fill' | 'transmit' | 'retransmit' | 'drop' | 'hold' | 'ack' | 'stale-retransmit' | 'orphan' | 'fire';

/** Frequent kinds: a lifetime keeps their first and latest occurrence (and a count), not each one. */
const COALESCED: ReadonlySet<MarkKind> = new Set<MarkKind>(['fill', 'transmit', 'ack']);

export interface Mark {
  t: number;
  kind: MarkKind;
  skb?: number;
  seq?: number;
  end?: number;
  /** Hold or fill (file read) duration in ms, or bytes orphaned. */
  n?: number;
  reason?: string;
}

export type OrphanReason = Extract<ReplyEvent, { type: 'pin-orphan' }>['reason'];

export interface Lifetime {
  destructor: number;
  conn: number;
  xid: number;
  file: string;
  offset: number;
  bytes: number;
  pfns: number[];
  pfnsOmitted: number;
  pinnedAt: number;
  /**
   * Pages handed back to the cache: at the release in destructor mode; at sendpage return — the
   * pin itself — in legacy mode, while the network still references them (the bug).
   */
  returnedAt: number | null;
  /** `reply-release`: the reply's destructor fired, the network is done with the pages. */
  releasedAt: number | null;
  heldMs: number | null;
  firedAt: number | null;
  /** Reply mode reported at release. */
  mode: string | null;
  orphaned: OrphanReason | null;
  /** Closed by the telemetry's own bound, not by a release: its end is unknown. */
  evicted: boolean;
  marks: Mark[];
  marksOmitted: number;
  counts: Partial<Record<MarkKind, number>>;
}

/** The JSON form (snapshot, delta, page detail). */
export interface LifetimeJson extends Lifetime {
  /** skbs that took a reference to the pages (original, clones, copies) and are not yet freed. */
  holders: number[];
  /** Holders beyond `maxHoldersPerLifetime`, counted only. */
  holdersUntracked: number;
}

interface Segment {
  seq: number;
  end: number;
  destructors: number[];
}

/** Transmitted ranges of one connection in send order; ACKs retire them from the front. */
class SegmentQueue {
  private items: Segment[] = [];
  private head = 0;

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.items.length - this.head;
  }

  push(s: Segment): void {
    if (this.items.length - this.head >= this.capacity) this.head++;
    this.items.push(s);
    if (this.head > this.capacity) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  /** Removes the leading segments the cumulative ACK covers; returns their destructors. */
  retire(ack: number, out: Set<number>): void {
    while (this.head < this.items.length) {
      const s = this.items[this.head]!;
      if (after(s.end, ack)) break;
      for (const d of s.destructors) out.add(d);
      this.head++;
    }
  }

  /** Destructors of tracked segments overlapping [seq, end). */
  overlapping(seq: number, end: number, out: Set<number>): void {
    for (let i = this.head; i < this.items.length; i++) {
      const s = this.items[i]!;
      if (before(s.seq, end) && after(s.end, seq)) for (const d of s.destructors) out.add(d);
    }
  }
}

export class LifetimeLog {
  private readonly open = new Map<number, Lifetime>();
  private readonly recent: Ring<Lifetime>;
  private readonly recentById = new Map<number, Lifetime>();
  private readonly skbs = new Map<number, number[]>();
  /** The reverse of `skbs`: each destructor's live skbs. */
  private readonly holders = new Map<number, Set<number>>();
  /**
   * Marks for destructors not yet announced: the reply path reports the pin after sendpage, and
   * sendpage may already transmit. Adopted by the pin; forgotten oldest first.
   */
  private readonly pending = new Map<number, Mark[]>();
  private readonly segments = new Map<number, SegmentQueue>();
  private readonly touched = new Set<number>();
  /** JSON text of lifetimes already serialized, dropped when they change (touch) or leave the log. */
  private readonly texts = new Map<number, string>();
  private touchedOmitted = 0;
  /** Bumped by every change of a lifetime, or of which are held: what was built from all() holds while it does not move. */
  version = 0;
  private evictedCount = 0;

  constructor(private readonly limits: TelemetryLimits) {
    this.recent = new Ring(limits.maxRecentLifetimes);
  }

  /** Lifetimes closed by the bound on open ones (pins never seen released). */
  get evicted(): number {
    return this.evictedCount;
  }

  /** Entries in each internal structure (each bounded by a limit), for tests and /metrics. */
  sizes(): Record<'open' | 'recent' | 'skbs' | 'holders' | 'pending' | 'conns' | 'segments' | 'texts', number> {
    let segments = 0;
    for (const q of this.segments.values()) segments += q.size;
    return { open: this.open.size, recent: this.recent.size, skbs: this.skbs.size, holders: this.holders.size, pending: this.pending.size, conns: this.segments.size, segments, texts: this.texts.size };
  }

  json(l: Lifetime): LifetimeJson {
    const held = [...(this.holders.get(l.destructor) ?? [])];
    const max = this.limits.maxHoldersPerLifetime;
    return { ...l, pfns: [...l.pfns], marks: l.marks.map((m) => ({ ...m })), counts: { ...l.counts }, holders: held.slice(0, max), holdersUntracked: Math.max(0, held.length - max) };
  }

  /** `json(l)` as text, serialized once until the lifetime next changes. */
  jsonText(l: Lifetime): string {
    let text = this.texts.get(l.destructor);
    if (text === undefined) this.texts.set(l.destructor, (text = JSON.stringify(this.json(l))));
    return text;
  }

  get openCount(): number {
    return this.open.size;
  }

  get(destructor: number): Lifetime | undefined {
    return this.open.get(destructor) ?? this.recentById.get(destructor);
  }

  /** Released ones, then open ones (network still holding), oldest pin first within each. */
  all(): Lifetime[] {
    return [...this.recent, ...this.open.values()];
  }

  /**
   * Open lifetimes (network still holding) of a frame. A scan, not an index: it answers a click on
   * the dashboard, while an index would cost a Map and Set update per page of every READ.
   */
  openFor(pfn: number): Lifetime[] {
    return [...this.open.values()].filter((l) => l.pfns.includes(pfn));
  }

  recentFor(pfn: number): Lifetime[] {
    return [...this.recent].filter((l) => l.pfns.includes(pfn));
  }

  /** `fills`: the reads from the file that brought its pages into the cache (a READ that missed), before its pin. */
  pin(e: Extract<ReplyEvent, { type: 'reply-pin' }>, returnedAt: number | null, fills: readonly Mark[] = []): Lifetime {
    if (this.open.size >= this.limits.maxOpenLifetimes) {
      const oldest = this.open.values().next().value!;
      oldest.evicted = true;
      this.evictedCount++;
      this.close(oldest);
    }
    const l: Lifetime = {
      destructor: e.destructor,
      conn: e.conn,
      xid: e.xid,
      file: e.file,
      offset: e.offset,
      bytes: e.bytes,
      pfns: e.pfns.slice(0, this.limits.maxPfnsPerLifetime),
      pfnsOmitted: Math.max(0, e.pfns.length - this.limits.maxPfnsPerLifetime),
      pinnedAt: e.t,
      returnedAt,
      releasedAt: null,
      heldMs: null,
      firedAt: null,
      mode: null,
      orphaned: null,
      evicted: false,
      marks: [],
      marksOmitted: 0,
      counts: {},
    };
    this.open.set(l.destructor, l);
    for (const m of fills) this.mark(l, m);
    const early = this.pending.get(l.destructor);
    if (early) {
      this.pending.delete(l.destructor);
      for (const m of early) this.mark(l, m);
    }
    this.touch(l.destructor);
    return l;
  }

  release(e: Extract<ReplyEvent, { type: 'reply-release' }>): Lifetime | undefined {
    const l = this.open.get(e.destructor);
    if (!l) return undefined;
    l.releasedAt = e.t;
    l.returnedAt ??= e.t;
    l.heldMs = e.heldMs;
    l.mode = e.mode;
    this.close(l);
    return l;
  }

  /**
   * The destructor fired, learned from the netstack's event or from the reply-release it causes
   * (whichever comes first). True the first time it is learned, so it is counted once.
   */
  fire(destructor: number, t: number): boolean {
    const l = this.get(destructor);
    if (!l) return true;
    if (l.firedAt !== null) return false;
    l.firedAt = t;
    this.mark(l, { t, kind: 'fire' });
    return true;
  }

  orphanPin(e: Extract<ReplyEvent, { type: 'pin-orphan' }>): Lifetime | undefined {
    const l = this.get(e.destructor);
    if (!l) return undefined;
    l.orphaned = e.reason;
    this.mark(l, { t: e.t, kind: 'orphan', n: e.bytes, reason: e.reason });
    return l;
  }

  /** Links one netstack event to the lifetimes it concerns. */
  net(e: NetstackEvent): void {
    switch (e.type) {
      case 'frag-ref':
        if (e.destructor !== null) this.hold(e.skb, [e.destructor]);
        return;
      case 'skb-clone': {
        const ds = this.skbs.get(e.from);
        if (ds) this.hold(e.skb, ds);
        return;
      }
      case 'skb-free':
        this.forgetSkb(e.skb);
        return;
      case 'segment-transmit':
      case 'segment-retransmit': {
        if (e.destructors.length === 0) return;
        this.segmentsOf(e.conn).push({ seq: e.seq, end: e.end, destructors: e.destructors });
        const kind = e.type === 'segment-transmit' ? 'transmit' : 'retransmit';
        for (const d of e.destructors) this.markId(d, { t: e.t, kind, skb: e.skb, seq: e.seq, end: e.end, ...(kind === 'retransmit' ? { reason: (e as { reason: string }).reason } : {}) });
        return;
      }
      case 'segment-hold':
        for (const d of this.skbs.get(e.skb) ?? []) this.markId(d, { t: e.t, kind: 'hold', skb: e.skb, seq: e.seq, end: e.end, n: e.ms });
        return;
      case 'segment-drop':
      case 'stale-retransmit': {
        const ds = new Set<number>();
        this.segments.get(e.conn)?.overlapping(e.seq, e.end, ds);
        const kind = e.type === 'segment-drop' ? 'drop' : 'stale-retransmit';
        for (const d of ds) this.markId(d, { t: e.t, kind, seq: e.seq, end: e.end, ...(e.type === 'segment-drop' ? { reason: e.reason } : {}) });
        return;
      }
      case 'ack': {
        if (e.lost || e.dup) return;
        const ds = new Set<number>();
        this.segments.get(e.conn)?.retire(e.ack, ds);
        for (const d of ds) this.markId(d, { t: e.t, kind: 'ack', seq: e.ack });
        return;
      }
      case 'orphan':
        this.markId(e.destructor, { t: e.t, kind: 'orphan', skb: e.skb, n: e.bytes });
        return;
      default:
        return;
    }
  }

  /** Destructor ids of lifetimes changed since the last drain (bounded), and how many were left out. */
  drainTouched(): { ids: number[]; omitted: number } {
    const out = { ids: [...this.touched], omitted: this.touchedOmitted };
    this.touched.clear();
    this.touchedOmitted = 0;
    return out;
  }

  /**
   * Recording stops (telemetry.ts: nobody watches): the events that would end the open lifetimes
   * will not be seen, so they close now as evicted (their end unknown), and the links kept to
   * attribute later events (skbs, early marks, sequence ranges) are let go. Released lifetimes stay.
   */
  suspend(): void {
    for (const l of [...this.open.values()]) {
      l.evicted = true;
      this.evictedCount++;
      this.close(l);
    }
    this.skbs.clear();
    this.holders.clear();
    this.pending.clear();
    this.segments.clear();
  }

  private close(l: Lifetime): void {
    this.open.delete(l.destructor);
    const dropped = this.recent.push(l);
    if (dropped) {
      this.recentById.delete(dropped.destructor);
      this.texts.delete(dropped.destructor);
    }
    this.recentById.set(l.destructor, l);
    this.touch(l.destructor);
  }

  private hold(skb: number, destructors: readonly number[]): void {
    let ds = this.skbs.get(skb);
    if (!ds) {
      if (this.skbs.size >= this.limits.maxTrackedSkbs) this.forgetSkb(this.skbs.keys().next().value!);
      this.skbs.set(skb, (ds = []));
    }
    for (const d of destructors) {
      if (ds.includes(d)) continue;
      ds.push(d);
      let set = this.holders.get(d);
      if (!set) this.holders.set(d, (set = new Set()));
      set.add(skb);
      if (this.get(d)) this.touch(d);
    }
  }

  private forgetSkb(skb: number): void {
    const ds = this.skbs.get(skb);
    if (!ds) return;
    this.skbs.delete(skb);
    for (const d of ds) {
      const set = this.holders.get(d);
      set?.delete(skb);
      if (set?.size === 0) this.holders.delete(d);
      if (this.get(d)) this.touch(d);
    }
  }

  private segmentsOf(conn: number): SegmentQueue {
    let q = this.segments.get(conn);
    if (!q) {
      if (this.segments.size >= this.limits.maxTrackedConns) this.segments.delete(this.segments.keys().next().value!);
      this.segments.set(conn, (q = new SegmentQueue(this.limits.maxSegmentsPerConn)));
    }
    return q;
  }

  private markId(destructor: number, m: Mark): void {
    const l = this.get(destructor);
    if (l) return this.mark(l, m);
    let early = this.pending.get(destructor);
    if (!early) {
      if (this.pending.size >= this.limits.maxPendingDestructors) this.pending.delete(this.pending.keys().next().value!);
      this.pending.set(destructor, (early = []));
    }
    if (early.length < this.limits.maxMarksPerLifetime) early.push(m);
  }

  private mark(l: Lifetime, m: Mark): void {
    const seen = l.counts[m.kind] ?? 0;
    l.counts[m.kind] = seen + 1;
    this.touch(l.destructor);
    if (COALESCED.has(m.kind) && seen >= 2) {
      // Replace the latest occurrence in place (never the first): first and last transmit/ACK are what the timeline needs.
      const first = l.marks.findIndex((x) => x.kind === m.kind);
      let last = l.marks.length - 1;
      while (last > first && l.marks[last]!.kind !== m.kind) last--;
      if (last > first) {
        l.marks[last] = m;
        return;
      }
    }
    if (l.marks.length >= this.limits.maxMarksPerLifetime) {
      l.marksOmitted++;
      return;
    }
    l.marks.push(m);
  }

  private touch(destructor: number): void {
    this.version++;
    this.texts.delete(destructor);
    if (this.touched.has(destructor)) return;
    if (this.touched.size >= this.limits.maxLifetimesPerDelta) this.touchedOmitted++;
    else this.touched.add(destructor);
  }
}
