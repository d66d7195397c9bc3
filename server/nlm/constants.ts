/**
 * The Network Lock Manager (X/Open XNFS "Protocols for X/Open PC Interworking: XNFS", chapters 9–10;
 * version 4 for NFSv3 in RFC 1813's companion, nlm_prot.x).
 */
export const NLM_PROGRAM = 100021;
export const NLM_V1 = 1;
export const NLM_V3 = 3;
export const NLM_V4 = 4;
export const NLM_VERSIONS = [NLM_V1, NLM_V3, NLM_V4] as const;

/** nlm_prot.x: LM_MAXSTRLEN (caller_name), MAXNETOBJ_SZ (cookie, fh, oh), MAXNAMELEN (nlm_notify.name). */
export const LM_MAXSTRLEN = 1024;
export const MAXNETOBJ_SZ = 1024;
export const LM_MAXNAMELEN = LM_MAXSTRLEN + 1;

export const NLMPROC = {
  NULL: 0,
  TEST: 1,
  LOCK: 2,
  CANCEL: 3,
  UNLOCK: 4,
  GRANTED: 5,
  TEST_MSG: 6,
  LOCK_MSG: 7,
  CANCEL_MSG: 8,
  UNLOCK_MSG: 9,
  GRANTED_MSG: 10,
  TEST_RES: 11,
  LOCK_RES: 12,
  CANCEL_RES: 13,
  UNLOCK_RES: 14,
  GRANTED_RES: 15,
  SHARE: 20,
  UNSHARE: 21,
  NM_LOCK: 22,
  FREE_ALL: 23,
} as const;

/** nlm4_stats; versions 1 and 3 (nlm_stats) stop at DENIED_GRACE_PERIOD. */
export const NLM4_GRANTED = 0;
export const NLM4_DENIED = 1;
export const NLM4_DENIED_NOLOCKS = 2;
export const NLM4_BLOCKED = 3;
export const NLM4_DENIED_GRACE_PERIOD = 4;
export const NLM4_DEADLCK = 5;
export const NLM4_ROFS = 6;
export const NLM4_STALE_FH = 7;
export const NLM4_FBIG = 8;
export const NLM4_FAILED = 9;
export type nlm4_stats = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;

export const NLM4_STATS_NAMES: Readonly<Record<nlm4_stats, string>> = {
  0: 'NLM4_GRANTED',
  1: 'NLM4_DENIED',
  2: 'NLM4_DENIED_NOLOCKS',
  3: 'NLM4_BLOCKED',
  4: 'NLM4_DENIED_GRACE_PERIOD',
  5: 'NLM4_DEADLCK',
  6: 'NLM4_ROFS',
  7: 'NLM4_STALE_FH',
  8: 'NLM4_FBIG',
  9: 'NLM4_FAILED',
};

/** A version 1/3 client only knows the first five stats; knfsd answers the rest as DENIED_NOLOCKS. */
export function statForVersion(vers: number, s: nlm4_stats): nlm4_stats {
  if (vers === NLM_V4 || s <= NLM4_DENIED_GRACE_PERIOD) return s;
  return s === NLM4_DEADLCK ? NLM4_DENIED : NLM4_DENIED_NOLOCKS;
}

/** fsh4_mode / fsh4_access: DOS share reservations (SHARE/UNSHARE). */
export const FSM_DN = 0;
export const FSM_DR = 1;
export const FSM_DW = 2;
export const FSM_DRW = 3;
export const FSA_NONE = 0;
export const FSA_R = 1;
export const FSA_W = 2;
export const FSA_RW = 3;
