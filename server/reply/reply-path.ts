/**
 * The reply path: every RPC reply leaves through netstack. READ data goes by reference
 * (sendpage of page-cache pages with one FragDestructor per reply); what the simulated receiver
 * delivers in order is written to the real socket. The reply mode decides when the page cache
 * gets its pages back (DESIGN.md, "Reply-path modes").
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../../netstack/clock.ts';
import { TcpPair, type PageFragment } from '../../netstack/connection.ts';
import { FragDestructor } from '../../netstack/destructor.ts';
import type { NetstackBus } from '../../netstack/events.ts';
import type { PathFaults } from '../../netstack/path.ts';
import { DEFAULT_FLOW, type PcapWriter } from '../../netstack/pcap.ts';
import type { RpcReplyOut, TransportInfo } from '../../rpc/dispatch.ts';
import { recordMark } from '../../rpc/record.ts';
import type { ReplySink } from '../../rpc/reply-sink.ts';
import type { DatagramSink } from '../../rpc/udp-server.ts';
import type { ReplyMode } from '../config.ts';
import { PAGE_SIZE, type PageCache, type PageFrame } from '../pagecache/page-cache.ts';
import { PageMap } from './page-map.ts';
import type { ConnectionSnapshot, FaultSettings, ReplyBus } from './types.ts';

/** Knobs of the live path (server/config.ts holds the defaults). */
export interface ReplyNetOptions {
  mss: number;
  rcvWnd: number;
  /** Bytes queued on a real socket past which delivered data is copied and its pages let go. */
  socketOrphanBytes: number;
  /** UDP destinations with a device of their own; the least recently used goes beyond it. */
  maxUdpFlows: number;
}

export interface PinBudget {
  /** Pinned pages may take at most this share of the cache before the oldest pins are orphaned. */
  maxPinnedShare: number;
  /** A pin older than this is orphaned (a peer that never acknowledges). */
  maxPinAgeMs: number;
  checkIntervalMs: number;
}

export interface ReplyPathOptions {
  /** One clock for the page cache, the stack and the events, so their times compare (virtual in replays). */
  clock: Clock;
  mode: ReplyMode;
  pageCache: PageCache;
  faults: FaultSettings;
  net: ReplyNetOptions;
  budget: PinBudget;
  netBus: NetstackBus;
  replyBus: ReplyBus;
  log: Logger;
  /** Records what crosses each connection's simulated wire (fixture replays: `--pcap`). */
  pcap?: PcapWriter;
}

/** One reply whose pages the network holds. */
interface InFlightReply {
  xid: number;
  destructor: FragDestructor;
  frames: PageFrame[];
  /** `frames` as a set (a reply's chunks may share a frame). */
  frameSet: Set<PageFrame>;
  pinnedAt: number;
  bytes: number;
  /** Released to the page cache already (legacy mode: at sendpage return). */
  released: boolean;
  release: () => void;
}

export interface ReplyPathCounters {
  repliesByReference: number;
  repliesCopied: number;
  destructorsFired: number;
  budgetOrphanedFrags: number;
  budgetOrphanRuns: number;
  socketCopies: number;
}

/** The path faults of a connection, from the server's fault settings. */
export function pathFaults(f: FaultSettings): Partial<PathFaults> {
  return { loss: f.loss, ackLoss: f.ackLoss, delay: f.delay, jitter: f.jitter, reorder: f.reorder, duplicate: f.duplicate, deviceHold: f.deviceHold };
}

/**
 * What the reply path needs of a connection's TCP: a TcpPair (the simulated peer), or a TCP
 * that talks to a real peer on the wire (netstack/wire's WireTcpSock).
 */
export type ConduitStack = Pick<TcpPair, 'sender' | 'sendmsg' | 'sendpage' | 'setFaults' | 'dropNext' | 'holdNext' | 'orphanFrags' | 'stats' | 'drained'>;

/** A connection (TCP) or a flow (UDP destination) and the replies it holds. */
abstract class Conduit {
  readonly inflight = new Map<number, InFlightReply>();
  /** Closed (TCP) or evicted (UDP): leaves the table once drained. */
  retired = false;
  abstract readonly pair: ConduitStack;
  abstract readonly transport: 'tcp' | 'udp';

