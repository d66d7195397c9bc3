/**
 * The socket buffer: SkBuff (the per-holder head), SharedInfo (the data area and frags,
 * shared by clones), and the ways of sharing, copying and dropping them (skbuff.c's
 * alloc/free/clone; the rest is in skb-ops.ts).
 */
import type { Clock } from './clock.ts';
import { skbRegistry } from './debug.ts';
import type { FragDestructor } from './destructor.ts';
import type { NetstackBus } from './events.ts';
import { fragRefTarget, fragUnrefTarget, SkbFrag } from './frag.ts';
import { PAGE_SIZE, type Page } from './page.ts';

/** 65536 / PAGE_SIZE + 1: a 64 KiB payload fits even when it starts mid-page. */
export const MAX_SKB_FRAGS = 65536 / PAGE_SIZE + 1;

/** Some fragment may point at pages the sender will overwrite (sendpage, vmsplice). */
export const SKBTX_SHARED_FRAG = 1 << 5;

/** TCP header flags kept in the control block (TCP_SKB_CB(skb)->tcp_flags). */
export const TCPHDR_FIN = 0x01;
export const TCPHDR_SYN = 0x02;
export const TCPHDR_PSH = 0x08;
export const TCPHDR_ACK = 0x10;

/** TCP_SKB_CB(skb)->sacked bits the model uses (no SACK: only loss and retransmit marks). */
export const TCPCB_LOST = 1 << 0;
export const TCPCB_SACKED_RETRANS = 1 << 1;
export const TCPCB_EVER_RETRANS = 1 << 2;

export class SkbError extends Error {
  override readonly name = 'SkbError';
  constructor(
    readonly skb: number,
    message: string,
  ) {
    super(`skb ${skb}: ${message}`);
  }
}

/** Who an skb belongs to, for events: connection id, bus, clock. Inherited by clones and copies. */
export interface SkbOwner {
  readonly conn: number;
  readonly bus: NetstackBus | null;
  readonly clock: Clock | null;
}

export const NO_OWNER: SkbOwner = { conn: 0, bus: null, clock: null };

/**
 * struct skb_shared_info, with the data area (skb->head) it trails in Linux.
 *
 * Invariants:
 * - `dataref` counts the SkBuffs whose `shinfo` is this object; clones share it and bump it.
 * - Frag references belong to the slots here, not to any SkBuff: one reference per entry of
 *   `frags`, released only when `dataref` drops to zero (skb_release_data), or when an
 *   operation that owns this SharedInfo alone (dataref 1) drops or rewrites a slot.
 * - While `dataref > 1` neither `head` nor `frags` may be modified, except by `orphanFrags`,
 *   which replaces a frag's page by a byte-identical private copy for every sharer at once.
 * - `frags.length` is nr_frags, at most MAX_SKB_FRAGS.
 */
export class SharedInfo {
  dataref = 1;
  txFlags = 0;
  readonly frags: SkbFrag[] = [];

  constructor(readonly head: Buffer) {}

  get nrFrags(): number {
    return this.frags.length;
  }
}

let nextSkbId = 1;
const EMPTY = Buffer.alloc(0);

/**
 * struct sk_buff: one holder's view of a SharedInfo — where its linear data starts and ends
 * in the shared head, how long it is, and a TCP control block.
 *
 * Invariants:
 * - `len` = linear bytes (`tail - data`) + `dataLen`; `dataLen` = sum of frag sizes.
 * - `cloned` is set on both sides of a clone and never cleared while they share; an skb is
 *   writable (head or frags) only when !skbCloned(skb), i.e. it owns its SharedInfo alone.
 * - An skb is freed exactly once (freeSkb); using it afterwards throws SkbError.
 */
export class SkBuff {
  readonly id = nextSkbId++;
  data = 0;
  tail = 0;
  len = 0;
  dataLen = 0;
  cloned = false;
  freed = false;
  /** TCP_SKB_CB: sequence range [seq, endSeq) (FIN counts one), header flags, last send time, loss marks. */
  seq = 0;
  endSeq = 0;
  tcpFlags = 0;
  when = 0;
  sacked = 0;

