/**
 * Everything the dashboard, /metrics and the trace export know, gathered by subscribing to the
 * server's bus (events.ts): calls, page frames, the netstack and the reply path. It reaches into
 * no other module's state beyond what those events hand it (and the cache's stats), and every
 * structure is bounded (limits.ts), so it can stay attached to a busy server.
 */
import type { NetstackEvent, NetstackEventType } from '../../netstack/events.ts';
import type { CallOutcome } from '../../rpc/dispatch.ts';
import type { LifetimeRecording } from '../config.ts';
import type { ServerBus, ServerEvent, ServerEventType } from '../events.ts';
import type { PageCache, PageCacheStats, PageFrame } from '../pagecache/page-cache.ts';
import type { ConnectionSnapshot, FaultSettings, ReplyEvent, ReplyPathCounters } from '../reply/types.ts';
import { chromeTrace, type ChromeTrace } from './chrome-trace.ts';
import { Exposition, type Sample } from './exposition.ts';
import { PendingFills } from './fills.ts';
import { GRID_CODES, PageGrid, type GridState } from './grid.ts';
import { Histogram, type HistogramSnapshot } from './histogram.ts';
import { DEFAULT_TELEMETRY_LIMITS, PIN_DURATION_BUCKETS_MS, type TelemetryLimits } from './limits.ts';
import { LifetimeLog, type Lifetime, type LifetimeJson } from './lifetimes.ts';

export interface TelemetryOptions {
  pageCache: PageCache;
  bus: ServerBus;
  /** At most `max` connections' snapshots. */
  connections: (max: number) => ConnectionSnapshot[];
  faults: () => FaultSettings;
  replyMode: () => string;
  /** The reply path's own counts, for what no event reports (copies at the socket edge). */
  replyCounters?: () => Readonly<ReplyPathCounters>;
  /** ms, the same clock the event sources stamp their events with. */
  now: () => number;
  limits?: Partial<TelemetryLimits>;
  /** The path a client sees for a page-cache file (`dev:ino`), when the server knows it. */
  fileName?: (file: string) => string | undefined;
  /**
   * `always`: page lifetimes are recorded from the start. `watched`: for `lingerMs` after anything
   * read them (a dashboard's stream reads them every tick); the counters, histograms and the grid
   * are kept either way.
   */
  lifetimes?: LifetimeRecording;
  lingerMs?: number;
}


/** Event counts since start (Prometheus counters carry the same facts). */
export interface Counters {
  /** Calls by "program.PROCEDURE" (e.g. "nfs.READ"). */
  calls: Record<string, number>;
  drcHits: number;
  replyPins: number;
  replyReleases: number;
  pinOrphans: number;
  pagePins: number;
  pageFills: number;
  pageEvictions: number;
  cow: number;
  transmits: number;
  retransmits: number;
  staleRetransmits: number;
  drops: number;
  holds: number;
  acks: number;
  rtos: number;
  fastRetransmits: number;
  netOrphans: number;
  destructorFires: number;
}

export interface PageDetail {
  pfn: number;
  state: GridState;
  file: string | null;
  /** The file's path in its export (`/export/dir/name`), when the server knows it. */
  path: string | null;
  index: number;
  offset: number;
  pins: number;
  pinnedForMs: number | null;
  /** Replies whose pages the network holds now (pinned, or in legacy mode already returned), with the skbs holding them. */
  heldBy: LifetimeJson[];
  /** Released replies that held it, most recent last. */
  recent: LifetimeJson[];
}

export interface TelemetrySnapshot {
  t: number;
  mode: string;
  faults: FaultSettings;
  pageCache: { pages: number; stats: PageCacheStats; grid: string; codes: Record<GridState, string> };
  connections: ConnectionSnapshot[];
  counters: Counters;
  /** Reply pin durations, ms. */
  pinDuration: HistogramSnapshot;
  openLifetimes: number;
  lifetimesEvicted: number;
  lifetimes: LifetimeJson[];
}

