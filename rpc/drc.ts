import { createHash } from 'node:crypto';

/** Limits of the duplicate request cache (named config values, see server/config.ts). */
export interface DrcLimits {
  maxEntries: number;
  maxBytes: number;
}

export const DRC_DEFAULT_LIMITS: DrcLimits = { maxEntries: 4096, maxBytes: 16 * 1024 * 1024 };

/**
 * Argument bytes the key hashes (knfsd's RC_CSUMLEN): enough to hold every procedure's handles,
 * names and offsets; the length covers the rest. Hashing all of a 1 MiB WRITE cost ~0.5 ms a call.
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
  reply: Buffer | null;
}

/**
 * Duplicate request cache for non-idempotent procedures (the idea of Juszczak's 1989 paper, as
 * nfsd's nfscache.c applies it).
 *
 * Key: client address (not port: Linux reconnects after a timeout, and a test client may get a new
 * port), xid, program, version, procedure, the argument length, and a SHA-1 of the credential and
 * the first RC_CSUMLEN argument bytes (as nfsd_cache_csum), so an xid reused for a different call
 * is a miss rather than a wrong answer. Bounded in entries and bytes; the oldest completed entries
 * go first. Replies are stored as one private copy, so a cached reply never references page-cache
 * memory.
 */
export class DuplicateRequestCache {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  private readonly counters = { hits: 0, misses: 0, inProgressDrops: 0, evictions: 0 };

  constructor(private readonly limits: DrcLimits = DRC_DEFAULT_LIMITS) {}

  static key(c: { remoteAddress: string; xid: number; prog: number; vers: number; proc: number; cred: Buffer; args: Buffer }): string {
    const h = createHash('sha1').update(c.cred).update(c.args.subarray(0, RC_CSUMLEN)).digest('base64');
    return `${c.remoteAddress}|${c.xid}|${c.prog}|${c.vers}|${c.proc}|${c.args.length}|${h}`;
  }

  /** Looks the call up; on a miss, records it as in progress (the caller must `complete` or `abandon`). */
  begin(key: string): DrcLookup {
    const e = this.entries.get(key);
    if (!e) {
      this.counters.misses++;
      this.entries.set(key, { reply: null });
      this.evict();
      return { kind: 'miss' };
    }
    if (e.reply === null) {
      this.counters.inProgressDrops++;
      return { kind: 'in-progress' };
    }
    this.counters.hits++;
    // Refresh its place: a client that keeps retransmitting keeps its answer.
    this.entries.delete(key);
    this.entries.set(key, e);
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
    if (e && e.reply === null) this.entries.delete(key);
  }

  stats(): DrcStats {
    return { ...this.counters, entries: this.entries.size, bytes: this.bytes };
  }

  private evict(): void {
    for (const [k, e] of this.entries) {
      if (this.entries.size <= this.limits.maxEntries && this.bytes <= this.limits.maxBytes) return;
      if (e.reply === null) continue;
      this.entries.delete(k);
      this.bytes -= e.reply.length;
      this.counters.evictions++;
    }
  }
}
