/** RFC 5531 §9: the protocol version this implementation speaks. */
export const RPC_VERSION = 2;

/** RFC 5531 §9 msg_type. */
export const CALL = 0;
export const REPLY = 1;

/** reply_stat */
export const MSG_ACCEPTED = 0;
export const MSG_DENIED = 1;

/** accept_stat */
export const SUCCESS = 0;
export const PROG_UNAVAIL = 1;
export const PROG_MISMATCH = 2;
export const PROC_UNAVAIL = 3;
export const GARBAGE_ARGS = 4;
export const SYSTEM_ERR = 5;
export type AcceptStat = 0 | 1 | 2 | 3 | 4 | 5;

/** reject_stat */
export const RPC_MISMATCH = 0;
export const AUTH_ERROR = 1;

/** auth_stat (RFC 5531 §9, with the RPCSEC_GSS values left out: that flavour is not served). */
export const AUTH_OK = 0;
export const AUTH_BADCRED = 1;
export const AUTH_REJECTEDCRED = 2;
export const AUTH_BADVERF = 3;
export const AUTH_REJECTEDVERF = 4;
export const AUTH_TOOWEAK = 5;
export const AUTH_INVALIDRESP = 6;
export const AUTH_FAILED = 7;
export type AuthStat = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7;

/** RFC 5531 §8.2: an opaque_auth body holds at most 400 bytes. */
export const MAX_AUTH_BYTES = 400;
/** RFC 5531 appendix A: AUTH_SYS machinename<255> and gids<16>. */
export const AUTH_SYS_MAX_MACHINENAME = 255;
export const AUTH_SYS_MAX_GIDS = 16;

export const ACCEPT_STAT_NAMES: Readonly<Record<AcceptStat, string>> = {
  0: 'SUCCESS',
  1: 'PROG_UNAVAIL',
  2: 'PROG_MISMATCH',
  3: 'PROC_UNAVAIL',
  4: 'GARBAGE_ARGS',
  5: 'SYSTEM_ERR',
};