/** What changed since the previous delta. Idempotent: cells, lifetimes and counters are absolute. */
export interface TelemetryDelta {
  seq: number;
  t: number;
  mode: string;
  faults: FaultSettings;
  counters: Counters;
  pinDuration: HistogramSnapshot;
  connections: ConnectionSnapshot[];
  openLifetimes: number;
  /** Changed cells, or (when many changed) the whole grid. */
  cells?: [number, string][];
  grid?: string;
  lifetimes: LifetimeJson[];
  /** Changed lifetimes left out by the per-delta bound; a client refetches the snapshot. */
  lifetimesOmitted: number;
}

/** Netstack event types the telemetry always listens to: they feed counters (the bus builds no event nobody wants). */
const NET_TYPES = [
  'segment-transmit',
  'segment-retransmit',
  'segment-hold',
  'segment-drop',
  'stale-retransmit',
  'ack',
  'rto',
  'fast-retransmit',
  'orphan',
  'destructor-fire',
] as const satisfies readonly NetstackEventType[];

/** Netstack event types only lifetimes need (which skbs hold a reply's pages): followed while recording. */
const HOLDER_TYPES = ['frag-ref', 'skb-clone', 'skb-free'] as const satisfies readonly NetstackEventType[];

/** One handler per event kind the telemetry follows; the kinds absent here are never built for it. */
type Handlers = { [T in ServerEventType]?: (e: Extract<ServerEvent, { type: T }>) => void };

const NET_COUNTER: Partial<Record<NetstackEventType, keyof Counters>> = {
  'segment-transmit': 'transmits',
  'segment-retransmit': 'retransmits',
  'segment-hold': 'holds',
  'segment-drop': 'drops',
  'stale-retransmit': 'staleRetransmits',
  rto: 'rtos',
  'fast-retransmit': 'fastRetransmits',
  orphan: 'netOrphans',
};

export class Telemetry {
  readonly limits: Readonly<TelemetryLimits>;
  private readonly grid: PageGrid;
  private readonly lifetimes: LifetimeLog;
  private readonly fills: PendingFills;
  private readonly pinDuration = new Histogram(PIN_DURATION_BUCKETS_MS);
  /** Event counts; page pins are the cache's own count. */
  private readonly counters: Omit<Counters, 'calls' | 'pagePins'>;
  private readonly calls = new Map<string, { prog: string; proc: string; n: number }>();
  private readonly unsubscribe: (() => void)[] = [];
  private seq = 0;
  /** Handlers of the per-page and per-frag events, subscribed only while lifetimes are recorded. */
  private readonly recordingHandlers: Handlers;
  private stopRecording: (() => void)[] | null = null;
  private lingerTimer: NodeJS.Timeout | null = null;
  /** snapshotBody's lifetimes array, as of the log's version. */
  private lifetimesBody: { version: number; bytes: Buffer } | null = null;
  /**
   * Destructors counted as fired from one of their two events (the netstack's fire, the reply's
   * release) while no lifetime records them, so the other is not counted again. Bounded like the
   * open lifetimes: both events come within the same turn or two.
   */
  private readonly firedUnrecorded = new Set<number>();