  constructor(
    readonly id: number,
    readonly remote: string,
  ) {}

  /** Time the oldest reply still held was pinned; Infinity when none. */
  oldestPin(): number {
    for (const r of this.inflight.values()) if (!r.released) return r.pinnedAt;
    return Infinity;
  }

  /** skb_orphan_frags on what this conduit holds for long (TcpPair.orphanFrags says which skbs). */
  orphanHeld(): number {
    return this.pair.orphanFrags();
  }
}

export class ReplyPath {
  readonly clock: Clock;
  readonly counters: ReplyPathCounters = { repliesByReference: 0, repliesCopied: 0, destructorsFired: 0, budgetOrphanedFrags: 0, budgetOrphanRuns: 0, socketCopies: 0 };
  private readonly pages: PageMap;
  private readonly conduits = new Map<number, Conduit>();
  private readonly flows = new Map<string, UdpFlow>();
  private nextId = 1;
  private faults: FaultSettings;
  private budgetTimer: TimerHandle | null = null;

  constructor(readonly o: ReplyPathOptions) {
    this.clock = o.clock;
    this.pages = new PageMap(o.pageCache);
    this.faults = { ...o.faults };
    this.armBudget();
  }

  /** The budget check runs on the path's clock, so a replay on a virtual clock sees it too. */
  private armBudget(): void {
    this.budgetTimer = this.clock.setTimer(this.o.budget.checkIntervalMs, () => {
      this.enforceBudget();
      this.sweepRetired();
      if (this.budgetTimer) this.armBudget();
    });
  }

  get mode(): ReplyMode {
    return this.o.mode;
  }

  /** The ReplySink of a new TCP connection (RpcTcpServer's sinkFor). */
  sinkFor = (socket: Socket, info: TransportInfo): ReplySink & { id: number } => this.attach(socketStream(socket), `${info.remoteAddress}:${info.remotePort}`);

  /** A connection whose delivered bytes go to `out` (a socket, or an in-process client in replays). */
  attach(out: ByteStream, remote: string): ReplySink & { id: number } {
    const c = new TcpConduit(this, this.nextId++, remote, out);
    this.conduits.set(c.id, c);
    return c;
  }

  /**
   * A TCP connection whose stack lives outside the reply path (the real wire): replies go
   * through `stack`, which was given the id `id` (from `allocateId`) for its events.
   */
  attachStack(id: number, stack: ConduitStack, remote: string): ReplySink & { id: number } {
    const c = new StackConduit(this, id, remote, stack);
    this.conduits.set(c.id, c);
    return c;
  }

  /** A connection id from the table's sequence (the wire's sockets take theirs here too). */
  allocateId = (): number => this.nextId++;

  /** UDP replies: one skb each through the destination's device queue (RpcUdpServer's sink). */
  sendDatagram: DatagramSink = (reply, to, socket) => this.sendDatagramTo(reply, `${to.address}:${to.port}`, (b) => socket.send(b, to.port, to.address));

  /** A UDP reply to the flow `key`; `send` puts a datagram that left the device on the wire. */
  sendDatagramTo(reply: RpcReplyOut, key: string, send: (datagram: Buffer) => void): void {
    let flow = this.flows.get(key);
    if (flow) this.flows.delete(key);
    else {
      flow = new UdpFlow(this, this.nextId++, key, send);
      this.conduits.set(flow.id, flow);
      this.trimFlows();
    }
    this.flows.set(key, flow);
    flow.send(reply);
  };

  newPair(id: number, extra: { onDeliver?: (chunks: Buffer[], done: () => void) => void; onDatagram?: (b: Buffer) => void }): TcpPair {
    return new TcpPair({
      conn: id,
      clock: this.clock,
      seed: (this.faults.seed + id) >>> 0,
      bus: this.o.netBus,
      mss: this.o.net.mss,
      rcvWnd: this.o.net.rcvWnd,
      wire: 'reference',
      faults: pathFaults(this.faults),
      // One capture, one TCP flow per connection: the client port tells them apart.
      ...(this.o.pcap ? { pcap: this.o.pcap, flow: { ...DEFAULT_FLOW, clientPort: DEFAULT_FLOW.clientPort + id } } : {}),
      ...extra,
    });
  }