  constructor(
    public shinfo: SharedInfo,
    readonly owner: SkbOwner,
  ) {}

  get headlen(): number {
    return this.tail - this.data;
  }

  get nrFrags(): number {
    return this.shinfo.frags.length;
  }
}

/** Event time for an skb's owner. */
function now(owner: SkbOwner): number {
  return owner.clock ? owner.clock.now() : 0;
}

/** Copies the control block (clone, copies and segments start from the original's). */
export function copySkbHeader(to: SkBuff, from: SkBuff): void {
  to.seq = from.seq;
  to.endSeq = from.endSeq;
  to.tcpFlags = from.tcpFlags;
  to.when = from.when;
  to.sacked = from.sacked;
}

function track(skb: SkBuff): void {
  skbRegistry()?.live.add(skb);
}

/** alloc_skb: an skb with `size` bytes of empty linear room and no frags. */
export function allocSkb(size: number, owner: SkbOwner = NO_OWNER): SkBuff {
  const skb = new SkBuff(new SharedInfo(size === 0 ? EMPTY : Buffer.allocUnsafe(size)), owner);
  track(skb);
  const bus = owner.bus;
  if (bus !== null && bus.wants('skb-alloc')) bus.emit({ type: 'skb-alloc', conn: owner.conn, t: now(owner), skb: skb.id, len: size });
  return skb;
}

/** skb_cloned: shares its SharedInfo with another live skb, so it must not be written. */
export function skbCloned(skb: SkBuff): boolean {
  return skb.cloned && skb.shinfo.dataref !== 1;
}

function assertLive(skb: SkBuff, op: string): void {
  if (skb.freed) throw new SkbError(skb.id, `${op} after free`);
}

function assertWritable(skb: SkBuff, op: string): void {
  assertLive(skb, op);
  if (skbCloned(skb)) throw new SkbError(skb.id, `${op} on a cloned skb (dataref ${skb.shinfo.dataref})`);
}

/** skb_put: appends bytes to the linear part (copied). */
export function skbPut(skb: SkBuff, bytes: Buffer): void {
  assertWritable(skb, 'skb_put');
  if (skb.dataLen !== 0) throw new SkbError(skb.id, 'skb_put on a nonlinear skb');
  if (skb.tail + bytes.length > skb.shinfo.head.length) {
    throw new SkbError(skb.id, `skb_put over panic: ${bytes.length} bytes, ${skb.shinfo.head.length - skb.tail} of tailroom`);
  }
  bytes.copy(skb.shinfo.head, skb.tail);
  skb.tail += bytes.length;
  skb.len += bytes.length;
}

/** Takes the reference a new frag slot holds, with its event. */
export function skbFragRef(skb: SkBuff, page: Page, destructor: FragDestructor | null): void {
  fragRefTarget(page, destructor);
  const o = skb.owner;
  if (o.bus !== null && o.bus.wants('frag-ref')) {
    o.bus.emit({ type: 'frag-ref', conn: o.conn, t: now(o), skb: skb.id, page: page.id, destructor: destructor ? destructor.id : null });
  }
}

/** Releases the reference of a frag slot being dropped, with its event. */
export function skbFragUnref(skb: SkBuff, frag: SkbFrag): void {
  const o = skb.owner;
  if (o.bus !== null && o.bus.wants('frag-unref')) {
    o.bus.emit({ type: 'frag-unref', conn: o.conn, t: now(o), skb: skb.id, page: frag.page.id, destructor: frag.destructor ? frag.destructor.id : null });
  }
  fragUnrefTarget(frag.page, frag.destructor);
}

/**
 * skb_fill_page_desc + skb_frag_ref: appends a frag and takes its slot's reference (on the
 * destructor if given, else on the page).
 */
