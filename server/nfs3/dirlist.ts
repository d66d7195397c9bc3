/**
 * Directory paging shared by READDIR and READDIRPLUS.
 *
 * Cookies are a hash of the entry name (63 bits, as ext4 gives 64-bit NFS clients), with 1 and 2
 * reserved for `.` and `..`. Each page lists the entries in cookie order starting after the client's
 * cookie, so a cookie stays meaningful whatever happens in the directory between two calls: entries
 * created or removed meanwhile never shift the others, so none is listed twice or skipped (positional
 * cookies get both wrong; nfsserve listed 2,500 entries as 7,100). The names in cookie order are kept
 * with the directory's anchor while the directory is unchanged (server/vfs/anchor-cache.ts), so a
 * listing of many pages reads and sorts the directory once, and each page starts at a binary search.
 *
 * The cookie verifier is echoed back and never checked: the cookies do not need it, and answering
 * NFS3ERR_BAD_COOKIE makes Linux `ls` hang and macOS Finder fail, as other servers found.
 */
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { fstatSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { using, type Anchor } from '../vfs/anchor.ts';
import { keepable, type DirEntries, type EntryCache } from '../vfs/entry-cache.ts';
import type { Vfs, VNode } from '../vfs/vfs.ts';
import { fattr3FromStats, fileidOf } from './attr.ts';
import { NFS3ERR_NOTDIR, NFS3ERR_TOOSMALL } from './constants.ts';
import { NfsError, toNfsError } from './errors.ts';
import { entryplus3Xdr } from './results.ts';

export const COOKIE_DOT = 1n;
export const COOKIE_DOTDOT = 2n;
const FIRST_NAME_COOKIE = 3n;
/** A directory's names in cookie order (ties by name), as kept between pages. */
interface Sorted {
  names: string[];
  cookies: bigint[];
}

/** Names whose cookie is remembered: every page of a big directory hashes all its names again. */
const COOKIE_MEMO_MAX = 100_000;
const cookieMemo = new Map<string, bigint>();

export function cookieOf(name: string): bigint {
  let c = cookieMemo.get(name);
  if (c === undefined) {
    const h = createHash('sha1').update(name).digest().readBigUInt64BE(0) >> 1n;
    c = h < FIRST_NAME_COOKIE ? h + FIRST_NAME_COOKIE : h;
    if (cookieMemo.size >= COOKIE_MEMO_MAX) cookieMemo.clear();
    cookieMemo.set(name, c);
  }
  return c;
}

/**
 * One entry of a page ('.' is the directory, '..' its parent): what READDIR reports of it, and the
 * whole entryplus3 READDIRPLUS reports, in its XDR form as an element of the list (entryplus3Xdr).
 * Encoded once: a kept entry (see readAnchoredPage) is copied into each reply as it is, and shared
 * between calls, so never changed.
 */
export interface DirPageEntry {
  readonly name: string;
  readonly cookie: bigint;
  readonly fileid: bigint;
  readonly xdr: Buffer;
}

/**
 * The entries of a READDIRPLUS page after '..', as one buffer, kept while its directory and every
 * one of them stay unchanged: the next listing with the same cookie and room copies it whole.
 */
export interface DirPageRun {
  readonly xdr: Buffer;
  readonly eof: boolean;
  /** The names it was made from: kept no longer than they are (another object once the directory changed). */
  readonly names: unknown;
}

/** What a listing reads through: the file system, and the entries kept between listings (the NfsContext). */
export interface Listing {
  vfs: Vfs;
  entries: EntryCache<DirPageEntry, DirPageRun>;
}

/** A page: its entries, then (READDIRPLUS) a run of entries kept from an earlier listing. */
export interface DirPage {
  entries: DirPageEntry[];
  run?: Buffer;
  eof: boolean;
}

/** fileid + name + cookie: what READDIRPLUS's `dircount` counts. */
export function dirInfoSize(name: string): number {
  return 8 + xdrStringSize(name) + 8;
}

/** The listing's form of node `n` under `name`. */
function entryOf(n: VNode, name: string, cookie: bigint): DirPageEntry {
  const fileid = fileidOf(n.exp, n.st.dev, n.st.ino);
  return { name, cookie, fileid, xdr: entryplus3Xdr({ fileid, name, cookie, name_attributes: fattr3FromStats(n.st, n.exp), name_handle: n.fh }) };
}

/** Padded size of an XDR string of `name`. */
export function xdrStringSize(name: string): number {
  return 4 + ((Buffer.byteLength(name) + 3) & ~3);
}

/**
 * The entries after `cookie` that `take` accepts, in cookie order. `take` is called once per
 * candidate with the entry and answers whether it fits in the reply (and accounts for it when so).
 * Never splits entries whose cookies collide across two pages. NFS3ERR_TOOSMALL when not even one
 * entry fits and some remain.
 *
 * With `room` (READDIRPLUS: what is left of the reply, as `take` counts it), the entries after '..'
 * may come as a run kept from an earlier listing that started at the same place with the same room,
 * and such a run is kept when every entry of it is.
 */
export async function readDirPage(dir: VNode, cookie: bigint, ctx: Listing, take: (e: DirPageEntry) => boolean, room?: () => string): Promise<DirPage> {
  if (!dir.st.isDirectory()) throw new NfsError(NFS3ERR_NOTDIR, { op: 'readdir', path: dir.rel });
  let a: Anchor;
  try {
    a = ctx.vfs.dirAnchor(dir, 'readdir');
  } catch (e) {
    throw toNfsError(e, { op: 'readdir', path: dir.rel });
  }
  return using(a, (anchor) => readAnchoredPage(dir, anchor, cookie, ctx, take, room));
}

/** The directory's names in cookie order: kept from an earlier page if it has not changed since. */
async function sortedNames(dir: VNode, a: Anchor, vfs: Vfs): Promise<Sorted> {
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  const st = fstatSync(a.fd, { bigint: true });
  const kept = vfs.listing<Sorted>(dir, st);
  if (kept) return kept;
  let raw: Buffer[];
  try {
    raw = await readdir(a.path, { encoding: 'buffer' });
  } catch (e) {
    throw toNfsError(e, { op: 'readdir', path: dir.rel });
  }
  // Names that are not UTF-8 could not be named back by a client (see decodeFilename3): not listed.
  const named = raw.filter((b) => isUtf8(b)).map((b) => {
    const name = b.toString('utf8');
    return { name, cookie: cookieOf(name) };
  });
  named.sort((x, y) => (x.cookie < y.cookie ? -1 : x.cookie > y.cookie ? 1 : x.name < y.name ? -1 : 1));
  const sorted = { names: named.map((e) => e.name), cookies: named.map((e) => e.cookie) };
  vfs.keepListing(dir, st, nowNs, sorted, sorted.names.length);
  return sorted;
}

/** The index of the first cookie above `cookie`. */
function firstAfter(cookies: bigint[], cookie: bigint): number {
  let lo = 0;
  let hi = cookies.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cookies[mid]! <= cookie) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * readDirPage through the directory's anchor: the listing and every lstat are of that directory.
 * Each entry is stat'ed synchronously (Vfs.entrySync): a promise per entry cost more than its lstat.
 * Entries kept since an earlier listing (server/vfs/entry-cache.ts) are not stat'ed again.
 */
async function readAnchoredPage(
  dir: VNode,
  a: Anchor,
  cookie: bigint,
  ctx: Listing,
  take: (e: DirPageEntry) => boolean,
  room: (() => string) | undefined,
): Promise<DirPage> {
  const sorted = await sortedNames(dir, a, ctx.vfs);
  const { names, cookies } = sorted;
  // Taken before any entry below is stat'ed: what is kept was read at this time or later.
  const now = performance.now();
  const kept = ctx.entries.dir(dir.fh.toString('latin1'), a, now);
  const entries: DirPageEntry[] = [];
  const offer = (e: DirPageEntry | undefined): boolean => {
    if (!e) return true; // removed since readdir: not listed
    if (!take(e)) return false;
    entries.push(e);
    return true;
  };
  if (cookie < COOKIE_DOT && !offer(entryOf(dir, '.', COOKIE_DOT))) return full(dir, entries, COOKIE_DOT);
  if (cookie < COOKIE_DOTDOT && !offer(entryOf(ctx.vfs.parentAtSync(dir, a), '..', COOKIE_DOTDOT))) return full(dir, entries, COOKIE_DOTDOT);
  const from = firstAfter(cookies, cookie);
  const runKey = room && kept ? `${from}/${room()}` : undefined;
  if (runKey !== undefined) {
    const run = kept!.run(runKey, now);
    if (run?.names === sorted) return { entries, run: run.xdr, eof: run.eof };
  }
  const head = entries.length;
  // The oldest kept entry of this page after '..', or NaN once one of them is not kept.
  let oldest = now;
  const page = ((): DirPage => {
    for (let i = from; i < names.length; i++) {
      const name = names[i]!;
      const c = cookies[i]!;
      const found = kept?.find(name, now);
      let e: DirPageEntry | undefined;
      if (found) {
        e = found.value;
        oldest = Math.min(oldest, found.at);
      } else {
        e = statEntry(dir, a, name, c, ctx.vfs, kept, now);
        // Not kept, or not listed (gone since readdir, or its lstat failed): no run without it.
        if (!e || !kept?.find(name, now)) oldest = NaN;
      }
      if (!offer(e)) return full(dir, entries, c);
    }
    return { entries, eof: true };
  })();
  if (runKey !== undefined && !Number.isNaN(oldest) && page.entries.length > head) {
    const run = page.entries.slice(head);
    const xdr = Buffer.concat(run.map((e) => e.xdr));
    kept!.keepRun(runKey, { xdr, eof: page.eof, names: sorted }, xdr.length, oldest);
  }
  return page;
}

/** The page when `take` refused the entry with cookie `c`. */
function full(dir: VNode, entries: DirPageEntry[], c: bigint): DirPage {
  // Entries sharing a cookie must travel together: the next page starts after that cookie.
  while (entries.length > 0 && entries[entries.length - 1]!.cookie === c) entries.pop();
  if (entries.length === 0) throw new NfsError(NFS3ERR_TOOSMALL, { op: 'readdir', path: dir.rel });
  return { entries, eof: false };
}

/** Entry `name` from its lstat now (undefined if it is gone), kept for later listings when it may be. */
function statEntry(dir: VNode, a: Anchor, name: string, cookie: bigint, vfs: Vfs, kept: DirEntries<DirPageEntry, DirPageRun> | undefined, now: number): DirPageEntry | undefined {
  let n: VNode;
  try {
    n = vfs.entrySync(dir, a, name);
  } catch {
    return undefined;
  }
  const e = entryOf(n, name, cookie);
  if (kept && keepable(n.st)) kept.set(name, n.fh.toString('latin1'), e, now);
  return e;
}