  /**
   * Queues one reply on `pair`: the record mark and header runs copied (sendmsg), page-cache
   * chunks by reference (sendpage) with one destructor for the reply, then — by mode — the pages
   * go back to the cache when the destructor fires, at once (legacy), or were never lent (copy).
   */
  sendOnPair(c: Conduit, reply: RpcReplyOut, header: Buffer | null): void {
    const { pair } = c;
    const release = reply.release;
    if (this.o.mode === 'copy' || !release) {
      if (header) pair.sendmsg(header, true);
      const last = reply.chunks.length - 1;
      reply.chunks.forEach((chunk, i) => pair.sendmsg(chunk, i < last));
      this.counters.repliesCopied++;
      release?.();
      return;
    }
    const r = this.track(c, reply.xid, release);
    if (header) pair.sendmsg(header, true);
    const last = reply.chunks.length - 1;
    reply.chunks.forEach((chunk, i) => {
      const frags = this.fragsOf(chunk, r);
      if (!frags) pair.sendmsg(chunk, i < last);
      else frags.forEach((f, k) => pair.sendpage(f.page, f.offset, f.size, r.destructor, i < last || k < frags.length - 1));
    });
    this.lent(c, r);
    if (this.o.pageCache.pinned > this.pinLimit()) this.enforceBudget();
  }

  /** A UDP reply: one skb, the leading header runs linear, the rest frags. */
  sendDatagramOnPair(c: UdpFlow, reply: RpcReplyOut): void {
    const release = reply.release;
    if (this.o.mode === 'copy' || !release) {
      c.pair.sendDatagram(Buffer.concat(reply.chunks, reply.length), [], null);
      this.counters.repliesCopied++;
      release?.();
      return;
    }
    const r = this.track(c, reply.xid, release);
    let head = 0;
    while (head < reply.chunks.length && !this.pages.lookup(reply.chunks[head]!)) head++;
    const frags: (PageFragment & { destructor: FragDestructor | null })[] = [];
    for (const chunk of reply.chunks.slice(head)) {
      const pf = this.fragsOf(chunk, r);
      if (pf) for (const f of pf) frags.push({ ...f, destructor: r.destructor });
      else frags.push({ page: this.pages.privatePage(chunk), offset: 0, size: chunk.length, destructor: null });
    }
    c.pair.sendDatagram(Buffer.concat(reply.chunks.slice(0, head)), frags, r.destructor);
    this.lent(c, r);
  }

  /** A reply about to lend pages: its destructor, recorded on the conduit until it fires. */
  private track(c: Conduit, xid: number, release: () => void): InFlightReply {
    const r: InFlightReply = {
      xid,
      destructor: new FragDestructor((d) => this.destructorFired(c, d)),
      frames: [],
      frameSet: new Set(),
      pinnedAt: this.clock.now(),
      bytes: 0,
      released: false,
      release,
    };
    c.inflight.set(r.destructor.id, r);
    return r;
  }

  /**
   * Every fragment of `r` is queued: announce the pin, hand the pages back at once in legacy mode
   * (the bug), and drop the creator's bias reference so the destructor can fire.
   */
  private lent(c: Conduit, r: InFlightReply): void {
    this.counters.repliesByReference++;
    this.emitPin(c, r);
    if (this.o.mode === 'legacy') this.releaseToCache(r);
    r.destructor.unref();
  }

  /** The page fragments of a chunk (split at page boundaries), or null if it is not cache memory. */
  private fragsOf(chunk: Buffer, r: InFlightReply): PageFragment[] | null {
    let p = this.pages.lookup(chunk);
    if (!p) return null;
    const out: PageFragment[] = [];
    for (let at = 0; at < chunk.length; ) {
      const size = Math.min(chunk.length - at, PAGE_SIZE - p.offset);
      out.push({ page: p.page, offset: p.offset, size });
      if (!r.frameSet.has(p.frame)) {
        r.frameSet.add(p.frame);
        r.frames.push(p.frame);
      }
      r.bytes += size;
      at += size;
      if (at < chunk.length) p = this.pages.lookup(chunk.subarray(at))!;
    }
    return out;
  }

