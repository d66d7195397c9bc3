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
import type { Vfs, VNode } from '../vfs/vfs.ts';
import { NFS3ERR_NOTDIR, NFS3ERR_TOOSMALL } from './constants.ts';
import { NfsError, toNfsError } from './errors.ts';

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

export interface DirPageEntry {
  name: string;
  cookie: bigint;
  /** The entry as a node ('.' is the directory, '..' its parent). */
  node: VNode;
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
 */
export async function readDirPage(
  dir: VNode,
  cookie: bigint,
  vfs: Vfs,
  take: (e: DirPageEntry) => boolean,
): Promise<{ entries: DirPageEntry[]; eof: boolean }> {
  if (!dir.st.isDirectory()) throw new NfsError(NFS3ERR_NOTDIR, { op: 'readdir', path: dir.rel });
  let a: Anchor;
  try {
    a = vfs.dirAnchor(dir, 'readdir');
  } catch (e) {
    throw toNfsError(e, { op: 'readdir', path: dir.rel });
  }
  return using(a, (anchor) => readAnchoredPage(dir, anchor, cookie, vfs, take));
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
 */
async function readAnchoredPage(
  dir: VNode,
  a: Anchor,
  cookie: bigint,
  vfs: Vfs,
  take: (e: DirPageEntry) => boolean,
): Promise<{ entries: DirPageEntry[]; eof: boolean }> {
  const { names, cookies } = await sortedNames(dir, a, vfs);
  const entries: DirPageEntry[] = [];
  const offer = (name: string, c: bigint, node: VNode | undefined): boolean => {
    if (!node) return true; // removed since readdir: not listed
    const e = { name, cookie: c, node };
    if (!take(e)) return false;
    entries.push(e);
    return true;
  };
  const full = (c: bigint): { entries: DirPageEntry[]; eof: boolean } => {
    // Entries sharing a cookie must travel together: the next page starts after that cookie.
    while (entries.length > 0 && entries[entries.length - 1]!.cookie === c) entries.pop();
    if (entries.length === 0) throw new NfsError(NFS3ERR_TOOSMALL, { op: 'readdir', path: dir.rel });
    return { entries, eof: false };
  };
  if (cookie < COOKIE_DOT && !offer('.', COOKIE_DOT, dir)) return full(COOKIE_DOT);
  if (cookie < COOKIE_DOTDOT && !offer('..', COOKIE_DOTDOT, vfs.parentAtSync(dir, a))) return full(COOKIE_DOTDOT);
  for (let i = firstAfter(cookies, cookie); i < names.length; i++) {
    const name = names[i]!;
    if (!offer(name, cookies[i]!, entryOf(dir, a, name, vfs))) return full(cookies[i]!);
  }
  return { entries, eof: true };
}

function entryOf(dir: VNode, a: Anchor, name: string, vfs: Vfs): VNode | undefined {
  try {
    return vfs.entrySync(dir, a, name);
  } catch {
    return undefined;
  }
}
