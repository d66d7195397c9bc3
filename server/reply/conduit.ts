/**
 * Conduits: a TCP connection or a UDP flow (one destination), each with its netstack pair and the
 * replies it holds lent. The send path lives here; it knows nothing of the table the conduits sit
 * in nor of the pin budget — after a TCP reply is lent it tells its owner (`onLent`), which runs
 * the budget (reply-path.ts).
 */
import type { PageFragment, TcpPair } from '../../netstack/connection.ts';
import type { FragDestructor } from '../../netstack/destructor.ts';
import type { Page } from '../../netstack/page.ts';
import type { RpcReplyOut } from '../../rpc/dispatch.ts';
import { recordMark } from '../../rpc/record.ts';
import type { ReplySink } from '../../rpc/reply-sink.ts';
import type { PinHolder } from './budget.ts';
import { LentReply, type LendContext } from './lent-reply.ts';
import type { ByteStream } from './socket-stream.ts';

/** What a conduit uses of its netstack pair besides sending: faults, one-offs, orphaning, stats. */
export type NetLink = Pick<TcpPair, 'setFaults' | 'dropNext' | 'holdNext' | 'orphanFrags' | 'stats' | 'drained'>;
/** A TCP connection's pair: a byte stream with sendmsg/sendpage, and a reset for when its socket is gone. */
export type StreamLink = NetLink & Pick<TcpPair, 'sendmsg' | 'sendpage' | 'reset' | 'sender'>;
/** A UDP flow's pair: only its device queue and path carry skbs, one per datagram. */
export type DatagramLink = NetLink & Pick<TcpPair, 'sendDatagram'>;

export interface ConduitContext extends LendContext {
  /** Bytes queued on a real socket past which delivered data is copied and its pages let go. */
  readonly socketOrphanBytes: number;
  /** A TCP reply was lent (the owner checks the pin budget). */
  onLent(): void;
}

/** A connection (TCP) or a flow (UDP destination) and the replies it holds lent. */
export abstract class Conduit implements PinHolder {
  /** Replies in flight by destructor id (lent-reply.ts: in it from lend to release). */
  protected readonly inflight = new Map<number, LentReply>();
  /** Closed (TCP) or evicted (UDP): leaves the table once drained. */
  retired = false;
  abstract readonly link: NetLink;
  abstract readonly transport: 'tcp' | 'udp';

  constructor(
    protected readonly ctx: ConduitContext,
    readonly id: number,
    readonly remote: string,
  ) {}

  get lentReplies(): number {
    return this.inflight.size;
  }

  /** Replies lent now, oldest first. */
  held(): LentReply[] {
    return [...this.inflight.values()];
  }

  /** A reply still lent (its destructor has not fired). */
  holds(r: LentReply): boolean {
    return this.inflight.has(r.destructor.id);
  }

  oldestPin(): number {
    for (const r of this.inflight.values()) if (!r.returned) return r.pinnedAt;
    return Infinity;
  }

  /** skb_orphan_frags on what this conduit holds for long (TcpPair.orphanFrags says which skbs). */
  orphanHeld(): number {
    return this.link.orphanFrags();
  }

  /** The reply, copied when it lends nothing (copy mode, or no page-cache chunk); else null. */
  protected lend(reply: RpcReplyOut): LentReply | null {
    if (this.ctx.mode === 'copy' || !reply.release) return null;
    return new LentReply(this.ctx, this.id, reply.xid, reply.release, this.inflight);
  }

  /**
   * Queues one reply on a stream: the record mark and header runs copied (sendmsg), page-cache
   * chunks by reference (sendpage) with one destructor for the reply (lent-reply.ts).
   */
  protected sendRecord(link: Pick<StreamLink, 'sendmsg' | 'sendpage'>, reply: RpcReplyOut): void {
    const header = recordMark(reply.length);
    const last = reply.chunks.length - 1;
    const r = this.lend(reply);
    if (!r) {
      link.sendmsg(header, true);
      reply.chunks.forEach((chunk, i) => link.sendmsg(chunk, i < last));
      this.ctx.counters.repliesCopied++;
      reply.release?.();
      return;
    }
    link.sendmsg(header, true);
    reply.chunks.forEach((chunk, i) => {
      const more = i < last;
      if (!r.eachFrag(chunk, (page, offset, size, lastFrag) => link.sendpage(page, offset, size, r.destructor, more || !lastFrag))) link.sendmsg(chunk, more);
    });
    r.lent();
    this.ctx.onLent();
  }

  abstract send(reply: RpcReplyOut): void;
}

/** A TCP connection: replies through a pair whose receiver writes to a ByteStream. */
export class TcpConnection extends Conduit implements ReplySink {
  readonly transport = 'tcp';
  readonly link: StreamLink;
  /** Stream bytes handed to the link, and delivered by its receiver to the socket. */
  private sent = 0;
  private delivered = 0;
  /** Replies not yet taken by the socket, in stream order, with where each one ends. */
  private readonly writeWaiters: { end: number; written: () => void }[] = [];

  constructor(
    ctx: ConduitContext,
    id: number,
    remote: string,
    private readonly out: ByteStream,
    makeLink: (onDeliver: (chunks: Buffer[], done: () => void) => void) => StreamLink,
  ) {
    super(ctx, id, remote);
    this.link = makeLink((chunks, done) => this.deliver(chunks, done));
  }

