/**
 * A synthetic source of the events a READ produces — through the real PageCache and the real
 * server bus, with the netstack's and reply path's events written by hand in the order they emit them —
 * so telemetry, the HTTP API and the dashboard can be tested without the live reply path.
 */
import type { NetstackEvent } from '../../netstack/events.ts';
import { createServerBus, type ServerBus, type ServerEvent } from '../../server/events.ts';
import { PAGE_SIZE, PageCache, type FileSource } from '../../server/pagecache/page-cache.ts';
import type { ConnectionSnapshot, FaultSettings, ReplyEvent } from '../../server/reply/types.ts';
import { DEFAULT_FAULT_SETTINGS } from '../../server/reply/faults.ts';
import { Telemetry } from '../../server/telemetry/telemetry.ts';
import type { TelemetryLimits } from '../../server/telemetry/limits.ts';
import type { TelemetryOptions } from '../../server/telemetry/telemetry.ts';

export const DEFAULT_FAULTS: FaultSettings = { ...DEFAULT_FAULT_SETTINGS };

export function memoryFile(key: string, size: number): FileSource {
  const data = Buffer.alloc(size, key.charCodeAt(0));
  return {
    key,
    version: '1',
    async read(buf, position) {
      if (position >= data.length) return 0;
      return data.copy(buf, 0, position, Math.min(data.length, position + buf.length));
    },
  };
}

const REPLY_KINDS = new Set<string>(['reply-pin', 'reply-release', 'pin-orphan', 'connection-open', 'faults-change', 'faults-one-off'] satisfies ReplyEvent['type'][]);
const isReply = (e: ServerEvent): e is ReplyEvent => REPLY_KINDS.has(e.type);
const isNet = (e: ServerEvent): e is NetstackEvent => !isReply(e) && !e.type.startsWith('page-') && !e.type.startsWith('rpc-');

/** One layer's side of the server bus: it raises its events there and sees only its own kinds. */
class LayerBus<E extends ServerEvent> {
  constructor(
    private readonly bus: ServerBus,
    private readonly mine: (e: ServerEvent) => e is E,
  ) {}

  wants(type: E['type']): boolean {
    return this.bus.wants(type);
  }

  emit(e: E): void {
    this.bus.emit(e);
  }

  on(type: '*', fn: (e: E) => void): () => void {
    return this.bus.on(type, (e) => {
      if (this.mine(e)) fn(e);
    });
  }
}

export interface ReadScript {
  conn?: number;
  file: FileSource;
  offset: number;
  count: number;
  mode?: 'destructor' | 'legacy';
  /** Lose the first transmission; it is retransmitted after an RTO of `rtoMs`. */
  drop?: boolean;
  rtoMs?: number;
  /** Hold the first clone in the device queue this long. */
  holdMs?: number;
  /** In legacy mode: the retransmission carries other bytes (the receiver reports a stale retransmit). */
  stale?: boolean;
  /** Round trip: transmit to ACK. */
  rttMs?: number;
  /** Leave the reply pinned (no ACK, no release): for open lifetimes and the grid. */
  leavePinned?: boolean;
  /** The pin budget orphans the reply before its ACK. */
  orphan?: boolean;
}

export interface ReadDone {
  destructor: number;
  xid: number;
  pfns: number[];
  seq: number;
  end: number;
}

export class SyntheticWorld {
  t = 1000;
  readonly cache: PageCache;
  /** The server's bus, as createCore makes it; the page cache raises on it. */
  readonly bus = createServerBus();
  /** Where this world raises the netstack's and the reply path's events. */
  readonly net = new LayerBus(this.bus, isNet);
  readonly reply = new LayerBus(this.bus, isReply);
  readonly telemetry: Telemetry;
  faults: FaultSettings = { ...DEFAULT_FAULTS };
  mode = 'destructor';
  conns: ConnectionSnapshot[] = [];
  private nextSkb = 1;
  private nextDestructor = 1;
  private nextXid = 0x1000;
  private readonly sndNxt = new Map<number, number>();

  constructor(opts: { pages?: number; limits?: Partial<TelemetryLimits>; recording?: Pick<TelemetryOptions, 'lifetimes' | 'lingerMs'> } = {}) {
    this.cache = new PageCache({ pages: opts.pages ?? 64, now: () => this.t, events: this.bus });
    this.telemetry = new Telemetry({
      pageCache: this.cache,
      bus: this.bus,
      connections: () => this.conns,
      faults: () => this.faults,
      replyMode: () => this.mode,
      now: () => this.t,
      limits: opts.limits,
      ...opts.recording,
    });
  }

