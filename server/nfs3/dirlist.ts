/**
 * Directory paging shared by READDIR and READDIRPLUS.
 *
 * Cookies are a hash of the entry name (63 bits, as ext4 gives 64-bit NFS clients), with 1 and 2
 * reserved for `.` and `..`. Each page lists the entries in cookie order starting after the client's
 * cookie, so a cookie stays meaningful whatever happens in the directory between two calls: entries
 * created or removed meanwhile never shift the others, so none is listed twice or skipped (positional
 * cookies get both wrong; nfsserve listed 2,500 entries as 7,100). The price is one readdir and sort
 * per call, which is small next to the lstat of each listed entry.
 *
 * The cookie verifier is echoed back and never checked: the cookies do not need it, and answering
 * NFS3ERR_BAD_COOKIE makes Linux `ls` hang and macOS Finder fail, as other servers found.
 */
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { using, type Anchor } from '../vfs/anchor.ts';
import type { Vfs, VNode } from '../vfs/vfs.ts';
import { NFS3ERR_NOTDIR, NFS3ERR_TOOSMALL } from './constants.ts';
import { NfsError, toNfsError } from './errors.ts';

export const COOKIE_DOT = 1n;
export const COOKIE_DOTDOT = 2n;
const FIRST_NAME_COOKIE = 3n;
/** Entries examined per step while filling a page (each lstat is synchronous: Vfs.entry). */
const STAT_BATCH = 32;

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

/** readDirPage through the directory's anchor: the listing and every lstat are of that directory. */
async function readAnchoredPage(
  dir: VNode,
  a: Anchor,
  cookie: bigint,
  vfs: Vfs,
  take: (e: DirPageEntry) => boolean,
): Promise<{ entries: DirPageEntry[]; eof: boolean }> {
  let raw: Buffer[];
  try {
    raw = await readdir(a.path, { encoding: 'buffer' });
  } catch (e) {
    throw toNfsError(e, { op: 'readdir', path: dir.rel });
  }
  // Names that are not UTF-8 could not be named back by a client (see decodeFilename3): not listed.
  const names = raw.filter((b) => isUtf8(b)).map((b) => b.toString('utf8'));
  const candidates: { name: string; cookie: bigint }[] = [];
  if (cookie < COOKIE_DOT) candidates.push({ name: '.', cookie: COOKIE_DOT });
  if (cookie < COOKIE_DOTDOT) candidates.push({ name: '..', cookie: COOKIE_DOTDOT });
  const named = names.map((name) => ({ name, cookie: cookieOf(name) })).filter((e) => e.cookie > cookie);
  named.sort((x, y) => (x.cookie < y.cookie ? -1 : x.cookie > y.cookie ? 1 : x.name < y.name ? -1 : 1));
  candidates.push(...named);

  const entries: DirPageEntry[] = [];
  for (let i = 0; i < candidates.length; i += STAT_BATCH) {
    const batch = candidates.slice(i, i + STAT_BATCH);
    const nodes = await Promise.all(batch.map((c) => nodeOf(dir, a, c.name, vfs)));
    for (let j = 0; j < batch.length; j++) {
      const node = nodes[j];
      if (!node) continue; // removed since readdir
      const e = { ...batch[j]!, node };
      if (!take(e)) {
        // Entries sharing a cookie must travel together: the next page starts after that cookie.
        while (entries.length > 0 && entries[entries.length - 1]!.cookie === e.cookie) entries.pop();
        if (entries.length === 0) throw new NfsError(NFS3ERR_TOOSMALL, { op: 'readdir', path: dir.rel });
        return { entries, eof: false };
      }
      entries.push(e);
    }
  }
  return { entries, eof: true };
}

async function nodeOf(dir: VNode, a: Anchor, name: string, vfs: Vfs): Promise<VNode | undefined> {
  if (name === '.') return dir;
  if (name === '..') return vfs.parentAt(dir, a);
  // Removed since readdir: not listed.
  return vfs.entry(dir, a, name).catch(() => undefined);
}
