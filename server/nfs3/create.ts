import { constants, lstat } from 'node:fs/promises';
import type { XdrReader } from '../../xdr/reader.ts';
import { using, type Anchor } from '../vfs/anchor.ts';
import { SyncDescriptor } from '../vfs/descriptor.ts';
import type { VNode } from '../vfs/vfs.ts';
import { CREATEMODE3_VALUES, DONT_CHANGE, EXCLUSIVE, GUARDED, NFS3ERR_EXIST, NFS3_CREATEVERFSIZE, type createmode3 } from './constants.ts';
import { NfsError, errnoOf, toNfsError } from './errors.ts';
import { anchoredAttrs, applySattr, beginDirChange, bornOwned, checkNewName, diropres, ownerOfNew, ownNew, truncateFile, withPre, type DirChange } from './modify.ts';
import { failureWcc, type NfsCall, type NfsProcedure } from './procedure.ts';
import { diropres3, type CREATE3resok, type diropres3fail } from './results.ts';
import { decodeDiropargs3, decodeSattr3, EMPTY_SATTR3, type diropargs3, type sattr3 } from './xdr.ts';

/** RFC 1813 §3.3.8 createhow3 */
export type createhow3 = { mode: typeof EXCLUSIVE; verf: Buffer } | { mode: Exclude<createmode3, typeof EXCLUSIVE>; obj_attributes: sattr3 };

export interface CREATE3args {
  where: diropargs3;
  how: createhow3;
}

function decodeCreatehow3(r: XdrReader): createhow3 {
  const mode = r.enumOf<createmode3>(CREATEMODE3_VALUES, 'createmode3');
  if (mode === EXCLUSIVE) return { mode, verf: r.fixedOpaque(NFS3_CREATEVERFSIZE) };
  return { mode, obj_attributes: decodeSattr3(r) };
}

/** Mode of a file whose creator gave none (knfsd would use 0; clients always send one). */
const DEFAULT_FILE_MODE = 0o644;
/** An exclusively created file stays private until the client's SETATTR gives it its real mode. */
const EXCLUSIVE_FILE_MODE = 0o600;

const O_NEW = constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW;

/**
 * Creates the file `at` names (an entry of the directory's anchor); undefined if the name already
 * exists (any type). The descriptor is the new file itself: whatever later happens to the name, the
 * file is owned and stamped through it. Synchronous, as every step of making the file (descriptor.ts).
 */
function createNew(at: string, rel: string, mode = EXCLUSIVE_FILE_MODE): SyncDescriptor | undefined {
  try {
    return SyncDescriptor.open(at, O_NEW, mode);
  } catch (e) {
    if (errnoOf(e) === 'EEXIST') return undefined;
    throw toNfsError(e, { op: 'create', path: rel });
  }
}

/**
 * EXCLUSIVE: the verifier is stored in the new file's times — mtime seconds from its first four
 * bytes, atime seconds from the last four, nanoseconds zero — as Linux nfsd does. A retransmitted
 * CREATE finds a file carrying its own verifier and succeeds; any other file there is NFS3ERR_EXIST.
 * The client replaces those times with a SETATTR right after.
 */
async function createExclusive(call: NfsCall, d: DirChange, dir: Anchor, name: string, verf: Buffer): Promise<VNode> {
  const rel = relOf(d, name);
  const mtime = verf.readUInt32BE(0);
  const atime = verf.readUInt32BE(4);
  const h = createNew(dir.at(name), rel);
  if (h) {
    try {
      await ownNew(d, h);
      await h.utimes(atime, mtime).catch((e: unknown) => {
        throw toNfsError(e, { op: 'create', path: rel });
      });
      return call.ctx.vfs.node(d.dir.exp, rel, h.stat());
    } finally {
      h.close();
    }
  }
  const st = await lstat(dir.at(name), { bigint: true });
  const carries = st.isFile() && st.mtimeNs === BigInt(mtime) * 1_000_000_000n && st.atimeNs === BigInt(atime) * 1_000_000_000n;
  if (!carries) throw new NfsError(NFS3ERR_EXIST, { op: 'create', path: rel, how: 'exclusive' });
  return call.ctx.vfs.node(d.dir.exp, rel, st);
}