  private emitPin(c: Conduit, r: InFlightReply): void {
    const bus = this.o.replyBus;
    if (!bus.wants('reply-pin')) return;
    const f0 = r.frames[0];
    bus.emit({
      type: 'reply-pin',
      t: r.pinnedAt,
      conn: c.id,
      xid: r.xid,
      destructor: r.destructor.id,
      pfns: r.frames.map((f) => f.pfn),
      file: f0?.file ?? '',
      offset: f0 ? f0.index * PAGE_SIZE : 0,
      bytes: r.bytes,
    });
  }

  private releaseToCache(r: InFlightReply): void {
    if (r.released) return;
    r.released = true;
    r.release();
  }

  private destructorFired(c: Conduit, d: FragDestructor): void {
    const r = c.inflight.get(d.id);
    if (!r) return;
    c.inflight.delete(d.id);
    this.counters.destructorsFired++;
    this.releaseToCache(r);
    const bus = this.o.replyBus;
    if (bus.wants('reply-release')) {
      bus.emit({ type: 'reply-release', t: this.clock.now(), conn: c.id, xid: r.xid, destructor: d.id, pfns: r.frames.map((f) => f.pfn), heldMs: this.clock.now() - r.pinnedAt, mode: this.o.mode });
    }
  }

  private pinLimit(): number {
    return Math.floor(this.o.budget.maxPinnedShare * this.o.pageCache.size);
  }

  /**
   * The pin budget: while pinned pages exceed their share of the cache, or some reply has been
   * held longer than the maximum age, orphan the oldest holders' fragments (copies replace the
   * page references, the destructors fire, the cache gets its pages back). Returns frags orphaned.
   */
  enforceBudget(): number {
    const now = this.clock.now();
    const limit = this.pinLimit();
    const byAge = [...this.conduits.values()].filter((c) => c.inflight.size > 0).sort((a, b) => a.oldestPin() - b.oldestPin());
    let total = 0;
    for (const c of byAge) {
      const tooOld = now - c.oldestPin() > this.o.budget.maxPinAgeMs;
      const overShare = this.o.pageCache.pinned > limit;
      if (!tooOld && !overShare) break;
      const held = [...c.inflight.values()];
      const n = c.orphanHeld();
      if (n === 0) continue;
      total += n;
      const bus = this.o.replyBus;
      if (bus.wants('pin-orphan')) {
        for (const r of held) {
          if (!c.inflight.has(r.destructor.id)) bus.emit({ type: 'pin-orphan', t: now, conn: c.id, destructor: r.destructor.id, bytes: r.bytes, reason: tooOld ? 'budget-age' : 'budget-share' });
        }
      }
      this.o.log.info({ conn: c.id, remote: c.remote, frags: n, reason: tooOld ? 'age' : 'share', pinned: this.o.pageCache.pinned, limit }, 'reply path: pin budget orphaned fragments');
    }
    if (total > 0) {
      this.counters.budgetOrphanedFrags += total;
      this.counters.budgetOrphanRuns++;
    }
    return total;
  }

  connections(): ConnectionSnapshot[] {
    return [...this.conduits.values()].map((c) => {
      const s = c.pair.stats();
      return {
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
        pinnedReplies: c.inflight.size,
      };
    });
  }

  /** Stale retransmits seen by every connection, closed ones included. */
  staleRetransmits(): number {
    let n = this.closedStale;
    for (const c of this.conduits.values()) n += c.pair.stats().staleRetransmits;
    return n;
  }

  private closedStale = 0;

  getFaults(): FaultSettings {
    return { ...this.faults };
  }

  /** Changes the path faults of every connection, now and to come. */
  setFaults(partial: Partial<FaultSettings>): FaultSettings {
    Object.assign(this.faults, partial);
    for (const c of this.conduits.values()) c.pair.setFaults(pathFaults(this.faults));
    return this.getFaults();
  }

  conduit(id: number): Conduit | undefined {
    return this.conduits.get(id);
  }

  /** The simulated TcpPair of connection `id` (none for a wire connection, whose peer is real). */
  pairOf(id: number): TcpPair | null {
    const pair = this.conduits.get(id)?.pair;
    return pair instanceof TcpPair ? pair : null;
  }

