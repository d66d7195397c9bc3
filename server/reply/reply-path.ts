/**
 * The reply path: every RPC reply leaves through netstack. READ data goes by reference
 * (sendpage of page-cache pages with one FragDestructor per reply: lent-reply.ts); what the
 * simulated receiver delivers in order is written to the real socket (socket-stream.ts). The
 * reply mode decides when the page cache gets its pages back (docs/DESIGN.md, "Reply-path modes").
 *
 * This module owns the table of conduits (conduit.ts): it makes them, gives each its netstack
 * pair, runs the pin budget over them (budget.ts) on a timer and when a send says a reply was
 * lent, sets faults, and lets closed ones go once drained.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../../netstack/clock.ts';
import { TcpPair, type TcpPairOptions } from '../../netstack/connection.ts';
import type { EventSink, NetstackEvent } from '../../netstack/events.ts';
import type { PathFaults } from '../../netstack/path.ts';
import { DEFAULT_FLOW, type PcapWriter } from '../../netstack/pcap.ts';
import type { RpcReplyOut, TransportInfo } from '../../rpc/dispatch.ts';
import type { DatagramSink } from '../../rpc/udp-server.ts';
import type { PageCache } from '../pagecache/page-cache.ts';
import { overBudget, type PinBudget } from './budget.ts';
import { StackConnection, TcpConnection, UdpFlow, type Conduit, type ConduitContext, type StackLink } from './conduit.ts';
import type { ReplyMode } from './mode.ts';
import { BusyPoll } from './busy-poll.ts';
import { PageMap } from './page-map.ts';
import { socketStream, type ByteStream } from './socket-stream.ts';
import type { ConnectionSnapshot, FaultSettings, ReplyEvent, ReplyPathCounters } from './types.ts';

/** Knobs of the live path (server/config.ts holds the defaults). */
export interface ReplyNetOptions {
  mss: number;
  /** Segments per send-side skb (GSO), segmented at the device. */
  gsoSegs: number;
  /** TSO/GRO: GSO skbs cross the wire whole unless a fault acts on single segments. */
  tso: boolean;
  rcvWnd: number;
  /** Bytes queued on a real socket past which delivered data is copied and its pages let go. */
  socketOrphanBytes: number;
  /** Bytes delivered in one turn past which they are written to the socket at once. */
  socketFlushBytes: number;
  /** UDP destinations with a device of their own; the least recently used goes beyond it. */
  maxUdpFlows: number;
  /** µs the event loop keeps polling after a reply left for a real socket (busy-poll.ts); 0: off. */
  busyPollUs: number;
}

export interface ReplyPathOptions {
  /** One clock for the page cache, the stack and the events, so their times compare (virtual in replays). */
  clock: Clock;
  mode: ReplyMode;
  pageCache: PageCache;
  faults: FaultSettings;
  net: ReplyNetOptions;
  budget: PinBudget;
  /** The server's bus: the connections' netstack events and this path's own go on it. */
  bus: EventSink<NetstackEvent | ReplyEvent>;
  log: Logger;
  /** Records what crosses each connection's simulated wire (fixture replays: `--pcap`). */
  pcap?: PcapWriter;
}

/** The path faults of a connection, from the server's fault settings. */
export function pathFaults(f: FaultSettings): Partial<PathFaults> {
  return { loss: f.loss, ackLoss: f.ackLoss, delay: f.delay, jitter: f.jitter, reorder: f.reorder, duplicate: f.duplicate, deviceHold: f.deviceHold };
}

export class ReplyPath {
  readonly clock: Clock;
  readonly mode: ReplyMode;
  readonly counters: ReplyPathCounters = { repliesByReference: 0, repliesCopied: 0, destructorsFired: 0, budgetOrphanedFrags: 0, budgetOrphanRuns: 0, socketCopies: 0 };
  private readonly ctx: ConduitContext;
  private readonly conduits = new Map<number, Conduit>();
  /** Replies to real sockets keep the event loop polling briefly (replays' in-process streams do not). */
  private readonly busyPoll: BusyPoll;
  /** The netstack pair behind each conduit, for replays that script faults on one. */
  private readonly pairs = new Map<number, TcpPair>();
  private readonly flows = new Map<string, UdpFlow>();
  private nextId = 1;
  private readonly faults: FaultSettings;
  private budgetTimer: TimerHandle | null = null;
  private closedStale = 0;

  constructor(private readonly opts: ReplyPathOptions) {
    this.clock = opts.clock;
    this.mode = opts.mode;
    this.faults = { ...opts.faults };
    this.busyPoll = new BusyPoll(opts.net.busyPollUs);
    this.ctx = {
      clock: opts.clock,
      mode: opts.mode,
      pages: new PageMap(opts.pageCache),
      events: opts.bus,
      counters: this.counters,
      socketOrphanBytes: opts.net.socketOrphanBytes,
      onLent: () => {
        if (opts.pageCache.pinned > this.pinLimit()) this.enforceBudget();
      },
    };
    this.armBudget();
  }

