/**
 * One small typed event bus, and the netstack's event union.
 *
 * The server makes one bus for every layer; each layer is handed it as an `EventSink` of its own
 * event kinds only (a discriminated union on `type`), so it can raise nothing else and needs to
 * know nothing of the others.
 *
 * Emitting must cost nothing when nobody listens: hot paths ask `bus.wants(type)` (a field load
 * on an idle bus, one property load otherwise) before they build an event object.
 */

type Listener<E> = (event: E) => void;

/** The raising side of a bus, narrowed to the kinds one layer emits. */
export interface EventSink<E extends { type: string }> {
  /** True when `emit` of an event of this type would reach someone. */
  wants(type: E['type']): boolean;
  emit(event: E): void;
}

export class EventBus<E extends { type: string }> implements EventSink<E> {
  /**
   * Listener lists by type, replaced, never changed in place, so emit walks them without a copy. A
   * plain object whose keys stay once added (an emptied list becomes undefined): its shape settles
   * when the server subscribes at startup, and `wants` with a constant type compiles to one
   * property load. A Map's lookup per call was 1.5 % of a 1 MiB READ's CPU (perf): a READ asks
   * about a thousand times, for each page's pin, frag references and unpin. (Event types are this
   * code's own names, none of them a member of Object.prototype.)
   */
  private readonly byType: { [type: string]: readonly Listener<E>[] | undefined } = {};
  private any: readonly Listener<E>[] = [];
  private total = 0;

  wants(type: E['type']): boolean {
    return this.total !== 0 && (this.any.length !== 0 || this.byType[type] !== undefined);
  }

  /** Subscribes to one event type, or to every event with '*'; returns the matching `off`. */
  on<T extends E['type']>(type: T, fn: Listener<Extract<E, { type: T }>>): () => void;
  on(type: '*', fn: Listener<E>): () => void;
  on(type: string, fn: Listener<never>): () => void {
    const l = fn as Listener<E>;
    this.total++;
    if (type === '*') this.any = [...this.any, l];
    else this.byType[type] = [...(this.byType[type] ?? []), l];
    return () => this.off(type as E['type'], l);
  }

  off(type: E['type'] | '*', fn: Listener<never>): void {
    const l = fn as Listener<E>;
    const list = type === '*' ? this.any : this.byType[type];
    const i = list ? list.indexOf(l) : -1;
    if (!list || i < 0) return;
    const rest = list.filter((_, k) => k !== i);
    this.total--;
    if (type === '*') this.any = rest;
    else this.byType[type] = rest.length === 0 ? undefined : rest;
  }

  emit(event: E): void {
    const list = this.byType[event.type];
    if (list !== undefined) for (const l of list) l(event);
    if (this.any.length !== 0) for (const l of this.any) l(event);
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

/** What the netstack raises its events on. */
export type NetstackBus = EventSink<NetstackEvent>;
