/** Limits of the duplicate request cache (named config values, see server/config.ts). */
export interface DrcLimits {
  maxEntries: number;
  maxBytes: number;
}

export const DRC_DEFAULT_LIMITS: DrcLimits = { maxEntries: 4096, maxBytes: 16 * 1024 * 1024 };

/**
 * Argument bytes the key holds (knfsd's RC_CSUMLEN): enough to hold every procedure's handles,
 * names and offsets; the length covers the rest. Keying on all of a 1 MiB WRITE cost ~0.5 ms a call.
 */
export const RC_CSUMLEN = 256;

export interface DrcStats {
  hits: number;
  misses: number;
  inProgressDrops: number;
  evictions: number;
  entries: number;
  bytes: number;
}

/** What identifies a call: `args` are the arguments' first bytes (at least RC_CSUMLEN of them when there are that many), `argsLength` all of them. */
export interface DrcCall {
  remoteAddress: string;
  xid: number;
  prog: number;
  vers: number;
  proc: number;
  cred: Buffer;
  args: Buffer;
  argsLength: number;
}

/** A call begun and not yet completed or abandoned: what `complete` and `abandon` take. */
export type DrcSlot = { readonly __drcSlot: true };

/** What a lookup finds: nothing (execute it, then complete or abandon the slot), the same call still executing (drop it), or the reply. */
export type DrcLookup = { kind: 'miss'; slot: DrcSlot } | { kind: 'in-progress' } | { kind: 'hit'; reply: Buffer };

interface Entry {
  remoteAddress: string;
  xid: number;
  prog: number;
  vers: number;
  proc: number;
  argsLength: number;
  /** The credential, then the arguments' first RC_CSUMLEN bytes: one private copy. */
  ident: Buffer;
  credLength: number;
  reply: Buffer | null;
  /** Neighbours in age order (least recently begun or hit first). */
  older: Entry | null;
  newer: Entry | null;
  /** The next entry with the same xid: the chain of its bucket. */
  sameXid: Entry | null;
}

function matches(e: Entry, c: DrcCall, argsBytes: number): boolean {
  return (
    e.xid === c.xid &&
    e.proc === c.proc &&
    e.argsLength === c.argsLength &&
    e.prog === c.prog &&
    e.vers === c.vers &&
    e.remoteAddress === c.remoteAddress &&
    e.credLength === c.cred.length &&
    e.ident.length === e.credLength + argsBytes &&
    e.ident.compare(c.cred, 0, e.credLength, 0, e.credLength) === 0 &&
    e.ident.compare(c.args, 0, argsBytes, e.credLength) === 0
  );
}

/**
 * Duplicate request cache for non-idempotent procedures (the idea of Juszczak's 1989 paper, as
 * nfsd's nfscache.c applies it).
 *
 * A call is the same call when its client address (not port: Linux reconnects after a timeout, and
 * a test client may get a new port), xid, program, version, procedure and argument length are equal
 * and so are its credential and first RC_CSUMLEN argument bytes themselves (where nfsd_cache_csum
 * keeps a checksum of them), so an xid reused for a different call is a miss rather than a wrong
 * answer — never a collision. As nfsd_cache_lookup, entries are found by xid (a Map from xid to a
 * chain of entries, one in all but a reused xid's case) and compared field by field: a SHA-1 of the
 * bytes cost 2–30 µs a call, a string key made of them ~4 µs to build and more to hash, where the
 * comparison is a memcmp of ~300 bytes. Bounded in entries and bytes; the oldest completed entries
 * go first. Replies are stored as one private copy, so a cached reply never references page-cache
 * memory.
 */
export class DuplicateRequestCache {
  private readonly byXid = new Map<number, Entry>();
  private size = 0;
  /**
   * Age order as a list through the entries, as nfsd's LRU list: evicting the oldest by iterating
   * a Map walked over every deleted slot V8 keeps at its front until it rehashes, microseconds per
   * call once the cache is full.
   */
  private oldest: Entry | null = null;
  private newest: Entry | null = null;
  private bytes = 0;
  private readonly counters = { hits: 0, misses: 0, inProgressDrops: 0, evictions: 0 };

