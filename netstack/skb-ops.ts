/**
 * The skbuff.c operations that share, copy, move or drop frags, each with one rule about
 * references (stated on the function). The sharing primitives (alloc, clone, free) are in skb.ts.
 */
import { SkbFrag } from './frag.ts';
import { Page } from './page.ts';
import {
  copySkbHeader,
  emitCopy,
  newSkb,
  SharedInfo,
  SkbError,
  skbCloned,
  skbFragRef,
  skbFragUnref,
  TCPHDR_FIN,
  TCPHDR_PSH,
  type SkBuff,
} from './skb.ts';

const EMPTY = Buffer.alloc(0);

function assertLive(skb: SkBuff, op: string): void {
  if (skb.freed) throw new SkbError(skb.id, `${op} after free`);
}

/** skb_copy_bits: copies `len` bytes starting at `offset` (linear, then frags) into `to` at `toOffset`. */
export function skbCopyBits(skb: SkBuff, offset: number, to: Buffer, toOffset: number, len: number): void {
  if (offset < 0 || len < 0 || offset + len > skb.len) throw new SkbError(skb.id, `copy_bits [${offset}, +${len}) outside ${skb.len} bytes`);
  const headlen = skb.headlen;
  if (offset < headlen) {
    const n = Math.min(len, headlen - offset);
    skb.shinfo.head.copy(to, toOffset, skb.data + offset, skb.data + offset + n);
    toOffset += n;
    offset += n;
    len -= n;
  }
  let start = headlen;
  for (const frag of skb.shinfo.frags) {
    if (len === 0) break;
    const end = start + frag.size;
    if (offset < end) {
      const from = offset - start;
      const n = Math.min(len, frag.size - from);
      frag.page.buf.copy(to, toOffset, frag.offset + from, frag.offset + from + n);
      toOffset += n;
      offset += n;
      len -= n;
    }
    start = end;
  }
}

/** The skb's bytes as views (linear part, then the frags, adjacent ones as one view) — no copy; valid while the skb lives. */
export function skbViews(skb: SkBuff): Buffer[] {
  const views: Buffer[] = [];
  if (skb.headlen > 0) views.push(skb.shinfo.head.subarray(skb.data, skb.tail));
  // Frags whose bytes are adjacent in memory (consecutive frames of one pool) make one view.
  let mem: ArrayBufferLike | null = null;
  let start = 0;
  let end = 0;
  for (const frag of skb.shinfo.frags) {
    const page = frag.page;
    const at = page.buf.byteOffset + frag.offset;
    if (mem === page.mem && at === end) {
      end += frag.size;
      continue;
    }
    if (mem !== null) views.push(Buffer.from(mem, start, end - start));
    mem = page.mem;
    start = at;
    end = at + frag.size;
  }
  if (mem !== null) views.push(Buffer.from(mem, start, end - start));
  return views;
}

/** Linearised copy of all the skb's bytes, read from the pages now. */
export function skbToBuffer(skb: SkBuff): Buffer {
  if (skb.len === 0) return EMPTY;
  const out = Buffer.allocUnsafe(skb.len);
  skbCopyBits(skb, 0, out, 0, skb.len);
  return out;
}

/** Copies every frag descriptor of `from` into `to` (a fresh SharedInfo), taking one reference per slot on behalf of `holder`. */
function copyFragsRef(holder: SkBuff, to: SharedInfo, from: SharedInfo): void {
  for (const f of from.frags) {
    skbFragRef(holder, f.page, f.destructor);
    to.frags.push(new SkbFrag(f.page, f.offset, f.size, f.destructor));
  }
  to.txFlags = from.txFlags;
}

/**
 * pskb_copy: a private copy of the head (linear bytes copied) whose new SharedInfo points at
 * the same pages — one new reference per frag. What tcp_transmit_skb sends when the previous
 * clone of this skb is still alive.
 */
