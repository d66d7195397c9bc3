/** The Network Status Monitor (XNFS chapter 11, sm_inter.x): program 100024, version 1. */
export const NSM_PROGRAM = 100024;
export const NSM_V1 = 1;

export const SM_MAXSTRLEN = 1024;
/** sm_status.priv / mon.priv: opaque[16]. */
export const SM_PRIV_SIZE = 16;

export const SMPROC = {
  NULL: 0,
  STAT: 1,
  MON: 2,
  UNMON: 3,
  UNMON_ALL: 4,
  SIMU_CRASH: 5,
  NOTIFY: 6,
} as const;

/** sm_res */
export const STAT_SUCC = 0;
export const STAT_FAIL = 1;