  constructor(private readonly limits: DrcLimits = DRC_DEFAULT_LIMITS) {}

  /** Looks the call up; on a miss, records it as in progress (the caller must `complete` or `abandon` the slot). */
  begin(c: DrcCall): DrcLookup {
    const argsBytes = Math.min(c.args.length, RC_CSUMLEN);
    const head = this.byXid.get(c.xid);
    let e = head ?? null;
    while (e && !matches(e, c, argsBytes)) e = e.sameXid;
    if (!e) {
      this.counters.misses++;
      const ident = Buffer.allocUnsafe(c.cred.length + argsBytes);
      c.cred.copy(ident, 0);
      c.args.copy(ident, c.cred.length, 0, argsBytes);
      const fresh: Entry = {
        remoteAddress: c.remoteAddress,
        xid: c.xid,
        prog: c.prog,
        vers: c.vers,
        proc: c.proc,
        argsLength: c.argsLength,
        ident,
        credLength: c.cred.length,
        reply: null,
        older: null,
        newer: null,
        sameXid: head ?? null,
      };
      this.byXid.set(c.xid, fresh);
      this.size++;
      this.append(fresh);
      this.evict();
      return { kind: 'miss', slot: fresh as unknown as DrcSlot };
    }
    if (e.reply === null) {
      this.counters.inProgressDrops++;
      return { kind: 'in-progress' };
    }
    this.counters.hits++;
    // Refresh its place: a client that keeps retransmitting keeps its answer.
    this.unlink(e);
    this.append(e);
    return { kind: 'hit', reply: e.reply };
  }

  /** Stores the reply (as chunks or whole) as one private copy. */
  complete(slot: DrcSlot, reply: Buffer | readonly Buffer[]): void {
    const e = slot as unknown as Entry;
    if (e.reply) this.bytes -= e.reply.length;
    e.reply = Buffer.concat(Buffer.isBuffer(reply) ? [reply] : reply);
    this.bytes += e.reply.length;
    this.evict();
  }

  /** The call produced no reply to cache (dropped, or the connection failed before encoding). */
  abandon(slot: DrcSlot): void {
    const e = slot as unknown as Entry;
    if (e.reply === null) this.remove(e);
  }

  stats(): DrcStats {
    return { ...this.counters, entries: this.size, bytes: this.bytes };
  }

  /** The oldest completed entries go until the limits hold; calls still executing stay. */
  private evict(): void {
    for (let e = this.oldest; e; ) {
      if (this.size <= this.limits.maxEntries && this.bytes <= this.limits.maxBytes) return;
      const next = e.newer;
      if (e.reply !== null) {
        this.bytes -= e.reply.length;
        this.remove(e);
        this.counters.evictions++;
      }
      e = next;
    }
  }

  /** Out of its xid's chain and the age list. */
  private remove(e: Entry): void {
    const head = this.byXid.get(e.xid);
    if (head === e) {
      if (e.sameXid) this.byXid.set(e.xid, e.sameXid);
      else this.byXid.delete(e.xid);
    } else {
      let p: Entry | null = head ?? null;
      while (p && p.sameXid !== e) p = p.sameXid;
      if (!p) return;
      p.sameXid = e.sameXid;
    }
    e.sameXid = null;
    this.size--;
    this.unlink(e);
  }

  private append(e: Entry): void {
    e.older = this.newest;
    e.newer = null;
    if (this.newest) this.newest.newer = e;
    else this.oldest = e;
    this.newest = e;
  }

  private unlink(e: Entry): void {
    if (e.older) e.older.newer = e.newer;
    else this.oldest = e.newer;
    if (e.newer) e.newer.older = e.older;
    else this.newest = e.older;
    e.older = e.newer = null;
  }
}
