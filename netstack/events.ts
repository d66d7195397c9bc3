/**
 * One small typed event bus, and the netstack's event union.
 *
 * Emitting must cost nothing when nobody listens: hot paths ask `bus.wants(type)` (one
 * array load) before they build an event object, so an idle bus allocates nothing.
 */

type Listener<E> = (event: E) => void;

export class EventBus<E extends { type: string }> {
  private readonly byType = new Map<E['type'], Listener<E>[]>();
  private readonly any: Listener<E>[] = [];
  /** Listener count per type, plus the catch-all ones; the fast path reads only these. */
  private readonly counts = new Map<string, number>();
  private anyCount = 0;
  private total = 0;

  /** True when `emit` of an event of this type would reach someone; one field load on an idle bus. */
  wants(type: E['type']): boolean {
    return this.total !== 0 && (this.anyCount !== 0 || (this.counts.get(type) ?? 0) !== 0);
  }

  /** Subscribes to one event type, or to every event with '*'; returns the matching `off`. */
  on<T extends E['type']>(type: T, fn: Listener<Extract<E, { type: T }>>): () => void;
  on(type: '*', fn: Listener<E>): () => void;
  on(type: string, fn: Listener<never>): () => void {
    const l = fn as Listener<E>;
    this.total++;
    if (type === '*') {
      this.any.push(l);
      this.anyCount++;
    } else {
      const list = this.byType.get(type as E['type']) ?? [];
      list.push(l);
      this.byType.set(type as E['type'], list);
      this.counts.set(type, list.length);
    }
    return () => this.off(type as E['type'], l);
  }

  off(type: E['type'] | '*', fn: Listener<never>): void {
    const l = fn as Listener<E>;
    if (type === '*') {
      const i = this.any.indexOf(l);
      if (i >= 0) {
        this.any.splice(i, 1);
        this.anyCount--;
        this.total--;
      }
      return;
    }
    const list = this.byType.get(type);
    const i = list ? list.indexOf(l) : -1;
    if (!list || i < 0) return;
    list.splice(i, 1);
    this.counts.set(type, list.length);
    this.total--;
  }

  emit(event: E): void {
    const list = this.byType.get(event.type);
    if (list) for (const l of list.slice()) l(event);
    if (this.anyCount !== 0) for (const l of this.any.slice()) l(event);
  }
}

/** Fields every netstack event carries: connection id (0 = none) and time (ms, the clock's). */
interface Base {
  conn: number;
  t: number;
}

/** A sequence range [seq, end) in 32-bit TCP sequence space. */
interface SeqRange {
  seq: number;
  end: number;
}

export type NetstackEvent =
  | (Base & { type: 'skb-alloc'; skb: number; len: number })
  | (Base & { type: 'skb-clone'; skb: number; from: number })
  | (Base & { type: 'skb-copy'; skb: number; from: number; kind: 'pskb' | 'full' | 'segment' | 'split' })
  | (Base & { type: 'skb-free'; skb: number })
  | (Base & { type: 'frag-ref'; skb: number; page: number; destructor: number | null })
  | (Base & { type: 'frag-unref'; skb: number; page: number; destructor: number | null })
  | (Base & { type: 'destructor-fire'; destructor: number })
  | (Base & SeqRange & { type: 'segment-transmit'; skb: number; destructors: number[] })
  | (Base & SeqRange & { type: 'segment-retransmit'; skb: number; destructors: number[]; reason: 'rto' | 'fast' | 'recovery' })
  | (Base & SeqRange & { type: 'segment-hold'; skb: number; ms: number })
  | (Base & SeqRange & { type: 'segment-drop'; reason: 'loss' | 'scripted' | 'window' })
  | (Base & SeqRange & { type: 'segment-deliver' })
  | (Base & { type: 'ack'; ack: number; window: number; dup: boolean; lost: boolean })
  | (Base & { type: 'rto'; seq: number; rto: number; backoff: number })
  | (Base & SeqRange & { type: 'fast-retransmit' })
  | (Base & SeqRange & { type: 'stale-retransmit' })
  | (Base & { type: 'orphan'; skb: number; destructor: number; bytes: number })
  | (Base & { type: 'datagram-complete'; skb: number; len: number });

export type NetstackEventType = NetstackEvent['type'];

export type NetstackBus = EventBus<NetstackEvent>;
