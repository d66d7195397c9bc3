/**
 * From file handles to host paths, and nothing outside an export.
 *
 * Node cannot open a file by inode, so a handle (export, device, inode, generation) is turned into a
 * path relative to the export with an inode→path map. The map is an in-memory hint, never the truth:
 * every use re-checks the path with lstat (same device, inode and generation). When the hint is missing
 * (after a restart) or wrong (the file was renamed behind the server), the export is walked once,
 * breadth-first with lstat, refilling the map with every object seen; a handle whose object the walk does
 * not find is stale (ESTALE). We rebuild rather than persist the map because a persisted map goes stale on
 * every change made outside the server and would need a write on every create; the walk is always right
 * and its cost (one lstat per object of the export) is paid once per restart.
 *
 * Containment: symlinks are never followed (lstat, O_NOFOLLOW, walks do not enter them), and every
 * resolved object's real location (the kernel's name for a descriptor of it) must lie inside the
 * export, so a directory swapped for a symlink after the handle was issued does not lead out. Those checks hold for the
 * moment they were made only: everything that acts on an object or lists, looks up or changes entries
 * of a directory does so through an anchor (anchor.ts), a descriptor checked to be that object.
 */
import type { BigIntStats } from 'node:fs';
import { fstatSync, lstatSync, readlinkSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { Anchor, generationOf, identityOf, insideExport, locate, openContainedDir, openDirAnchor, openObjectAnchor, sameObject, using } from './anchor.ts';
import { AnchorCache, ANCHOR_CACHE_DEFAULT_LIMITS, type AnchorCacheLimits } from './anchor-cache.ts';
import { VfsError } from './errors.ts';
import type { Export } from './export.ts';
import type { FileHandleCodec, FileId } from './fh.ts';

/** A resolved object: where it is, what it was when resolved, and its handle. */
export interface VNode {
  exp: Export;
  /** Path relative to the export directory, '' for the root. */
  rel: string;
  /** Host path. */
  abs: string;
  st: BigIntStats;
  fh: Buffer;
  /**
   * The kept anchor the node was found through, checked (in place, inside the export) when the
   * node was made. A node lives for one call: a later step of that call, anchoring the directory
   * for its change, need not check it again, as knfsd's fh_verify checks a handle once per call.
   */
  checked?: Anchor;
}

/**
 * A handle whose object a walk did not find is stale (ESTALE) without another walk for this
 * long: clients retry stale handles, and each walk costs an lstat per object of the export. Short,
 * because a walk can miss an object that a concurrent rename was moving.
 */
export const MISSING_TTL_MS = 2000;
const MISSING_MAX = 10_000;

/** Linux NAME_MAX: the longest name of one directory entry, in bytes. */
export const NAME_MAX = 255;

/** What readlink of `/proc/self/fd/N` appends when the name the descriptor was opened by is gone. */
const DELETED = ' (deleted)';

/** Where a kept anchor's object is: its attributes and export-relative path when checked. */
interface Where {
  st: BigIntStats;
  rel: string;
}

const SETTLED = Promise.resolve();
/** Distinct kept anchors remembered as checked in one batch (searched in order: a batch names few). */
const CHECKED_NOW_MAX = 16;

const keyOf = (exportId: number, dev: bigint, ino: bigint): string => `${exportId}:${dev}:${ino}`;

/**
 * A name from the wire that must name one entry of a directory. `.`/`..` are legal here only for
 * LOOKUP; callers that create or remove reject them themselves. A `/` or NUL could never name an entry
 * and would be a path to somewhere else: refused before it reaches the file system.
 */
export function checkComponent(name: string, op: string): void {
  if (name.length === 0) throw new VfsError('ENOENT', { op, name, reason: 'empty name' });
  if (name.includes('/') || name.includes('\0')) throw new VfsError('EACCES', { op, name, reason: 'separator or NUL in name' });
  if (Buffer.byteLength(name) > NAME_MAX) throw new VfsError('ENAMETOOLONG', { op, name: name.slice(0, 32) });
}

/** The host path of `rel` (export-relative, normalised: '' or names joined by '/'). */
function hostPathOf(exp: Export, rel: string): string {
  if (rel === '') return exp.dir;
  return exp.dir.endsWith('/') ? `${exp.dir}${rel}` : `${exp.dir}/${rel}`;
}

export class Vfs {
  private readonly byId = new Map<number, Export>();
  /** Hint: export:dev:ino → path relative to the export. One entry per object seen (a walk sees all). */
  private readonly paths = new Map<string, string>();
  private readonly walks = new Map<number, Promise<void>>();
  /** Objects a walk did not find, until when another walk is not worth it (a client retrying a stale handle). */
  private readonly missing = new Map<string, number>();
  /** Anchors (and directories' listings) kept between calls. */
  private readonly kept: AnchorCache;
  private readonly sweeper: NodeJS.Timeout;
  /**
   * Kept anchors checked in the current stretch of synchronous work, and what each check found (the
   * same index in both arrays: short arrays, as a Map's table churn cost depth 1 ~10 %). The
   * calls of one socket read are dispatched in one such stretch (and their continuations run in one
   * microtask drain), so a client with many calls in flight on one file pays one fstat and one
   * readlink per batch instead of per call: at depth 16 those two were 20,000 of the ~23,000 system
   * calls of 10,000 4 KiB READs. A check holds for the moment it was made in any case (see the top
   * of this file); this one was made while the calls reusing it were already received, so each reply
   * still reports a state the object had while its call was in progress. Emptied at the next
   * microtask checkpoint (a call that arrives after a reply was sent is in a later socket read), and
   * whenever a call that changes anything settles (`changed`) or the server moves or removes an
   * object, so nothing the server itself changed is answered from before the change.
   */
  private readonly checkedAnchors: Anchor[] = [];
  private readonly checkedWheres: Where[] = [];
  private readonly forgetChecks = (): void => {
    this.checkedAnchors.length = 0;
    this.checkedWheres.length = 0;
  };
  /** Walks done so far (metrics, tests). */
  walkCount = 0;

  constructor(
    readonly exports: readonly Export[],
    readonly fh: FileHandleCodec,
    private readonly log: Logger,
    limits: Readonly<AnchorCacheLimits> = ANCHOR_CACHE_DEFAULT_LIMITS,
  ) {
    for (const e of exports) {
      this.byId.set(e.id, e);
    }
    this.kept = new AnchorCache(limits);
    this.sweeper = setInterval(() => this.kept.sweep(), limits.idleMs).unref();
  }

  handleOf(exp: Export, st: BigIntStats): Buffer {
    return this.fh.encode({ exportId: exp.id, dev: st.dev, ino: st.ino, gen: generationOf(st) });
  }

  /** Builds the node for an object just found at `rel`, and remembers where it lives. */
  node(exp: Export, rel: string, st: BigIntStats): VNode {
    this.paths.set(keyOf(exp.id, st.dev, st.ino), rel);
    return { exp, rel, abs: hostPathOf(exp, rel), st, fh: this.handleOf(exp, st) };
  }

  async root(exp: Export): Promise<VNode> {
    const st = await lstat(exp.dir, { bigint: true }).catch((e: unknown) => {
      throw new VfsError('ESTALE', { op: 'root', path: exp.path, reason: (e as Error).message });
    });
    return this.node(exp, '', st);
  }

  /** Handle → node. EBADHANDLE if this server did not issue it, ESTALE if its object is gone. */
  async resolve(fh: Buffer): Promise<VNode> {
    return this.resolveNow(fh);
  }

  /**
   * `resolve` that answers synchronously when the handle's anchor is kept (the common case: no
   * promise, no event-loop turn) and may throw synchronously; a promise otherwise.
   */
  resolveNow(fh: Buffer): VNode | Promise<VNode> {
    const id = this.fh.decode(fh);
    const exp = this.byId.get(id.exportId);
    // A genuine handle of an export no longer configured: the object is gone for this client.
    if (!exp) throw new VfsError('ESTALE', { op: 'resolve', exportId: id.exportId });
    return this.keptNode(exp, fh) ?? this.find(exp, id, fh);
  }

  /** A handle without a kept anchor: by its remembered path, else by walking the export. */
  private async find(exp: Export, id: FileId, fh: Buffer): Promise<VNode> {
    const key = keyOf(exp.id, id.dev, id.ino);
    let found = await this.tryHint(exp, id, key, fh);
    // The generation is part of what is missing: the inode number may already name a newer file.
    const missingKey = `${key}:${id.gen}`;
    if (!found && (this.missing.get(missingKey) ?? 0) <= Date.now()) {
      await this.walk(exp);
      found = await this.tryHint(exp, id, key, fh);
      if (!found) this.rememberMissing(missingKey);
    }
    if (!found) throw new VfsError('ESTALE', { op: 'resolve', path: exp.path, ino: String(id.ino) });
    return found;
  }

  /**
   * An object whose anchor is kept (anchor-cache.ts): the descriptor is the object, so only whether
   * it still exists and where it is now are checked. Anything else is left to the path of a handle
   * without one, which tells a vanished object from one outside the export.
   */
  private keptNode(exp: Export, fh: Buffer): VNode | undefined {
    const key = fh.toString('latin1');
    const a = this.kept.peek(key);
    if (!a) return undefined;
    const i = this.checkedAnchors.indexOf(a);
    let found = i < 0 ? undefined : this.checkedWheres[i];
    if (!found) {
      found = this.whereNow(exp, a);
      if (!found) {
        this.kept.drop(key);
        return undefined;
      }
      // A reaction of a settled promise: queueMicrotask makes an async resource per call (~1 µs).
      if (this.checkedAnchors.length === 0) void SETTLED.then(this.forgetChecks);
      if (this.checkedAnchors.length < CHECKED_NOW_MAX) {
        this.checkedAnchors.push(a);
        this.checkedWheres.push(found);
      }
      this.paths.set(keyOf(exp.id, found.st.dev, found.st.ino), found.rel);
    }
    return { exp, rel: found.rel, abs: hostPathOf(exp, found.rel), st: found.st, fh: Buffer.from(fh), checked: a };
  }

  /** A kept anchor's attributes and export-relative path now, unless removed, unnamed or outside `exp`. */
  private whereNow(exp: Export, a: Anchor): Where | undefined {
    const st = fstatSync(a.fd, { bigint: true });
    if (st.nlink === 0n) return undefined;
    const real = readlinkSync(a.path);
    // The name it was reached by is gone (another hard link may remain): find it by its handle again.
    if (real.endsWith(DELETED) || !insideExport(exp, real)) return undefined;
    return { st, rel: real === exp.dir ? '' : real.slice(exp.dir.endsWith('/') ? exp.dir.length : exp.dir.length + 1) };
  }

  private async tryHint(exp: Export, id: FileId, key: string, fh: Buffer): Promise<VNode | undefined> {
    const rel = this.paths.get(key) ?? (id.dev === exp.dev && (await this.isRootIno(exp, id.ino)) ? '' : undefined);
    if (rel === undefined) return undefined;
    const abs = hostPathOf(exp, rel);
    const found = locate(exp, abs, id);
    if (found === 'gone') {
      this.paths.delete(key);
      return undefined;
    }
    if (found === 'outside') {
      this.log.warn({ export: exp.path, rel }, 'vfs: the object now lies outside the export (moved out, or a symlinked directory on its path)');
      return undefined;
    }
    this.paths.set(key, rel);
    this.kept.keep(fh.toString('latin1'), found.anchor);
    found.anchor.close();
    // The client's handle is the object's handle (its tag was just checked): no need to make it again.
    return { exp, rel, abs, st: found.st, fh: Buffer.from(fh) };
  }

  private rememberMissing(key: string): void {
    if (this.missing.size >= MISSING_MAX) this.missing.clear();
    this.missing.set(key, Date.now() + MISSING_TTL_MS);
  }

  private async isRootIno(exp: Export, ino: bigint): Promise<boolean> {
    const st = await lstat(exp.dir, { bigint: true }).catch(() => undefined);
    return st !== undefined && st.ino === ino;
  }

  /** One walk per export at a time; callers arriving during a walk share it. */
  private walk(exp: Export): Promise<void> {
    let w = this.walks.get(exp.id);
    if (!w) {
      w = this.doWalk(exp).finally(() => this.walks.delete(exp.id));
      this.walks.set(exp.id, w);
    }
    return w;
  }

  private async doWalk(exp: Export): Promise<void> {
    const started = performance.now();
    this.walkCount++;
    let seen = 0;
    const queue: string[] = [''];
    for (let rel = queue.shift(); rel !== undefined; rel = queue.shift()) {
      let dir: Anchor;
      try {
        dir = openContainedDir(exp, rel === '' ? exp.dir : path.join(exp.dir, rel), 'walk', rel);
      } catch {
        continue; // vanished, replaced or unreadable: its subtree cannot be resolved now
      }
      await using(dir, async (a) => {
        const names = await readdir(a.path).catch(() => [] as string[]);
        for (const name of names) {
          const childRel = rel === '' ? name : `${rel}/${name}`;
          const st = await lstat(a.at(name), { bigint: true }).catch(() => undefined);
          if (!st) continue;
          seen++;
          this.paths.set(keyOf(exp.id, st.dev, st.ino), childRel);
          if (st.isDirectory()) queue.push(childRel);
        }
      });
    }
    this.log.info({ export: exp.path, objects: seen, ms: Math.round(performance.now() - started) }, 'vfs: export walked to rebuild the inode map');
  }

  /**
   * An anchor on directory `dir` (ENOTDIR if it is not one), to list, look up or change its entries.
   * A kept one is checked as a new one would be (it exists, inside the export); a new one is kept.
   */
  dirAnchor(dir: VNode, op: string): Anchor {
    if (!dir.st.isDirectory()) throw new VfsError('ENOTDIR', { op, path: dir.rel });
    const key = dir.fh.toString('latin1');
    const kept = this.kept.peek(key);
    if (kept) {
      if (kept === dir.checked || this.whereNow(dir.exp, kept)) return kept.hold();
      this.kept.drop(key);
    }
    const a = openDirAnchor(dir.exp, dir.abs, identityOf(dir.st), op, dir.rel);
    this.kept.keep(key, a);
    return a;
  }

  /** The listing kept with `dir`'s anchor, if the directory is unchanged since (`st`: its fstat now). */
  listing<T>(dir: VNode, st: BigIntStats): T | undefined {
    return this.kept.listing<T>(dir.fh.toString('latin1'), st);
  }

  /** Keeps a listing of `dir` read after the fstat `st` taken at `nowNs` (see AnchorCache.keepListing). */
  keepListing(dir: VNode, st: BigIntStats, nowNs: bigint, value: unknown, names: number): void {
    this.kept.keepListing(dir.fh.toString('latin1'), st, nowNs, value, names);
  }

  /** Closes the kept descriptors (server shutdown). */
  close(): void {
    clearInterval(this.sweeper);
    this.kept.clear();
  }

  /** An anchor on the object `n` itself (a symlink as itself), to change its attributes. */
  objectAnchor(n: VNode, op: string): Anchor {
    return openObjectAnchor(n.abs, identityOf(n.st), op, n.rel);
  }

  /**
   * An anchor on the directory that holds `n`, and `n`'s name in it, for what only a name can do (link
   * it, read a symlink's target): the directory is checked to be inside the export, and the entry to
   * still be `n`.
   */
  async parentAnchor(n: VNode, op: string): Promise<{ dir: Anchor; name: string }> {
    if (n.rel === '') throw new VfsError('EINVAL', { op, path: n.rel, reason: 'the export root has no entry of its own' });
    const name = path.posix.basename(n.rel);
    const dir = openContainedDir(n.exp, path.dirname(n.abs), op, n.rel);
    const st = await lstat(dir.at(name), { bigint: true }).catch(() => undefined);
    if (!st || !sameObject(st, identityOf(n.st))) {
      dir.close();
      throw new VfsError('ESTALE', { op, path: n.rel, reason: 'the name now holds another object' });
    }
    return { dir, name };
  }

  /**
   * LOOKUP semantics: `.` is the directory, `..` its parent (the root's parent is the root), any
   * other name one entry, examined with lstat (a symlink is returned as itself, never followed).
   */
  async lookup(dir: VNode, name: string): Promise<VNode> {
    if (!dir.st.isDirectory()) throw new VfsError('ENOTDIR', { op: 'lookup', path: dir.rel });
    checkComponent(name, 'lookup');
    if (name === '.') return dir;
    if (dir.rel === '' && name === '..') return dir;
    return using(this.dirAnchor(dir, 'lookup'), (a) => (name === '..' ? this.parentAt(dir, a) : this.entry(dir, a, name)));
  }

  /** The parent of `dir` through its anchor `a` (the real `..` of the open directory). */
  async parentAt(dir: VNode, a: Anchor): Promise<VNode> {
    return this.parentAtSync(dir, a);
  }

  /** parentAt, synchronous (a listing's `..`). */
  parentAtSync(dir: VNode, a: Anchor): VNode {
    if (dir.rel === '') return dir;
    const rel = path.posix.dirname(dir.rel);
    const parentRel = rel === '.' ? '' : rel;
    return this.node(dir.exp, parentRel, lstatSync(a.at('..'), { bigint: true }));
  }

  /**
   * The node of entry `name` of `dir`, read through `dir`'s anchor `a`. The lstat is synchronous,
   * as the anchor's own calls: a READDIRPLUS page stats hundreds of entries, and a threadpool round
   * trip and event-loop turn for each cost many times the syscall.
   */
  async entry(dir: VNode, a: Anchor, name: string): Promise<VNode> {
    return this.entrySync(dir, a, name);
  }

  /** entry(), for callers that stat many entries in a row (a listing) without a promise each. */
  entrySync(dir: VNode, a: Anchor, name: string): VNode {
    const rel = dir.rel === '' ? name : `${dir.rel}/${name}`;
    return this.node(dir.exp, rel, lstatSync(a.at(name), { bigint: true }));
  }

  /** Re-reads an object's attributes (after a change, or for post-op attributes); synchronous, as entry(). */
  async restat(n: VNode): Promise<VNode> {
    const st = lstatSync(n.abs, { bigint: true });
    if (!sameObject(st, identityOf(n.st))) throw new VfsError('ESTALE', { op: 'restat', path: n.rel });
    return { ...n, st };
  }

  /**
   * The path a client sees for the object with this device and inode (`dev:ino`, the page
   * cache's file key), from what the server has seen of it; undefined when it has not.
   */
  nameOf(devIno: string): string | undefined {
    for (const exp of this.exports) {
      const rel = this.paths.get(`${exp.id}:${devIno}`);
      if (rel !== undefined) return rel === '' ? exp.path : `${exp.path === '/' ? '' : exp.path}/${rel}`;
    }
    return undefined;
  }

  /** A call that changes objects or directories has settled: the next resolution checks again (`checkedAnchors`). */
  changed(): void {
    this.forgetChecks();
  }

  /** Forgets where an object lived (after REMOVE, or when RENAME replaced it), and closes its kept anchor. */
  forget(exp: Export, st: BigIntStats): void {
    this.forgetChecks();
    this.paths.delete(keyOf(exp.id, st.dev, st.ino));
    this.kept.drop(this.handleOf(exp, st).toString('latin1'));
  }

  /** After RENAME: the object and, for a directory, everything remembered below it moved. */
  moved(exp: Export, fromRel: string, toRel: string, st: BigIntStats): void {
    this.forgetChecks();
    this.paths.set(keyOf(exp.id, st.dev, st.ino), toRel);
    if (!st.isDirectory()) return;
    const prefix = `${exp.id}:`;
    const below = `${fromRel}/`;
    for (const [key, rel] of this.paths) {
      if (key.startsWith(prefix) && rel.startsWith(below)) this.paths.set(key, `${toRel}/${rel.slice(below.length)}`);
    }
  }
}