/** UNCHECKED opens an existing regular file (applying the attributes, e.g. size 0); GUARDED refuses it. */
async function createChecked(call: NfsCall, d: DirChange, dir: Anchor, name: string, mode: createmode3, attrs: sattr3): Promise<VNode> {
  const rel = relOf(d, name);
  const fileMode = (attrs.mode ?? DEFAULT_FILE_MODE) & 0o7777;
  // Born with its mode when no other owner is to be given (knfsd's vfs_create); else private until
  // given away. Where the file system picks another group all the same (a `grpid` mount), the mode's
  // group bits reach that group until the chown below: what knfsd, which never chowns, leaves for good.
  const h = createNew(dir.at(name), rel, bornOwned(d) ? fileMode : EXCLUSIVE_FILE_MODE);
  if (!h) {
    const existing = await call.ctx.vfs.entry(d.dir, dir, name);
    if (mode === GUARDED || !existing.st.isFile()) throw new NfsError(NFS3ERR_EXIST, { op: 'create', path: rel });
    // As knfsd: of the attributes only the size applies to a file that was already there
    // (open(O_CREAT|O_TRUNC) by someone who may write but not chmod it).
    if (attrs.size === undefined) return existing;
    await applySattr(call, existing, { ...EMPTY_SATTR3, size: attrs.size }, 'create');
    await truncateFile(call, existing, attrs.size, 'create');
    return call.ctx.vfs.entry(d.dir, dir, name);
  }
  try {
    let st = h.stat();
    const owner = ownerOfNew(d);
    if (owner && (Number(st.uid) !== owner.uid || Number(st.gid) !== owner.gid)) {
      await h.chown(owner.uid, owner.gid);
      st = h.stat();
    }
    const fresh = call.ctx.vfs.node(d.dir.exp, rel, st);
    // Only what the new file does not have yet: the umask may have taken bits from its mode.
    const s: sattr3 = { ...attrs, mode: (st.mode & 0o7777n) === BigInt(fileMode) ? undefined : fileMode, uid: undefined, gid: undefined, size: undefined };
    const grow = attrs.size !== undefined && attrs.size > 0n;
    if (s.mode === undefined && s.atime.how === DONT_CHANGE && s.mtime.how === DONT_CHANGE && !grow) return fresh;
    await applySattr(call, fresh, s, 'create', true, h);
    if (grow) await truncateFile(call, fresh, attrs.size!, 'create');
    return { ...fresh, st: h.stat() };
  } finally {
    h.close();
  }
}

const relOf = (d: DirChange, name: string): string => (d.dir.rel === '' ? name : `${d.dir.rel}/${name}`);

export const create: NfsProcedure<CREATE3args, CREATE3resok, diropres3fail> = {
  name: 'CREATE',
  nonIdempotent: true,
  changes: (a) => [a.where.dir],
  result: diropres3,
  decode: (r: XdrReader) => ({ where: decodeDiropargs3(r), how: decodeCreatehow3(r) }),
  async run(a, call) {
    const d = await beginDirChange(call, a.where.dir, 'create');
    const { obj, after } = await withPre(d.pre, async () => {
      checkNewName(a.where.name, 'create');
      const how = a.how;
      return using(call.ctx.vfs.dirAnchor(d.dir, 'create'), async (dir) => {
        const made =
          how.mode === EXCLUSIVE
            ? await createExclusive(call, d, dir, a.where.name, how.verf)
            : await createChecked(call, d, dir, a.where.name, how.mode, how.obj_attributes ?? EMPTY_SATTR3);
        // The directory's post-op attributes from the descriptor the entry was made through.
        return { obj: made, after: anchoredAttrs(d.dir, dir) };
      });
    });
    return diropres(obj, { before: d.pre, after });
  },
  resfail: async (a, err, call) => ({ dir_wcc: await failureWcc(call, a.where.dir, err) }),
};