  /** One-off faults on one connection, or on all when `conn` is absent; false if it is unknown. */
  oneOff(o: { conn?: number; dropNext?: number; holdNextMs?: number }): boolean {
    const targets = o.conn === undefined ? [...this.conduits.values()].filter((c) => c.transport === 'tcp') : [this.conduits.get(o.conn)].filter((c) => c !== undefined);
    if (targets.length === 0 && o.conn !== undefined) return false;
    for (const c of targets) {
      if (o.dropNext) c.pair.dropNext(o.dropNext);
      if (o.holdNextMs) c.pair.holdNext(o.holdNextMs);
    }
    return true;
  }

  /**
   * Closed connections and retired flows leave once their model has drained. Checked on the
   * budget tick rather than awaited with drain(), which on a virtual clock would run the clock.
   */
  private sweepRetired(): void {
    for (const c of [...this.conduits.values()]) if (c.retired && c.pair.drained) this.forget(c);
  }

  forget(c: Conduit): void {
    this.closedStale += c.pair.stats().staleRetransmits;
    this.conduits.delete(c.id);
  }

  /** Pages the network holds right now (the test's "pins never leak" check reads the cache). */
  inflightReplies(): number {
    let n = 0;
    for (const c of this.conduits.values()) n += c.inflight.size;
    return n;
  }

  private trimFlows(): void {
    while (this.flows.size > this.o.net.maxUdpFlows) {
      const [key, flow] = this.flows.entries().next().value as [string, UdpFlow];
      this.flows.delete(key);
      flow.retire();
    }
  }

  close(): void {
    if (this.budgetTimer) this.clock.clearTimer(this.budgetTimer);
    this.budgetTimer = null;
    for (const c of [...this.conduits.values()]) if (c instanceof TcpConduit || c instanceof StackConduit) c.close();
    for (const f of this.flows.values()) f.retire();
    this.flows.clear();
  }

  /** Counts a copy made at the socket edge (a consumer that does not keep up). */
  countSocketCopy(): void {
    this.counters.socketCopies++;
  }
}

/** Where a connection's in-order bytes go: the real socket, or an in-process client. */
export interface ByteStream {
  readonly destroyed: boolean;
  /** Bytes accepted but not yet handed on (a socket's user-space queue). */
  readonly writableLength: number;
  /** Writes the chunks in order, by reference; `done` once they may change. */
  writev(chunks: Buffer[], done: () => void): void;
}

/**
 * A net.Socket as a ByteStream. What the simulated receiver delivers during one turn of the event
 * loop (one segment at a time) leaves in one writev (cork/uncork) at the end of the turn, and views
 * that are adjacent in memory (consecutive page-cache frames of a READ) go as one view of both, so
 * a 1 MiB READ is a few iovecs and one syscall rather than 256 writes over ~17 syscalls. Each
 * `done` is called from that write's callback (after the kernel took the bytes, or on error).
 */
export function socketStream(s: Socket): ByteStream {
  let out: Buffer[] = [];
  let dones: (() => void)[] = [];
  let pendingBytes = 0;
  let queued = false;
  // The run of adjacent views being gathered: [runStart, runEnd) of runFirst's ArrayBuffer.
  let runFirst: Buffer | null = null;
  let runStart = 0;
  let runEnd = 0;
  const endRun = (): void => {
    if (runFirst === null) return;
    out.push(runEnd - runStart === runFirst.length ? runFirst : Buffer.from(runFirst.buffer, runStart, runEnd - runStart));
    runFirst = null;
  };
  const flush = (): void => {
    queued = false;
    endRun();
    const chunks = out;
    const ds = dones;
    out = [];
    dones = [];
    pendingBytes = 0;
    const allDone = (): void => {
      for (const d of ds) d();
    };
    if (chunks.length === 0) return allDone();
    s.cork();
    const last = chunks.length - 1;
    for (let i = 0; i < last; i++) s.write(chunks[i]!);
    // The callback runs once, on success or error (a destroyed socket): done either way.
    s.write(chunks[last]!, allDone);
    s.uncork();
  };
  return {
    get destroyed() {
      return s.destroyed;
    },
    get writableLength() {
      return s.writableLength + pendingBytes;
    },
    writev(chunks, done) {
      for (const c of chunks) {
        if (c.length === 0) continue;
        pendingBytes += c.length;
        if (runFirst !== null && c.buffer === runFirst.buffer && c.byteOffset === runEnd) {
          runEnd += c.length;
          continue;
        }
        endRun();
        runFirst = c;
        runStart = c.byteOffset;
        runEnd = c.byteOffset + c.length;
      }
      dones.push(done);
      if (!queued) {
        queued = true;
        queueMicrotask(flush);
      }
    },
  };
}

