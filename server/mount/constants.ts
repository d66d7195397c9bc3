/** RFC 1813 appendix I: the MOUNT program. Version 1 is also served for DUMP/EXPORT (old showmount). */
export const MOUNT_PROGRAM = 100005;
export const MOUNT_V1 = 1;
export const MOUNT_V3 = 3;

export const MNTPATHLEN = 1024;
export const MNTNAMLEN = 255;
export const FHSIZE3 = 64;

/** mountstat3 */
export const MNT3_OK = 0;
export const MNT3ERR_PERM = 1;
export const MNT3ERR_NOENT = 2;
export const MNT3ERR_IO = 5;
export const MNT3ERR_ACCES = 13;
export const MNT3ERR_NOTDIR = 20;
export const MNT3ERR_INVAL = 22;
export const MNT3ERR_NAMETOOLONG = 63;
export const MNT3ERR_NOTSUPP = 10004;
export const MNT3ERR_SERVERFAULT = 10006;
export type mountstat3 = 0 | 1 | 2 | 5 | 13 | 20 | 22 | 63 | 10004 | 10006;

export const MOUNTPROC3 = {
  NULL: 0,
  MNT: 1,
  DUMP: 2,
  UMNT: 3,
  UMNTALL: 4,
  EXPORT: 5,
} as const;