  constructor(private readonly opts: TelemetryOptions) {
    this.limits = Object.freeze({ ...DEFAULT_TELEMETRY_LIMITS, ...opts.limits });
    this.grid = new PageGrid(opts.pageCache);
    this.lifetimes = new LifetimeLog(this.limits);
    this.fills = new PendingFills(opts.pageCache.size);
    this.counters = {
      drcHits: 0,
      replyPins: 0,
      replyReleases: 0,
      pinOrphans: 0,
      pageFills: 0,
      pageEvictions: 0,
      cow: 0,
      transmits: 0,
      retransmits: 0,
      staleRetransmits: 0,
      drops: 0,
      holds: 0,
      acks: 0,
      rtos: 0,
      fastRetransmits: 0,
      netOrphans: 0,
      destructorFires: 0,
    };
    const onNet = (e: NetstackEvent) => this.onNet(e);
    const onReply = (e: ReplyEvent) => this.onReply(e);
    const handlers: Handlers = {
      ...this.pageCacheHandlers(),
      ...Object.fromEntries(NET_TYPES.map((type) => [type, onNet])),
      'reply-pin': onReply,
      'reply-release': onReply,
      'pin-orphan': onReply,
      'rpc-reply': (e) => this.recordCall(e.outcome),
    };
    this.unsubscribe.push(...subscribe(opts.bus, handlers));
    this.recordingHandlers = {
      ...Object.fromEntries(HOLDER_TYPES.map((type) => [type, (e: NetstackEvent) => this.lifetimes.net(e)])),
      // Grid cells change with pins (deltas to the dashboard) and a pin ends a pending fill.
      'page-pin': (e) => this.grid.renew(e.frame.pfn),
      'page-unpin': (e) => {
        this.fills.forget(e.frame.pfn);
        this.grid.touch(e.frame.pfn);
      },
    };
    if ((opts.lifetimes ?? 'always') === 'always') this.startRecording();
  }

  /** Lifetimes are being recorded now. */
  get recording(): boolean {
    return this.stopRecording !== null;
  }

  /**
   * Whatever reads lifetimes (state, page detail, trace, the dashboard stream's snapshot and ticks)
   * keeps them recorded for `lingerMs` more. What happened before is not known: lifetimes start
   * with the first pin seen.
   */
  private linger(): void {
    this.startRecording();
    if (this.opts.lifetimes !== 'watched') return;
    if (this.lingerTimer) this.lingerTimer.refresh();
    else {
      this.lingerTimer = setTimeout(() => {
        this.lingerTimer = null;
        this.stopIdleRecording();
      }, this.opts.lingerMs ?? 60_000);
      this.lingerTimer.unref();
    }
  }

  private startRecording(): void {
    if (this.stopRecording) return;
    this.fills.reset();
    this.stopRecording = subscribe(this.opts.bus, this.recordingHandlers);
  }

  private stopIdleRecording(): void {
    if (this.opts.lifetimes !== 'watched' || !this.stopRecording) return;
    for (const off of this.stopRecording) off();
    this.stopRecording = null;
    this.lifetimes.suspend();
    this.grid.clearOrphaned();
  }

  /**
   * A destructor fired, learned from either of its events: true the first time, so it is counted
   * once. A recorded lifetime remembers it; otherwise the set does, until the other event.
   */
  private fired(destructor: number, t: number): boolean {
    if (this.recording && this.lifetimes.get(destructor)) return this.lifetimes.fire(destructor, t);
    if (this.firedUnrecorded.delete(destructor)) return false;
    if (this.firedUnrecorded.size >= this.limits.maxOpenLifetimes) this.firedUnrecorded.delete(this.firedUnrecorded.values().next().value!);
    this.firedUnrecorded.add(destructor);
    return true;
  }

  /** One call's outcome (the dispatcher's `rpc-reply`). */
  recordCall(o: CallOutcome): void {
    const prog = o.progName;
    let key = `${prog}.${o.procName}`;
    let series = this.calls.get(key);
    if (!series && this.calls.size >= this.limits.maxProcedureSeries) {
      key = `${prog}.other`;
      series = this.calls.get(key);
    }
    if (!series) this.calls.set(key, (series = { prog, proc: key.slice(prog.length + 1), n: 0 }));
    series.n++;
    if (o.drc === 'hit') this.counters.drcHits++;
  }

  /** Everything, every lifetime held included (GET /api/state). */
  snapshot(): TelemetrySnapshot {
    this.linger();
    return this.snapshotOf(this.lifetimes.all());
  }