export function pskbCopy(skb: SkBuff): SkBuff {
  assertLive(skb, 'pskb_copy');
  const headlen = skb.headlen;
  const n = newSkb(headlen === 0 ? EMPTY : Buffer.allocUnsafe(headlen), skb.owner);
  skb.shinfo.head.copy(n.shinfo.head, 0, skb.data, skb.tail);
  n.tail = headlen;
  n.len = skb.len;
  n.dataLen = skb.dataLen;
  copySkbHeader(n, skb);
  copyFragsRef(n, n.shinfo, skb.shinfo);
  emitCopy(n, skb, 'pskb');
  return n;
}

/** skb_copy: every byte copied into a linear skb; the copy holds no frag references at all. */
export function skbCopy(skb: SkBuff): SkBuff {
  assertLive(skb, 'skb_copy');
  const n = newSkb(skbToBuffer(skb), skb.owner);
  n.tail = skb.len;
  n.len = skb.len;
  copySkbHeader(n, skb);
  emitCopy(n, skb, 'full');
  return n;
}

/**
 * pskb_expand_head (skb_unclone): gives a cloned skb a SharedInfo of its own — linear bytes
 * copied (with `extraTail` bytes of tailroom), one new reference per frag — and drops its share
 * of the old one (whose references go when its last holder does).
 */
export function pskbExpandHead(skb: SkBuff, extraTail = 0): void {
  assertLive(skb, 'pskb_expand_head');
  const headlen = skb.headlen;
  const size = headlen + extraTail;
  const old = skb.shinfo;
  const shinfo = new SharedInfo(size === 0 ? EMPTY : Buffer.allocUnsafe(size));
  old.head.copy(shinfo.head, 0, skb.data, skb.tail);
  copyFragsRef(skb, shinfo, old);
  skb.shinfo = shinfo;
  skb.data = 0;
  skb.tail = headlen;
  skb.cloned = false;
  // Drop our share of the old SharedInfo as skb_release_data would.
  if (--old.dataref === 0) for (const f of old.frags) skbFragUnref(skb, f);
}

/** Makes `skb` writable: unshares it first if a clone still shares its SharedInfo. */
export function skbUnclone(skb: SkBuff, extraTail = 0): void {
  if (skbCloned(skb) || skb.shinfo.head.length - skb.tail < extraTail) pskbExpandHead(skb, extraTail);
}

/**
 * Drops the frags from index `from` on, releasing their slots' references. Slots leave the
 * array before their reference goes, so a destructor firing here sees no skb pointing at it.
 */
function dropFragsFrom(skb: SkBuff, from: number): void {
  const dropped = skb.shinfo.frags.splice(from);
  for (const f of dropped) skbFragUnref(skb, f);
}

/** Removes the first `eat` bytes of frag data: whole frags dropped (references released), a straddler trimmed. */
function eatFrags(skb: SkBuff, eat: number): void {
  const frags = skb.shinfo.frags;
  let n = 0;
  while (n < frags.length && eat >= frags[n]!.size) eat -= frags[n++]!.size;
  const dropped = frags.splice(0, n);
  if (eat > 0) {
    const f = frags[0]!;
    f.offset += eat;
    f.size -= eat;
  }
  for (const f of dropped) skbFragUnref(skb, f);
}

/**
 * __pskb_pull_tail: moves `delta` bytes from the frags into the linear part (copying them).
 * A frag pulled completely is dropped and its reference released at once — its bytes now
 * live in the head; a frag pulled partly is trimmed and keeps its reference. Unclones first.
 */
export function pullTail(skb: SkBuff, delta: number): void {
  assertLive(skb, 'pskb_pull_tail');
  if (delta <= 0) return;
  if (delta > skb.dataLen) throw new SkbError(skb.id, `pull_tail of ${delta} bytes with ${skb.dataLen} in frags`);
  skbUnclone(skb, delta);
  skbCopyBits(skb, skb.headlen, skb.shinfo.head, skb.tail, delta);
  eatFrags(skb, delta);
  skb.tail += delta;
  skb.dataLen -= delta;
}

