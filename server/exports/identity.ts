/**
 * The identity a call acts with, after the export's squash options — Linux nfsd's rules
 * (fs/nfsd/auth.c, nfsd_setuser), so files created through pagelife get the owners they would
 * get from knfsd with the same exports line.
 */
import { AUTH_SYS, type Credential } from '../../rpc/program.ts';
import type { ExportOptions, Identity } from './types.ts';

/** (uid_t)-1 / (gid_t)-1: "no id"; Linux maps it to the anonymous id rather than trusting it. */
const INVALID_ID = 0xffffffff;

/**
 * - AUTH_NONE, and everyone under `all_squash`: anonuid/anongid, no supplementary groups.
 * - `root_squash`: uid 0 becomes anonuid; gid 0 becomes anongid, both as primary group and in the
 *   supplementary list — independently of the uid, since gid 0 alone opens root-group files.
 * - An AUTH_SYS uid or gid of (uint32)-1 becomes the anonymous id under any options.
 */
export function effectiveIdentity(cred: Credential, opts: ExportOptions): Identity {
  if (cred.flavor !== AUTH_SYS || opts.allSquash) return { uid: opts.anonuid, gid: opts.anongid, gids: [] };
  const { uid, gid, gids } = cred.sys;
  return {
    uid: uid === INVALID_ID || (opts.rootSquash && uid === 0) ? opts.anonuid : uid,
    gid: gid === INVALID_ID || (opts.rootSquash && gid === 0) ? opts.anongid : gid,
    gids: squashGids(gids, opts.rootSquash, opts.anongid),
  };
}

/** A fresh list (callers may keep it), made without a closure per call. */
function squashGids(gids: readonly number[], rootSquash: boolean, anongid: number): number[] {
  const out = new Array<number>(gids.length);
  for (let i = 0; i < gids.length; i++) out[i] = rootSquash && gids[i] === 0 ? anongid : gids[i]!;
  return out;
}