  /**
   * `{ ...snapshot(), server }` as JSON bytes (GET /api/state). Each lifetime's text is kept until
   * the lifetime changes, and the whole lifetimes array's bytes until any of them does: after a
   * burst of READs it is hundreds of kB, and joining it, then flattening and encoding the joined
   * string for the socket, on every poll (4 a second in bench:overload) made most of a quiet
   * server's garbage, ~1.3 MB of V8 heap per poll.
   */
  snapshotBody(server: Record<string, unknown>): Buffer {
    this.linger();
    const { lifetimes: _none, ...rest } = this.snapshotOf([]);
    const version = this.lifetimes.version;
    if (this.lifetimesBody?.version !== version) {
      const texts = this.lifetimes.all().map((l) => this.lifetimes.jsonText(l));
      this.lifetimesBody = { version, bytes: Buffer.from(`[${texts.join(',')}]`) };
    }
    return Buffer.concat([Buffer.from(`${JSON.stringify(rest).slice(0, -1)},"lifetimes":`), this.lifetimesBody.bytes, Buffer.from(`,"server":${JSON.stringify(server)}}`)]);
  }

  /**
   * The dashboard stream's snapshot: the newest lifetimes and a few older ones showing a stale
   * retransmit (limits.ts), so opening the dashboard costs the same however long the log is.
   */
  streamSnapshot(): TelemetrySnapshot {
    this.linger();
    const all = this.lifetimes.all().sort((a, b) => a.pinnedAt - b.pinnedAt);
    const newest = all.slice(-this.limits.maxStreamSnapshotLifetimes);
    const older = all.slice(0, all.length - newest.length);
    const stale = older.filter((l) => l.counts['stale-retransmit']).slice(-this.limits.maxStreamSnapshotStaleLifetimes);
    return this.snapshotOf([...stale, ...newest]);
  }

  private snapshotOf(lifetimes: Lifetime[]): TelemetrySnapshot {
    const pc = this.opts.pageCache;
    return {
      t: this.opts.now(),
      mode: this.opts.replyMode(),
      faults: this.opts.faults(),
      pageCache: { pages: pc.size, stats: pc.stats(), grid: this.grid.full(), codes: { ...GRID_CODES } },
      connections: this.connections(),
      counters: this.countersNow(),
      pinDuration: this.pinDuration.snapshot(),
      openLifetimes: this.lifetimes.openCount,
      lifetimesEvicted: this.lifetimes.evicted,
      lifetimes: lifetimes.map((l) => this.lifetimes.json(l)),
    };
  }

  /** Changes since the previous call; meant for one consumer (the event stream) on a timer. */
  delta(): TelemetryDelta {
    this.linger();
    const touched = this.lifetimes.drainTouched();
    const lifetimes: LifetimeJson[] = [];
    for (const id of touched.ids) {
      const l = this.lifetimes.get(id);
      if (l) lifetimes.push(this.lifetimes.json(l));
    }
    return {
      seq: ++this.seq,
      t: this.opts.now(),
      mode: this.opts.replyMode(),
      faults: this.opts.faults(),
      counters: this.countersNow(),
      pinDuration: this.pinDuration.snapshot(),
      connections: this.connections(),
      openLifetimes: this.lifetimes.openCount,
      ...this.grid.drain(this.limits.maxCellChangesPerDelta),
      lifetimes,
      lifetimesOmitted: touched.omitted,
    };
  }

  /** One frame, for the dashboard's click detail; undefined when no such frame. */
  pageDetail(pfn: number): PageDetail | undefined {
    this.linger();
    const f = this.opts.pageCache.frames[pfn];
    if (!f) return undefined;
    return {
      pfn,
      state: this.grid.state(pfn),
      file: f.file,
      path: (f.file !== null && this.opts.fileName?.(f.file)) || null,
      index: f.index,
      offset: f.index * f.buf.length,
      pins: f.pins,
      pinnedForMs: f.pins > 0 ? this.opts.now() - f.pinnedAt : null,
      heldBy: this.lifetimes.openFor(pfn).map((l) => this.lifetimes.json(l)),
      recent: this.lifetimes.recentFor(pfn).map((l) => this.lifetimes.json(l)),
    };
  }

