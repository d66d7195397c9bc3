/**
 * NFSv3 ACCESS (RFC 1813 §3.3.4) from mode bits, the way Linux nfsd answers it (fs/nfsd/vfs.c,
 * nfsd_access over generic_permission): only the bits that make sense for the object's type are
 * ever granted, and each needs the permission Linux checks for it.
 *
 *   directory: READ ← r   LOOKUP ← x   MODIFY, EXTEND, DELETE ← w and x   (EXECUTE never)
 *   other:     READ ← r   EXECUTE ← x  MODIFY, EXTEND ← w                  (LOOKUP, DELETE never)
 *
 * The permission class is the first of owner, group (primary or supplementary), other that
 * applies — an owner denied by the owner bits is denied even if "other" would allow.
 * uid 0 (left after squashing) overrides as CAP_DAC_OVERRIDE does: always read and write, search
 * on directories, execute on other files only if some x bit is set.
 *
 * Read-only exports are not seen here: the NFS layer clears ACCESS3_WRITES on them.
 */
import type { Identity } from './types.ts';

export const ACCESS3_READ = 0x1;
export const ACCESS3_LOOKUP = 0x2;
export const ACCESS3_MODIFY = 0x4;
export const ACCESS3_EXTEND = 0x8;
export const ACCESS3_DELETE = 0x10;
export const ACCESS3_EXECUTE = 0x20;

/** The bits a read-only export never grants. */
export const ACCESS3_WRITES = ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE;

const S_ISVTX = 0o1000;
const R = 4;
const W = 2;
const X = 1;

interface Owned {
  mode: number;
  uid: number;
  gid: number;
  isDirectory: boolean;
}

/** The rwx bits (R|W|X) of the class `id` falls in. */
function classBits(st: Owned, id: Identity): number {
  if (id.uid === st.uid) return (st.mode >> 6) & 7;
  if (id.gid === st.gid || id.gids.includes(st.gid)) return (st.mode >> 3) & 7;
  return st.mode & 7;
}

/** The subset of `wanted` that `id` is granted on the object. */
export function accessGranted(st: Owned, id: Identity, wanted: number): number {
  let have: number;
  if (id.uid === 0) have = R | W | (st.isDirectory || (st.mode & 0o111) !== 0 ? X : 0);
  else have = classBits(st, id);
  const r = (have & R) !== 0;
  const w = (have & W) !== 0;
  const x = (have & X) !== 0;
  let granted = r ? ACCESS3_READ : 0;
  if (st.isDirectory) {
    if (x) granted |= ACCESS3_LOOKUP;
    if (w && x) granted |= ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE;
  } else {
    if (x) granted |= ACCESS3_EXECUTE;
    if (w) granted |= ACCESS3_MODIFY | ACCESS3_EXTEND;
  }
  return granted & wanted;
}

/**
 * May `id` remove or rename away `child` from directory `parent`? Write and search on the parent,
 * and, if the parent is sticky (/tmp), ownership of the child or of the parent, or root
 * (Linux may_delete → check_sticky).
 */
export function mayDelete(parent: Owned, child: { uid: number }, id: Identity): boolean {
  if (!parent.isDirectory || accessGranted(parent, id, ACCESS3_DELETE) === 0) return false;
  if ((parent.mode & S_ISVTX) === 0) return true;
  return id.uid === 0 || id.uid === child.uid || id.uid === parent.uid;
}