  /** The budget check runs on the path's clock, so a replay on a virtual clock sees it too. */
  private armBudget(): void {
    this.budgetTimer = this.clock.setTimer(this.opts.budget.checkIntervalMs, () => {
      this.enforceBudget();
      this.sweepRetired();
      if (this.budgetTimer) this.armBudget();
    });
  }

  /** The ReplySink of a new TCP connection (RpcTcpServer's sinkFor). */
  sinkFor = (socket: Socket, info: TransportInfo): TcpConnection =>
    this.attach(socketStream(socket, this.opts.net.socketFlushBytes, this.busyPoll), `${info.remoteAddress}:${info.remotePort}`);

  /** A connection whose delivered bytes go to `out` (a socket, or an in-process client in replays). */
  attach(out: ByteStream, remote: string): TcpConnection {
    const id = this.nextId++;
    const c = new TcpConnection(this.ctx, id, remote, out, (onDeliver) => this.pair(id, { onDeliver }));
    this.conduits.set(id, c);
    const events = this.opts.bus;
    if (events.wants('connection-open')) events.emit({ type: 'connection-open', t: this.clock.now(), conn: id, remote, streamStart: c.streamStart });
    return c;
  }

  /**
   * A TCP connection whose stack lives outside the reply path (the real wire): replies go through
   * `link`, which took the id `id` (from allocateId) for its events.
   */
  attachStack(id: number, link: StackLink, remote: string): StackConnection {
    const c = new StackConnection(this.ctx, id, remote, link);
    this.conduits.set(id, c);
    return c;
  }

  /** A connection id from the table's sequence (the wire's sockets take theirs here too). */
  allocateId = (): number => this.nextId++;

  /** UDP replies: one skb each through the destination's device queue (RpcUdpServer's sink). */
  sendDatagram: DatagramSink = (reply, to, socket) =>
    this.sendDatagramTo(reply, `${to.address}:${to.port}`, (b) => {
      socket.send(b, to.port, to.address);
      this.busyPoll.kick();
    });

  /** A UDP reply to the flow `key`; `send` puts a datagram that left the device on the wire. */
  sendDatagramTo(reply: RpcReplyOut, key: string, send: (datagram: Buffer) => void): void {
    let flow = this.flows.get(key);
    if (flow) this.flows.delete(key);
    else {
      const id = this.nextId++;
      flow = new UdpFlow(this.ctx, id, key, this.pair(id, { onDatagram: send }));
      this.conduits.set(id, flow);
      this.trimFlows();
    }
    this.flows.set(key, flow);
    flow.send(reply);
  }

  private pair(id: number, extra: Partial<Pick<TcpPairOptions, 'onDeliver' | 'onDatagram'>>): TcpPair {
    const o = this.opts;
    const pair = new TcpPair({
      conn: id,
      clock: this.clock,
      seed: (this.faults.seed + id) >>> 0,
      bus: o.bus,
      mss: o.net.mss,
      gsoSegs: o.net.gsoSegs,
      tso: o.net.tso,
      rcvWnd: o.net.rcvWnd,
      wire: 'reference',
      // Destructor and copy modes keep a reply's bytes as they were until the stack is done with
      // them, so only a repeat needs a first copy to compare with; legacy's reused pages can change
      // a first copy on its way, which the check must see.
      firstCopies: o.mode === 'legacy' ? 'always' : 'with-faults',
      faults: pathFaults(this.faults),
      // One capture, one TCP flow per connection: the client port tells them apart.
      ...(o.pcap ? { pcap: o.pcap, flow: { ...DEFAULT_FLOW, clientPort: DEFAULT_FLOW.clientPort + id } } : {}),
      ...extra,
    });
    this.pairs.set(id, pair);
    return pair;
  }

  /** The netstack pair behind connection or flow `id` while it is in the table (replays script its faults). */
  netPair(id: number): TcpPair | undefined {
    return this.pairs.get(id);
  }

  private pinLimit(): number {
    return Math.floor(this.opts.budget.maxPinnedShare * this.opts.pageCache.size);
  }