  prometheus(): string {
    const c = this.countersNow();
    const x = new Exposition();
    x.counter(
      'pagelife_rpc_calls_total',
      'RPC calls handled, by program and procedure.',
      [...this.calls.values()].map((s) => ({ labels: { prog: s.prog, proc: s.proc }, value: s.n })),
    );
    const counter = (name: string, help: string, value: number) => x.counter(name, help, [{ value }]);
    counter('pagelife_rpc_drc_hits_total', 'Retransmitted calls answered from the duplicate request cache.', c.drcHits);
    counter('pagelife_reply_pins_total', 'READ replies whose pages were pinned for the network.', c.replyPins);
    counter('pagelife_reply_releases_total', 'Pinned READ replies whose pages were released.', c.replyReleases);
    counter('pagelife_reply_pin_orphans_total', 'Pinned replies orphaned by the pin budget (data copied, pages released early).', c.pinOrphans);
    counter(
      'pagelife_reply_socket_copies_total',
      'Deliveries copied at the socket edge because the socket already queued net.socketOrphanBytes (their pages let go at once).',
      this.opts.replyCounters?.().socketCopies ?? 0,
    );
    counter('pagelife_page_pins_total', 'Page frames going from unpinned to pinned.', c.pagePins);
    counter('pagelife_page_fills_total', 'Page frames filled from files.', c.pageFills);
    counter('pagelife_page_evictions_total', 'Page frames evicted for reuse.', c.pageEvictions);
    counter('pagelife_page_cow_total', 'Writes to network-pinned pages that copied the page first (copy-on-write).', c.cow);
    counter('pagelife_tcp_segments_transmitted_total', 'TCP data segments transmitted for the first time.', c.transmits);
    counter('pagelife_tcp_segments_retransmitted_total', 'TCP data segments retransmitted.', c.retransmits);
    counter('pagelife_tcp_stale_retransmits_total', 'Retransmitted bytes that differed from the first transmission (the bug).', c.staleRetransmits);
    counter('pagelife_path_segments_dropped_total', 'Segments dropped on the simulated path.', c.drops);
    counter('pagelife_path_segments_held_total', 'Segment clones held in the device queue.', c.holds);
    counter('pagelife_tcp_acks_total', 'Cumulative ACKs received by the sender.', c.acks);
    counter('pagelife_tcp_rto_total', 'Retransmission timeouts.', c.rtos);
    counter('pagelife_tcp_fast_retransmits_total', 'Fast retransmits (three duplicate ACKs).', c.fastRetransmits);
    counter('pagelife_skb_frag_orphans_total', 'Paged fragments orphaned (copied out) by the netstack.', c.netOrphans);
    counter('pagelife_frag_destructor_fires_total', 'Reply fragment destructors fired (last reference gone).', c.destructorFires);
    x.histogram('pagelife_reply_pin_duration_seconds', 'Time READ reply pages stayed pinned, pin to return to the cache.', this.pinDuration.snapshot(), 1e-3);
    const stats = this.opts.pageCache.stats();
    const states = ['free', 'clean', 'dirty', 'pinned', 'cow'] as const;
    x.gauge('pagelife_page_cache_frames', 'Page frames by state.', states.map((state) => ({ labels: { state }, value: stats[state] })));
    x.gauge('pagelife_reply_pinned', 'READ replies pinned now.', [{ value: c.replyPins - c.replyReleases }]);
    const conns = this.connections();
    const perConn = (pick: (c: ConnectionSnapshot) => number): Sample[] => conns.map((c) => ({ labels: { conn: c.id, remote: c.remote }, value: pick(c) }));
    x.gauge('pagelife_connection_bytes_in_flight', 'Bytes sent and not yet acknowledged.', perConn((c) => c.bytesInFlight));
    x.gauge('pagelife_connection_cwnd_bytes', 'Congestion window.', perConn((c) => c.cwnd));
    x.gauge('pagelife_connection_rto_seconds', 'Current retransmission timeout.', perConn((c) => c.rtoMs / 1000));
    x.gauge('pagelife_connection_pinned_replies', 'Replies whose pages the connection still pins.', perConn((c) => c.pinnedReplies));
    x.counter('pagelife_connection_dup_acks_received_total', 'Duplicate ACKs received from the peer.', perConn((c) => c.dupAcksIn));
    x.gauge(
      'pagelife_telemetry_entries',
      'Entries held by each bounded telemetry structure.',
      Object.entries(this.sizes()).map(([structure, value]) => ({ labels: { structure }, value })),
    );
    return x.text();
  }