export function skbAddFrag(skb: SkBuff, page: Page, offset: number, size: number, destructor: FragDestructor | null): void {
  assertWritable(skb, 'skb_fill_page_desc');
  const frags = skb.shinfo.frags;
  if (frags.length === MAX_SKB_FRAGS) throw new SkbError(skb.id, `more than MAX_SKB_FRAGS (${MAX_SKB_FRAGS}) frags`);
  if (offset < 0 || size <= 0 || offset + size > page.buf.length) {
    throw new SkbError(skb.id, `frag [${offset}, +${size}) outside page ${page.id} of ${page.buf.length} bytes`);
  }
  skbFragRef(skb, page, destructor);
  frags.push(new SkbFrag(page, offset, size, destructor));
  skb.len += size;
  skb.dataLen += size;
}

/**
 * skb_can_coalesce, with the series' rule: the new bytes may extend the last frag only when
 * they continue it on the same page AND carry the same destructor. The last slot holds one
 * reference on one destructor; merging bytes of another owner into it would leave that
 * owner's bytes unreferenced.
 */
export function skbCanCoalesce(skb: SkBuff, page: Page, offset: number, destructor: FragDestructor | null): boolean {
  const frags = skb.shinfo.frags;
  const last = frags[frags.length - 1];
  return last !== undefined && last.page === page && last.destructor === destructor && last.offset + last.size === offset;
}

/** Extends the last frag by `size` bytes when skbCanCoalesce allows (no new reference); false otherwise. */
export function skbCoalesce(skb: SkBuff, page: Page, offset: number, size: number, destructor: FragDestructor | null): boolean {
  assertWritable(skb, 'coalesce');
  if (!skbCanCoalesce(skb, page, offset, destructor)) return false;
  if (offset + size > page.buf.length) throw new SkbError(skb.id, `coalesce past the end of page ${page.id}`);
  const frags = skb.shinfo.frags;
  frags[frags.length - 1]!.size += size;
  skb.len += size;
  skb.dataLen += size;
  return true;
}

/** skb_release_data: the last sharer of a SharedInfo releases every frag slot's reference. */
function skbReleaseData(skb: SkBuff): void {
  const shinfo = skb.shinfo;
  if (--shinfo.dataref !== 0) return;
  // The SharedInfo is dead now: its frag array is left as it is, nobody reads it again.
  const frags = shinfo.frags;
  for (let i = 0; i < frags.length; i++) skbFragUnref(skb, frags[i]!);
}

/** kfree_skb: drops this holder; frag references go only with the SharedInfo's last holder. */
export function freeSkb(skb: SkBuff): void {
  assertLive(skb, 'kfree_skb');
  skb.freed = true;
  skbRegistry()?.live.delete(skb);
  const o = skb.owner;
  if (o.bus !== null && o.bus.wants('skb-free')) o.bus.emit({ type: 'skb-free', conn: o.conn, t: now(o), skb: skb.id });
  skbReleaseData(skb);
}

/** skb_clone: a new head sharing the SharedInfo (dataref + 1); no frag references are taken. */
export function skbClone(skb: SkBuff): SkBuff {
  assertLive(skb, 'skb_clone');
  const n = new SkBuff(skb.shinfo, skb.owner);
  n.data = skb.data;
  n.tail = skb.tail;
  n.len = skb.len;
  n.dataLen = skb.dataLen;
  copySkbHeader(n, skb);
  skb.shinfo.dataref++;
  skb.cloned = true;
  n.cloned = true;
  track(n);
  const o = skb.owner;
  if (o.bus !== null && o.bus.wants('skb-clone')) o.bus.emit({ type: 'skb-clone', conn: o.conn, t: now(o), skb: n.id, from: skb.id });
  return n;
}

export function emitCopy(skb: SkBuff, from: SkBuff, kind: 'pskb' | 'full' | 'segment' | 'split'): void {
  const o = skb.owner;
  if (o.bus !== null && o.bus.wants('skb-copy')) o.bus.emit({ type: 'skb-copy', conn: o.conn, t: now(o), skb: skb.id, from: from.id, kind });
}

/** A fresh, untracked-by-events skb over a new SharedInfo: the shell every copy starts from. */
export function newSkb(head: Buffer, owner: SkbOwner): SkBuff {
  const skb = new SkBuff(new SharedInfo(head), owner);
  track(skb);
  return skb;
}
