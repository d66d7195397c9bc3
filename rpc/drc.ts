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

/** What a lookup finds: nothing (execute it), the same call still executing (drop it), or the reply. */
export type DrcLookup = { kind: 'miss' } | { kind: 'in-progress' } | { kind: 'hit'; reply: Buffer };

interface Entry {
  key: string;
  reply: Buffer | null;
  /** Neighbours in age order (least recently begun or hit first). */
  older: Entry | null;
  newer: Entry | null;
}

/**
 * Duplicate request cache for non-idempotent procedures (the idea of Juszczak's 1989 paper, as
 * nfsd's nfscache.c applies it).
 *
 * Key: client address (not port: Linux reconnects after a timeout, and a test client may get a new
 * port), xid, program, version, procedure, the argument length, and the credential and the first
 * RC_CSUMLEN argument bytes themselves (where nfsd_cache_csum keeps a checksum of them), so an xid
 * reused for a different call is a miss rather than a wrong answer — never a collision. A SHA-1 of
 * them cost 2–30 µs a call (OpenSSL's per-hash setup); the bytes as a string cost ~0.1 µs, and the
 * keys of `maxEntries` entries stay under ~3 MiB (a 400-byte AUTH_SYS body at most). Bounded in
 * entries and bytes; the oldest completed entries go first. Replies are stored as one private copy,
 * so a cached reply never references page-cache memory.
 */
export class DuplicateRequestCache {
  private readonly entries = new Map<string, Entry>();
  /**
   * Age order as a list through the entries, as nfsd's LRU list: evicting the oldest by iterating
   * the Map walked over every deleted slot V8 keeps at its front until it rehashes, microseconds per
   * call once the cache is full.
   */
  private oldest: Entry | null = null;
  private newest: Entry | null = null;
  private bytes = 0;
  private readonly counters = { hits: 0, misses: 0, inProgressDrops: 0, evictions: 0 };

  constructor(private readonly limits: DrcLimits = DRC_DEFAULT_LIMITS) {}

  /** `args`: the arguments' first bytes (at least RC_CSUMLEN of them when there are that many); `argsLength`: all of them. */
  static key(c: { remoteAddress: string; xid: number; prog: number; vers: number; proc: number; cred: Buffer; args: Buffer; argsLength: number }): string {
    // The credential's length is in the key: its bytes and the arguments' cannot shift into each other.
    const args = c.args.length > RC_CSUMLEN ? c.args.subarray(0, RC_CSUMLEN) : c.args;
    return `${c.remoteAddress}|${c.xid}|${c.prog}|${c.vers}|${c.proc}|${c.argsLength}|${c.cred.length}|${c.cred.toString('latin1')}${args.toString('latin1')}`;
  }

  /** Looks the call up; on a miss, records it as in progress (the caller must `complete` or `abandon`). */
  begin(key: string): DrcLookup {
    const e = this.entries.get(key);
    if (!e) {
      this.counters.misses++;
      const fresh: Entry = { key, reply: null, older: null, newer: null };
      this.entries.set(key, fresh);
      this.append(fresh);
      this.evict();
      return { kind: 'miss' };
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
  complete(key: string, reply: Buffer | readonly Buffer[]): void {
    const e = this.entries.get(key);
    if (!e) return;
    if (e.reply) this.bytes -= e.reply.length;
    e.reply = Buffer.concat(Buffer.isBuffer(reply) ? [reply] : reply);
    this.bytes += e.reply.length;
    this.evict();
  }

  /** The call produced no reply to cache (dropped, or the connection failed before encoding). */
  abandon(key: string): void {
    const e = this.entries.get(key);
    if (e && e.reply === null) {
      this.entries.delete(key);
      this.unlink(e);
    }
  }

  stats(): DrcStats {
    return { ...this.counters, entries: this.entries.size, bytes: this.bytes };
  }

  /** The oldest completed entries go until the limits hold; calls still executing stay. */
  private evict(): void {
    for (let e = this.oldest; e; ) {
      if (this.entries.size <= this.limits.maxEntries && this.bytes <= this.limits.maxBytes) return;
      const next = e.newer;
      if (e.reply !== null) {
        this.entries.delete(e.key);
        this.unlink(e);
        this.bytes -= e.reply.length;
        this.counters.evictions++;
      }
      e = next;
    }
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