/** A TCP connection: replies through a TcpPair whose receiver writes to a ByteStream. */
class TcpConduit extends Conduit implements ReplySink {
  readonly pair: TcpPair;
  readonly transport = 'tcp';

  constructor(
    private readonly rp: ReplyPath,
    id: number,
    remote: string,
    private readonly socket: ByteStream,
  ) {
    super(id, remote);
    this.pair = rp.newPair(id, { onDeliver: (chunks, done) => this.deliver(chunks, done) });
  }

  /**
   * In-order bytes from the simulated receiver, as views of the pages: written with one writev
   * and held until the kernel took them. A socket already backed up past the threshold is a
   * holder that may keep them indefinitely, so the bytes are copied and let go at once (what
   * TUN does with skb_orphan_frags).
   */
  private deliver(chunks: Buffer[], done: () => void): void {
    const s = this.socket;
    if (s.destroyed) return done();
    if (s.writableLength >= this.rp.o.net.socketOrphanBytes) {
      const copy = Buffer.concat(chunks);
      done();
      this.rp.countSocketCopy();
      s.writev([copy], () => undefined);
      return;
    }
    s.writev(chunks, done);
  }

  send(reply: RpcReplyOut): void {
    if (this.retired) {
      reply.release?.();
      return;
    }
    this.rp.sendOnPair(this, reply, recordMark(reply.length));
  }

  /**
   * The socket is gone: nothing will consume what the simulated peer delivers. The held
   * fragments are orphaned (their pages go back to the cache now), faults are cleared so the
   * model drains by itself, and a FIN ends the stream.
   */
  close(): void {
    if (this.retired) return;
    this.retired = true;
    this.orphanHeld();
    this.pair.setFaults({ loss: 0, ackLoss: 0, delay: 0, jitter: 0, reorder: 0, duplicate: 0, deviceHold: 0, dropSegments: [], dropRanges: [] });
    this.pair.close();
  }
}

/** A UDP destination: its own device queue, so one slow flow does not hold up the others. */
class UdpFlow extends Conduit {
  readonly pair: TcpPair;
  readonly transport = 'udp';

  constructor(
    private readonly rp: ReplyPath,
    id: number,
    remote: string,
    send: (datagram: Buffer) => void,
  ) {
    super(id, remote);
    this.pair = rp.newPair(id, { onDatagram: send });
  }

  send(reply: RpcReplyOut): void {
    this.rp.sendDatagramOnPair(this, reply);
  }

  /** Evicted from the flow table: what it still holds is orphaned, and it leaves once idle. */
  retire(): void {
    this.orphanHeld();
    this.pair.setFaults({ loss: 0, delay: 0, jitter: 0, deviceHold: 0 });
    this.retired = true;
  }
}

/**
 * A TCP connection whose peer is real (the wire): its stack acknowledges, retransmits and closes
 * by itself. Closed when the connection is gone: what it still holds is orphaned, and later
 * replies are released at once.
 */
class StackConduit extends Conduit implements ReplySink {
  readonly transport = 'tcp';

  constructor(
    private readonly rp: ReplyPath,
    id: number,
    remote: string,
    readonly pair: ConduitStack,
  ) {
    super(id, remote);
  }

  send(reply: RpcReplyOut): void {
    if (this.retired) {
      reply.release?.();
      return;
    }
    this.rp.sendOnPair(this, reply, recordMark(reply.length));
  }

  close(): void {
    if (this.retired) return;
    this.retired = true;
    this.orphanHeld();
  }
}