  /** Where this connection's stream starts in sequence space (nothing is sent before the first reply). */
  get streamStart(): number {
    return this.link.sender.sndUna;
  }

  /**
   * Reply bytes accepted and not yet taken by the kernel: queued in the model (unsent or not yet
   * acknowledged) plus the socket's user-space queue. A transport may stop reading calls while
   * this is high.
   */
  queuedBytes(): number {
    return this.link.stats().bytesQueued + this.out.writableLength;
  }

  /**
   * In-order bytes from the simulated receiver, as views of the pages: written with one writev
   * and held until the kernel took them. A socket already backed up past the threshold is a
   * holder that may keep them indefinitely, so the bytes are copied and let go at once (what
   * TUN does with skb_orphan_frags).
   */
  private deliver(chunks: Buffer[], done: () => void): void {
    const s = this.out;
    let end = this.delivered;
    for (const c of chunks) end += c.length;
    this.delivered = end;
    if (s.destroyed) {
      done();
      return this.wrote(end);
    }
    if (s.writableLength >= this.ctx.socketOrphanBytes) {
      const copy = Buffer.concat(chunks);
      done();
      this.ctx.counters.socketCopies++;
      s.writev([copy], () => this.wrote(end));
      return;
    }
    s.writev(chunks, () => {
      done();
      this.wrote(end);
    });
  }

  /**
   * Backpressure hook: the socket took the stream up to `end`, so every reply ending there has
   * been `written` (the RPC connection reads on when enough of them have).
   */
  private wrote(end: number): void {
    while (this.writeWaiters.length > 0 && this.writeWaiters[0]!.end <= end) this.writeWaiters.shift()!.written();
  }

  /** Queues one reply (sendRecord); `written` once the socket took its last byte. */
  send(reply: RpcReplyOut, written?: () => void): void {
    if (this.retired) {
      reply.release?.();
      written?.();
      return;
    }
    this.sent += 4 + reply.length;
    if (written) this.writeWaiters.push({ end: this.sent, written });
    this.sendRecord(this.link, reply);
  }

  /**
   * The socket is gone: nobody will read what is still queued, so the pair is reset (TcpPair.reset,
   * as Linux purges a reset socket's queues) rather than orphaned and drained: its skbs are freed
   * without copying a byte, and each reply's pages go back to the cache as its last skb goes.
   * Bytes the socket still holds as views go with its write callbacks.
   */
  close(): void {
    if (this.retired) return;
    this.retired = true;
    this.wrote(Infinity);
    this.link.reset();
  }
}

/** A UDP destination: its own device queue, so one slow flow does not hold up the others. */
export class UdpFlow extends Conduit {
  readonly transport = 'udp';

  constructor(
    ctx: ConduitContext,
    id: number,
    remote: string,
    readonly link: DatagramLink,
  ) {
    super(ctx, id, remote);
  }

  /** One skb per reply: the leading header runs linear, the rest frags (lent-reply.ts). */
  send(reply: RpcReplyOut): void {
    const r = this.lend(reply);
    if (!r) {
      this.link.sendDatagram(Buffer.concat(reply.chunks, reply.length), [], null);
      this.ctx.counters.repliesCopied++;
      reply.release?.();
      return;
    }
    const pages = this.ctx.pages;
    let head = 0;
    while (head < reply.chunks.length && pages.cache.poolOffset(reply.chunks[head]!) < 0) head++;
    const frags: (PageFragment & { destructor: FragDestructor | null })[] = [];
    const lend = (page: Page, offset: number, size: number): void => {
      frags.push({ page, offset, size, destructor: r.destructor });
    };
    for (const chunk of reply.chunks.slice(head)) {
      if (!r.eachFrag(chunk, lend)) frags.push({ page: pages.privatePage(chunk), offset: 0, size: chunk.length, destructor: null });
    }
    this.link.sendDatagram(Buffer.concat(reply.chunks.slice(0, head)), frags, r.destructor);
    r.lent();
  }

  /** Evicted from the flow table: what it still holds is orphaned, and it leaves once idle. */
  retire(): void {
    this.orphanHeld();
    this.link.setFaults({ loss: 0, delay: 0, jitter: 0, deviceHold: 0 });
    this.retired = true;
  }
}

/** A TCP whose peer is real (the wire's socket): it acknowledges, retransmits and closes by itself. */
export type StackLink = Omit<StreamLink, 'reset'>;

/**
 * A TCP connection on the real wire: replies go through its own stack (netstack/wire), whose
 * peer's ACKs release the pages. Closed when the connection is gone: what it still holds is
 * orphaned, and later replies are released at once.
 */
export class StackConnection extends Conduit implements ReplySink {
  readonly transport = 'tcp';

  constructor(
    ctx: ConduitContext,
    id: number,
    remote: string,
    readonly link: StackLink,
  ) {
    super(ctx, id, remote);
  }

  send(reply: RpcReplyOut, written?: () => void): void {
    if (this.retired) reply.release?.();
    else this.sendRecord(this.link, reply);
    // The wire's socket has no user-space queue: the stack took the reply (backpressure is its window).
    written?.();
  }

  close(): void {
    if (this.retired) return;
    this.retired = true;
    this.orphanHeld();
  }
}