  /** Entries held by each bounded structure. */
  sizes(): Record<string, number> {
    return this.lifetimes.sizes();
  }

  chromeTrace(): ChromeTrace {
    this.linger();
    return chromeTrace(this.lifetimes.all(), this.opts.now());
  }

  close(): void {
    for (const off of this.unsubscribe.splice(0)) off();
    for (const off of this.stopRecording ?? []) off();
    this.stopRecording = null;
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.lingerTimer = null;
  }

  private connections(): ConnectionSnapshot[] {
    return this.opts.connections(this.limits.maxConnectionsShown).slice(0, this.limits.maxConnectionsShown);
  }

  private countersNow(): Counters {
    const calls: Record<string, number> = {};
    for (const [k, s] of this.calls) calls[k] = s.n;
    return { calls, ...this.counters, pagePins: this.opts.pageCache.pinsTotal };
  }

  private pageCacheHandlers(): Handlers {
    const renew = (f: PageFrame) => this.grid.renew(f.pfn);
    return {
      'page-fill': (e) => {
        this.counters.pageFills++;
        if (this.recording) this.fills.record(e.frame.pfn, e.startedAt, this.opts.now());
        renew(e.frame);
      },
      'page-evict': (e) => {
        this.counters.pageEvictions++;
        renew(e.frame);
      },
      'page-cow': (e) => {
        this.counters.cow++;
        this.grid.touch(e.frame.pfn);
        renew(e.replacement);
      },
      'page-collapse': (e) => {
        this.grid.touch(e.frame.pfn);
        renew(e.replacement);
      },
      'page-free': (e) => renew(e.frame),
    };
  }

  private onNet(e: NetstackEvent): void {
    const counter = NET_COUNTER[e.type];
    if (counter) this.counters[counter as Exclude<keyof Counters, 'calls' | 'pagePins'>]++;
    else if (e.type === 'ack' && !e.lost) this.counters.acks++;
    else if (e.type === 'destructor-fire' && this.fired(e.destructor, e.t)) this.counters.destructorFires++;
    if (this.recording) this.lifetimes.net(e);
  }

  private onReply(e: ReplyEvent): void {
    switch (e.type) {
      case 'reply-pin':
        this.counters.replyPins++;
        if (!this.recording) return;
        // Legacy hands the pages back when sendpage returns, right after this event (docs/DESIGN.md, reply-path modes).
        this.lifetimes.pin(e, this.opts.replyMode() === 'legacy' ? e.t : null, this.fills.take(e.pfns));
        for (const pfn of e.pfns) this.grid.touch(pfn);
        return;
      case 'reply-release': {
        this.counters.replyReleases++;
        if (this.fired(e.destructor, e.t)) this.counters.destructorFires++;
        const l = this.recording ? this.lifetimes.release(e) : undefined;
        // How long the cache could not reuse the pages: in legacy mode, not at all.
        this.pinDuration.observe(l ? l.returnedAt! - l.pinnedAt : this.opts.replyMode() === 'legacy' ? 0 : e.heldMs);
        if (this.recording) for (const pfn of e.pfns) this.grid.touch(pfn);
        return;
      }
      case 'pin-orphan': {
        this.counters.pinOrphans++;
        if (!this.recording) return;
        const l = this.lifetimes.orphanPin(e);
        for (const pfn of l?.pfns ?? []) this.grid.markOrphaned(pfn);
        return;
      }
      default:
        return;
    }
  }
}

/** Subscribes each handler to its event type; returns the unsubscribers. */
function subscribe(bus: ServerBus, handlers: Handlers): (() => void)[] {
  return Object.entries(handlers).map(([type, fn]) => bus.on(type as ServerEventType, fn as (e: ServerEvent) => void));
}
