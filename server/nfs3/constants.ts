/** RFC 1813 §2.2: the NFS program, and the version this server speaks. */
export const NFS_PROGRAM = 100003;
export const NFS_V3 = 3;

/** RFC 1813 §2.4: fixed sizes. */
export const NFS3_FHSIZE = 64;
export const NFS3_COOKIEVERFSIZE = 8;
export const NFS3_CREATEVERFSIZE = 8;
export const NFS3_WRITEVERFSIZE = 8;
/** Longest name a component may have (Linux NAME_MAX); longer names answer NFS3ERR_NAMETOOLONG. */
export const NFS3_NAME_MAX = 255;
/** Longest path (Linux PATH_MAX) for symlink targets. */
export const NFS3_PATH_MAX = 4096;
/**
 * Decoding cap for filename3/nfspath3 strings: larger than the limits above so an over-long name is
 * decoded and answered NFS3ERR_NAMETOOLONG, yet bounded so a hostile length cannot allocate much.
 */
export const NFS3_DECODE_STRING_MAX = 8192;

/** RFC 1813 §2.6 nfsstat3. */
export const NFS3_OK = 0;
export const NFS3ERR_PERM = 1;
export const NFS3ERR_NOENT = 2;
export const NFS3ERR_IO = 5;
export const NFS3ERR_NXIO = 6;
export const NFS3ERR_ACCES = 13;
export const NFS3ERR_EXIST = 17;
export const NFS3ERR_XDEV = 18;
export const NFS3ERR_NODEV = 19;
export const NFS3ERR_NOTDIR = 20;
export const NFS3ERR_ISDIR = 21;
export const NFS3ERR_INVAL = 22;
export const NFS3ERR_FBIG = 27;
export const NFS3ERR_NOSPC = 28;
export const NFS3ERR_ROFS = 30;
export const NFS3ERR_MLINK = 31;
export const NFS3ERR_NAMETOOLONG = 63;
export const NFS3ERR_NOTEMPTY = 66;
export const NFS3ERR_DQUOT = 69;
export const NFS3ERR_STALE = 70;
export const NFS3ERR_REMOTE = 71;
export const NFS3ERR_BADHANDLE = 10001;
export const NFS3ERR_NOT_SYNC = 10002;
export const NFS3ERR_BAD_COOKIE = 10003;
export const NFS3ERR_NOTSUPP = 10004;
export const NFS3ERR_TOOSMALL = 10005;
export const NFS3ERR_SERVERFAULT = 10006;
export const NFS3ERR_BADTYPE = 10007;
export const NFS3ERR_JUKEBOX = 10008;

export type nfsstat3 =
  | typeof NFS3_OK
  | typeof NFS3ERR_PERM
  | typeof NFS3ERR_NOENT
  | typeof NFS3ERR_IO
  | typeof NFS3ERR_NXIO
  | typeof NFS3ERR_ACCES
  | typeof NFS3ERR_EXIST
  | typeof NFS3ERR_XDEV
  | typeof NFS3ERR_NODEV
  | typeof NFS3ERR_NOTDIR
  | typeof NFS3ERR_ISDIR
  | typeof NFS3ERR_INVAL
  | typeof NFS3ERR_FBIG
  | typeof NFS3ERR_NOSPC
  | typeof NFS3ERR_ROFS
  | typeof NFS3ERR_MLINK
  | typeof NFS3ERR_NAMETOOLONG
  | typeof NFS3ERR_NOTEMPTY
  | typeof NFS3ERR_DQUOT
  | typeof NFS3ERR_STALE
  | typeof NFS3ERR_REMOTE
  | typeof NFS3ERR_BADHANDLE
  | typeof NFS3ERR_NOT_SYNC
  | typeof NFS3ERR_BAD_COOKIE
  | typeof NFS3ERR_NOTSUPP
  | typeof NFS3ERR_TOOSMALL
  | typeof NFS3ERR_SERVERFAULT
  | typeof NFS3ERR_BADTYPE
  | typeof NFS3ERR_JUKEBOX;