  /** One READ reply's life, from page lookup to release. */
  async read(s: ReadScript): Promise<ReadDone> {
    const conn = s.conn ?? 1;
    const mode = s.mode ?? 'destructor';
    const rtt = s.rttMs ?? 2;
    const first = Math.floor(s.offset / PAGE_SIZE);
    const last = Math.floor((s.offset + s.count - 1) / PAGE_SIZE);
    const frames = await this.cache.getPages(s.file, first, last);
    const pfns = frames.map((f) => f.pfn);
    const destructor = this.nextDestructor++;
    const xid = this.nextXid++;
    const seq = this.sndNxt.get(conn) ?? 1;
    const end = (seq + s.count + 128) >>> 0;
    this.sndNxt.set(conn, end);
    const pinnedAt = this.t;
    const skb = this.nextSkb++;
    this.net.emit({ type: 'skb-alloc', conn, t: this.t, skb, len: 128 });
    for (const pfn of pfns) this.net.emit({ type: 'frag-ref', conn, t: this.t, skb, page: pfn, destructor });
    const clone = this.transmit(conn, skb, seq, end, destructor, null);
    if (s.holdMs) this.net.emit({ type: 'segment-hold', conn, t: this.t, seq, end, skb: clone, ms: s.holdMs });
    // The reply path announces the pin after sendpage returns, which may already have transmitted.
    this.reply.emit({ type: 'reply-pin', t: pinnedAt, conn, xid, destructor, pfns, file: s.file.key, offset: s.offset, bytes: s.count });
    // As the reply path does: pages back to the cache when the destructor fires, or (legacy) at once.
    const toCache = () => {
      for (const f of frames) this.cache.unpin(f);
    };
    const destructorFired = () => {
      if (mode !== 'legacy') toCache();
      this.reply.emit({ type: 'reply-release', t: this.t, conn, xid, destructor, pfns, heldMs: this.t - pinnedAt, mode });
    };
    if (mode === 'legacy') toCache();
    if (s.drop) {
      this.t += 0.5;
      this.net.emit({ type: 'segment-drop', conn, t: this.t, seq, end, reason: 'loss' });
      this.net.emit({ type: 'skb-free', conn, t: this.t, skb: clone });
      this.t += s.rtoMs ?? 200;
      this.net.emit({ type: 'rto', conn, t: this.t, seq, rto: s.rtoMs ?? 200, backoff: 1 });
      const again = this.transmit(conn, skb, seq, end, destructor, 'rto');
      if (mode === 'legacy' && s.stale) this.net.emit({ type: 'stale-retransmit', conn, t: this.t + rtt / 2, seq, end });
      this.net.emit({ type: 'skb-free', conn, t: this.t, skb: again });
    } else {
      this.net.emit({ type: 'skb-free', conn, t: this.t + (s.holdMs ?? 0), skb: clone });
    }
    if (s.orphan && mode === 'destructor') {
      // The pin budget copies the frags out: the destructor fires, then the orphaning is reported.
      this.t += 1;
      destructorFired();
      this.reply.emit({ type: 'pin-orphan', t: this.t, conn, destructor, bytes: s.count, reason: 'budget-age' });
      return { destructor, xid, pfns, seq, end };
    }
    if (s.leavePinned) return { destructor, xid, pfns, seq, end };
    this.t += Math.max(rtt, s.holdMs ?? 0);
    this.net.emit({ type: 'ack', conn, t: this.t, ack: end, window: 65535, dup: false, lost: false });
    for (const pfn of pfns) this.net.emit({ type: 'frag-unref', conn, t: this.t, skb, page: pfn, destructor });
    this.net.emit({ type: 'skb-free', conn, t: this.t, skb });
    this.net.emit({ type: 'destructor-fire', conn, t: this.t, destructor });
    destructorFired();
    this.t += 0.1;
    return { destructor, xid, pfns, seq, end };
  }

  /** A write to the file's cached pages (copy-on-write where the network pins them). */
  write(file: FileSource, offset: number, data: Buffer): void {
    this.cache.writeThrough(file, offset, data, true);
  }

  private transmit(conn: number, skb: number, seq: number, end: number, destructor: number, retransmit: 'rto' | null): number {
    const clone = this.nextSkb++;
    this.net.emit({ type: 'skb-clone', conn, t: this.t, skb: clone, from: skb });
    if (retransmit) this.net.emit({ type: 'segment-retransmit', conn, t: this.t, seq, end, skb: clone, destructors: [destructor], reason: retransmit });
    else this.net.emit({ type: 'segment-transmit', conn, t: this.t, seq, end, skb: clone, destructors: [destructor] });
    return clone;
  }
}
