/**
 * struct lent_reply — one RPC reply whose page-cache pages the network holds by reference.
 *
 * This is the reply path's central invariant, stated once, here. The life of a lent reply:
 *
 *  1. lend     The conduit's send path creates it for a reply that carries page-cache chunks (a
 *              PinnedReply: the READ handler pinned those frames and handed over `release`, which
 *              unpins them). It owns one FragDestructor and holds its creator (bias) reference,
 *              so the destructor cannot fire while fragments are still being added. It enters its
 *              conduit's table of replies in flight, keyed by the destructor's id.
 *  2. queue    Every page-cache chunk is queued by reference (sendpage, or one skb's frags for a
 *              datagram), split at page boundaries; each fragment references the destructor,
 *              never the page (netstack/page.ts). `frames` records which frames it lends.
 *  3. lent     All fragments are queued: `reply-pin` is raised and the bias reference is dropped.
 *              From here only the network decides when the pages come back. In `legacy` mode the
 *              pages go back to the cache now, while the network still reads them (the bug, on
 *              purpose: retransmissions may carry foreign bytes).
 *  4. release  The last fragment reference goes — ACKed and freed, left the device queue (UDP),
 *              copied out by the pin budget or the socket edge (skb_orphan_frags), or dropped with
 *              a closed connection — and the destructor fires, exactly once. The reply leaves its
 *              conduit's table, `release` runs (unless legacy already ran it at 3) and
 *              `reply-release` is raised.
 *
 * So `release` runs exactly once per lent reply, in every mode; between 1 and its run the frames
 * are neither reused nor written in place (the page cache copies on write); and a reply is in its
 * conduit's table exactly from 1 to 4, so a table that empties means no page is held for it.
 * Replies without page-cache chunks, and every reply in `copy` mode, are never lent: they are
 * copied into the stream and released at once.
 */
import type { Clock } from '../../netstack/clock.ts';
import { FragDestructor } from '../../netstack/destructor.ts';
import type { Page } from '../../netstack/page.ts';
import type { ReplyMode } from './mode.ts';
import { PAGE_SIZE, type PageFrame } from '../pagecache/page-cache.ts';
import type { PageMap } from './page-map.ts';
import type { ReplyBus, ReplyPathCounters } from './types.ts';

/** What every lent reply of one reply path shares. */
export interface LendContext {
  readonly clock: Clock;
  readonly mode: ReplyMode;
  readonly pages: PageMap;
  readonly events: ReplyBus;
  readonly counters: ReplyPathCounters;
}

export class LentReply {
  readonly destructor: FragDestructor;
  /** Frames lent, in first-use order (a reply's chunks may share a frame). */
  readonly frames: PageFrame[] = [];
  /** This reply's stamp in the page map, which tells whether a frame is listed already. */
  private readonly stamp: number;
  readonly pinnedAt: number;
  /** Page-cache bytes lent. */
  bytes = 0;
  private released = false;

  /** Step 1: `table` is the conduit's replies in flight; the reply leaves it when its destructor fires. */
  constructor(
    private readonly ctx: LendContext,
    readonly conn: number,
    readonly xid: number,
    private readonly release: () => void,
    private readonly table: Map<number, LentReply>,
  ) {
    this.destructor = new FragDestructor(() => this.fired());
    this.stamp = ctx.pages.stamp();
    this.pinnedAt = ctx.clock.now();
    table.set(this.destructor.id, this);
  }

  /** The pages went back to the cache already (legacy: at step 3). */
  get returned(): boolean {
    return this.released;
  }

  /**
   * Step 2: calls `frag` for each page fragment of a chunk (split at page boundaries; `last` on the
   * chunk's last one) and records the frames; false, calling nothing, if the chunk is not cache
   * memory. A chunk may span adjacent frames (read.ts hands runs of them as one view).
   */
  eachFrag(chunk: Buffer, frag: (page: Page, offset: number, size: number, last: boolean) => void): boolean {
    const pages = this.ctx.pages;
    const start = pages.cache.poolOffset(chunk);
    if (start < 0) return false;
    const end = start + chunk.length;
    for (let at = start; at < end; ) {
      const pfn = Math.floor(at / PAGE_SIZE);
      const offset = at - pfn * PAGE_SIZE;
      const size = Math.min(end - at, PAGE_SIZE - offset);
      if (pages.firstListing(pfn, this.stamp)) this.frames.push(pages.cache.frames[pfn]!);
      this.bytes += size;
      at += size;
      frag(pages.pageOf(pfn), offset, size, at === end);
    }
    return true;
  }

  /** Step 3: every fragment is queued. */
  lent(): void {
    const { ctx } = this;
    ctx.counters.repliesByReference++;
    if (ctx.events.wants('reply-pin')) {
      const f0 = this.frames[0];
      ctx.events.emit({
        type: 'reply-pin',
        t: this.pinnedAt,
        conn: this.conn,
        xid: this.xid,
        destructor: this.destructor.id,
        pfns: this.frames.map((f) => f.pfn),
        file: f0?.file ?? '',
        offset: f0 ? f0.index * PAGE_SIZE : 0,
        bytes: this.bytes,
      });
    }
    if (ctx.mode === 'legacy') {
      this.destructor.pagesReused = true;
      this.toCache();
    }
    this.destructor.unref();
  }

  private toCache(): void {
    if (this.released) return;
    this.released = true;
    this.release();
  }

  /** Step 4: the destructor fired. */
  private fired(): void {
    const { ctx } = this;
    this.table.delete(this.destructor.id);
    ctx.counters.destructorsFired++;
    this.toCache();
    if (ctx.events.wants('reply-release')) {
      const now = ctx.clock.now();
      ctx.events.emit({ type: 'reply-release', t: now, conn: this.conn, xid: this.xid, destructor: this.destructor.id, pfns: this.frames.map((f) => f.pfn), heldMs: now - this.pinnedAt, mode: ctx.mode });
    }
  }
}