/**
 * __pskb_trim_head (tcp_trim_head): drops the first `len` bytes — linear first, then frags;
 * a frag dropped whole releases its reference, a straddling one is trimmed. Unclones first.
 */
export function pskbTrimHead(skb: SkBuff, len: number): void {
  assertLive(skb, 'pskb_trim_head');
  if (len < 0 || len > skb.len) throw new SkbError(skb.id, `trim_head of ${len} bytes from ${skb.len}`);
  if (len === 0) return;
  skbUnclone(skb);
  const fromHead = Math.min(len, skb.headlen);
  skb.data += fromHead;
  const eat = len - fromHead;
  skb.dataLen -= eat;
  skb.len -= len;
  eatFrags(skb, eat);
}

/** ___pskb_trim: keeps the first `len` bytes; frags past the cut release their references. Unclones first. */
export function pskbTrim(skb: SkBuff, len: number): void {
  assertLive(skb, 'pskb_trim');
  if (len < 0 || len > skb.len) throw new SkbError(skb.id, `trim to ${len} bytes from ${skb.len}`);
  if (len === skb.len) return;
  skbUnclone(skb);
  const headlen = skb.headlen;
  if (len <= headlen) {
    dropFragsFrom(skb, 0);
    skb.tail = skb.data + len;
    skb.dataLen = 0;
    skb.len = len;
    return;
  }
  let offset = headlen;
  const frags = skb.shinfo.frags;
  let i = 0;
  for (; i < frags.length; i++) {
    const f = frags[i]!;
    if (offset + f.size >= len) {
      f.size = len - offset;
      i++;
      break;
    }
    offset += f.size;
  }
  dropFragsFrom(skb, i);
  skb.len = len;
  skb.dataLen = len - headlen;
}

/**
 * skb_split: moves everything after the first `len` bytes of `skb` into `skb1` (a fresh skb,
 * linear room for any head bytes past the cut). Whole frags move with no reference change;
 * a frag straddling the cut appears in both, so `skb1`'s slot takes one new reference.
 * `skb` must not be cloned (tcpFragment unclones first).
 */
export function skbSplit(skb: SkBuff, skb1: SkBuff, len: number): void {
  assertLive(skb, 'skb_split');
  if (skbCloned(skb) || skbCloned(skb1)) throw new SkbError(skb.id, 'skb_split on a cloned skb');
  if (len < 0 || len > skb.len) throw new SkbError(skb.id, `split at ${len} of ${skb.len}`);
  const headlen = skb.headlen;
  const from = skb.shinfo.frags;
  const to = skb1.shinfo.frags;
  skb1.shinfo.txFlags = skb.shinfo.txFlags;
  if (len < headlen) {
    const n = headlen - len;
    if (skb1.shinfo.head.length - skb1.tail < n) throw new SkbError(skb1.id, `split needs ${n} bytes of linear room`);
    skb.shinfo.head.copy(skb1.shinfo.head, skb1.tail, skb.data + len, skb.tail);
    skb1.tail += n;
    for (const f of from) to.push(f);
    from.length = 0;
    skb1.len += n + skb.dataLen;
    skb1.dataLen += skb.dataLen;
    skb.tail = skb.data + len;
    skb.dataLen = 0;
    skb.len = len;
    return;
  }
  let pos = headlen;
  let keep = 0;
  for (const f of from) {
    const end = pos + f.size;
    if (end <= len) {
      from[keep++] = f;
    } else if (pos >= len) {
      to.push(f);
    } else {
      // The straddler: both halves point at the page; the new slot needs its own reference.
      skbFragRef(skb1, f.page, f.destructor);
      to.push(new SkbFrag(f.page, f.offset + (len - pos), end - len, f.destructor));
      f.size = len - pos;
      from[keep++] = f;
    }
    pos = end;
  }
  from.length = keep;
  const moved = skb.len - len;
  skb1.len += moved;
  skb1.dataLen += moved;
  skb.dataLen = len - headlen;
  skb.len = len;
}