  /** Runs the pin budget (budget.ts) over every conduit; returns frags orphaned. */
  enforceBudget(): number {
    const { pageCache, log, bus: events } = this.opts;
    const now = this.clock.now();
    const limit = this.pinLimit();
    let total = 0;
    for (const { holder: c, reason } of overBudget(this.conduits.values(), this.opts.budget, { now, limit, pinned: () => pageCache.pinned })) {
      const held = c.held();
      const n = c.orphanHeld();
      if (n === 0) continue;
      total += n;
      if (events.wants('pin-orphan')) {
        for (const r of held) if (!c.holds(r)) events.emit({ type: 'pin-orphan', t: now, conn: c.id, destructor: r.destructor.id, bytes: r.bytes, reason });
      }
      log.info({ conn: c.id, remote: c.remote, frags: n, reason: reason === 'budget-age' ? 'age' : 'share', pinned: pageCache.pinned, limit }, 'reply path: pin budget orphaned fragments');
    }
    if (total > 0) {
      this.counters.budgetOrphanedFrags += total;
      this.counters.budgetOrphanRuns++;
    }
    return total;
  }

  /** The first `max` connections (oldest first): a snapshot of thousands costs the event loop milliseconds. */
  connections(max = Infinity): ConnectionSnapshot[] {
    const out: ConnectionSnapshot[] = [];
    for (const c of this.conduits.values()) {
      if (out.length >= max) break;
      const s = c.link.stats();
      out.push({
        id: c.id,
        remote: c.remote,
        transport: c.transport,
        bytesInFlight: s.bytesInFlight,
        cwnd: s.cwnd,
        ssthresh: s.ssthresh,
        srttMs: s.srtt,
        rtoMs: s.rto,
        retransmits: s.retransmits,
        staleRetransmits: s.staleRetransmits,
        dupAcksIn: s.dupAcksIn,
        pinnedReplies: c.lentReplies,
      });
    }
    return out;
  }

  /** Stale retransmits seen by every connection, closed ones included. */
  staleRetransmits(): number {
    let n = this.closedStale;
    // The pair's receiver holds the count stats() reports, without building all of stats() (thousands of connections).
    for (const c of this.conduits.values()) n += this.pairs.get(c.id)?.receiver.staleRetransmits ?? c.link.stats().staleRetransmits;
    return n;
  }

  getFaults(): FaultSettings {
    return { ...this.faults };
  }

  /** Changes the path faults of every connection, now and to come. */
  setFaults(partial: Partial<FaultSettings>): FaultSettings {
    const events = this.opts.bus;
    if (events.wants('faults-change')) events.emit({ type: 'faults-change', t: this.clock.now(), set: { ...partial } });
    Object.assign(this.faults, partial);
    for (const c of this.conduits.values()) c.link.setFaults(pathFaults(this.faults));
    return this.getFaults();
  }

  /** One-off faults on one connection, or on all when `conn` is absent; false if it is unknown. */
  oneOff(o: { conn?: number; dropNext?: number; holdNextMs?: number }): boolean {
    const events = this.opts.bus;
    if (events.wants('faults-one-off')) events.emit({ type: 'faults-one-off', t: this.clock.now(), conn: o.conn ?? null, dropNext: o.dropNext ?? 0, holdNextMs: o.holdNextMs ?? 0 });
    const targets = o.conn === undefined ? [...this.conduits.values()].filter((c) => c.transport === 'tcp') : [this.conduits.get(o.conn)].filter((c) => c !== undefined);
    if (targets.length === 0 && o.conn !== undefined) return false;
    for (const c of targets) {
      if (o.dropNext) c.link.dropNext(o.dropNext);
      if (o.holdNextMs) c.link.holdNext(o.holdNextMs);
    }
    return true;
  }

  /**
   * Closed connections and retired flows leave once their model has drained. Checked on the
   * budget tick rather than awaited with drain(), which on a virtual clock would run the clock.
   */
  private sweepRetired(): void {
    // Deleting the entry just visited is safe while iterating a Map: no copy of the table per tick.
    for (const c of this.conduits.values()) {
      if (!c.retired || !c.link.drained) continue;
      this.closedStale += c.link.stats().staleRetransmits;
      this.conduits.delete(c.id);
      this.pairs.delete(c.id);
    }
  }

  /** Replies lent right now (the tests' "pins never leak" check reads the cache too). */
  inflightReplies(): number {
    let n = 0;
    for (const c of this.conduits.values()) n += c.lentReplies;
    return n;
  }

  private trimFlows(): void {
    while (this.flows.size > this.opts.net.maxUdpFlows) {
      const [key, flow] = this.flows.entries().next().value as [string, UdpFlow];
      this.flows.delete(key);
      flow.retire();
    }
  }

  close(): void {
    if (this.budgetTimer) this.clock.clearTimer(this.budgetTimer);
    this.budgetTimer = null;
    for (const c of [...this.conduits.values()]) if (c instanceof TcpConnection || c instanceof StackConnection) c.close();
    for (const f of this.flows.values()) f.retire();
    this.flows.clear();
  }
}