export const NFSSTAT3_NAMES: Readonly<Record<nfsstat3, string>> = {
  0: 'NFS3_OK',
  1: 'NFS3ERR_PERM',
  2: 'NFS3ERR_NOENT',
  5: 'NFS3ERR_IO',
  6: 'NFS3ERR_NXIO',
  13: 'NFS3ERR_ACCES',
  17: 'NFS3ERR_EXIST',
  18: 'NFS3ERR_XDEV',
  19: 'NFS3ERR_NODEV',
  20: 'NFS3ERR_NOTDIR',
  21: 'NFS3ERR_ISDIR',
  22: 'NFS3ERR_INVAL',
  27: 'NFS3ERR_FBIG',
  28: 'NFS3ERR_NOSPC',
  30: 'NFS3ERR_ROFS',
  31: 'NFS3ERR_MLINK',
  63: 'NFS3ERR_NAMETOOLONG',
  66: 'NFS3ERR_NOTEMPTY',
  69: 'NFS3ERR_DQUOT',
  70: 'NFS3ERR_STALE',
  71: 'NFS3ERR_REMOTE',
  10001: 'NFS3ERR_BADHANDLE',
  10002: 'NFS3ERR_NOT_SYNC',
  10003: 'NFS3ERR_BAD_COOKIE',
  10004: 'NFS3ERR_NOTSUPP',
  10005: 'NFS3ERR_TOOSMALL',
  10006: 'NFS3ERR_SERVERFAULT',
  10007: 'NFS3ERR_BADTYPE',
  10008: 'NFS3ERR_JUKEBOX',
};

export const NFSSTAT3_VALUES: ReadonlySet<number> = new Set(Object.keys(NFSSTAT3_NAMES).map(Number));

/** RFC 1813 §3 procedure numbers. */
export const NFSPROC3 = {
  NULL: 0,
  GETATTR: 1,
  SETATTR: 2,
  LOOKUP: 3,
  ACCESS: 4,
  READLINK: 5,
  READ: 6,
  WRITE: 7,
  CREATE: 8,
  MKDIR: 9,
  SYMLINK: 10,
  MKNOD: 11,
  REMOVE: 12,
  RMDIR: 13,
  RENAME: 14,
  LINK: 15,
  READDIR: 16,
  READDIRPLUS: 17,
  FSSTAT: 18,
  FSINFO: 19,
  PATHCONF: 20,
  COMMIT: 21,
} as const;

/** RFC 1813 §2.6 ftype3. */
export const NF3REG = 1;
export const NF3DIR = 2;
export const NF3BLK = 3;
export const NF3CHR = 4;
export const NF3LNK = 5;
export const NF3SOCK = 6;
export const NF3FIFO = 7;
export type ftype3 = 1 | 2 | 3 | 4 | 5 | 6 | 7;
export const FTYPE3_VALUES: ReadonlySet<number> = new Set([1, 2, 3, 4, 5, 6, 7]);

/** RFC 1813 §3.3.7 stable_how. */
export const UNSTABLE = 0;
export const DATA_SYNC = 1;
export const FILE_SYNC = 2;
export type stable_how = 0 | 1 | 2;
export const STABLE_HOW_VALUES: ReadonlySet<number> = new Set([0, 1, 2]);

/** RFC 1813 §3.3.8 createmode3. */
export const UNCHECKED = 0;
export const GUARDED = 1;
export const EXCLUSIVE = 2;
export type createmode3 = 0 | 1 | 2;
export const CREATEMODE3_VALUES: ReadonlySet<number> = new Set([0, 1, 2]);

/** RFC 1813 §2.6 time_how. */
export const DONT_CHANGE = 0;
export const SET_TO_SERVER_TIME = 1;
export const SET_TO_CLIENT_TIME = 2;
export const TIME_HOW_VALUES: ReadonlySet<number> = new Set([0, 1, 2]);

/** RFC 1813 §3.3.19 FSINFO properties. */
export const FSF3_LINK = 0x0001;
export const FSF3_SYMLINK = 0x0002;
export const FSF3_HOMOGENEOUS = 0x0008;
export const FSF3_CANSETTIME = 0x0010;