/**
 * skb_segment (GSO, with tcp_gso_segment's header fixups): splits `skb` into segments of at
 * most `mss` bytes. Each segment gets its own SharedInfo: head bytes copied, frag descriptors
 * copied with one new reference per frag per segment. `skb` is left untouched (the caller
 * frees it, as validate_xmit_skb consumes the GSO skb once segmented). FIN and PSH ride on
 * the last segment only.
 */
export function skbSegment(skb: SkBuff, mss: number): SkBuff[] {
  assertLive(skb, 'skb_segment');
  if (mss <= 0) throw new SkbError(skb.id, `segment with mss ${mss}`);
  const segs: SkBuff[] = [];
  const headlen = skb.headlen;
  const frags = skb.shinfo.frags;
  let offset = 0;
  let fi = 0;
  let fragStart = headlen;
  do {
    const len = Math.min(mss, skb.len - offset);
    const inHead = Math.max(0, Math.min(len, headlen - offset));
    const seg = newSkb(inHead === 0 ? EMPTY : Buffer.allocUnsafe(inHead), skb.owner);
    if (inHead > 0) skb.shinfo.head.copy(seg.shinfo.head, 0, skb.data + offset, skb.data + offset + inHead);
    seg.tail = inHead;
    seg.shinfo.txFlags = skb.shinfo.txFlags;
    let pos = offset + inHead;
    const end = offset + len;
    while (pos < end) {
      const f = frags[fi]!;
      const fEnd = fragStart + f.size;
      const from = pos - fragStart;
      const n = Math.min(end, fEnd) - pos;
      skbFragRef(seg, f.page, f.destructor);
      seg.shinfo.frags.push(new SkbFrag(f.page, f.offset + from, n, f.destructor));
      pos += n;
      if (pos === fEnd) {
        fi++;
        fragStart = fEnd;
      }
    }
    seg.len = len;
    seg.dataLen = len - inHead;
    copySkbHeader(seg, skb);
    seg.seq = (skb.seq + offset) >>> 0;
    offset += len;
    const last = offset >= skb.len;
    seg.tcpFlags = last ? skb.tcpFlags : skb.tcpFlags & ~(TCPHDR_FIN | TCPHDR_PSH);
    seg.endSeq = (seg.seq + len + (seg.tcpFlags & TCPHDR_FIN ? 1 : 0)) >>> 0;
    emitCopy(seg, skb, 'segment');
    segs.push(seg);
  } while (offset < skb.len);
  return segs;
}

/**
 * skb_orphan_frags: for holders that may keep an skb indefinitely. Every frag that carries a
 * destructor is copied into a private page and its destructor reference dropped (which may
 * fire it now). Works on a shared SharedInfo too: the copy is byte-identical, so every sharer
 * may see it. Returns the number of frags orphaned.
 */
export function orphanFrags(skb: SkBuff): number {
  assertLive(skb, 'skb_orphan_frags');
  let n = 0;
  const o = skb.owner;
  for (const frag of skb.shinfo.frags) {
    const d = frag.destructor;
    if (d === null) continue;
    const page = Page.alloc(frag.size);
    frag.page.buf.copy(page.buf, 0, frag.offset, frag.offset + frag.size);
    const old = new SkbFrag(frag.page, frag.offset, frag.size, d);
    frag.page = page;
    frag.offset = 0;
    frag.destructor = null;
    n++;
    if (o.bus !== null && o.bus.wants('orphan')) {
      o.bus.emit({ type: 'orphan', conn: o.conn, t: o.clock ? o.clock.now() : 0, skb: skb.id, destructor: d.id, bytes: frag.size });
    }
    skbFragUnref(skb, old);
  }
  return n;
}
