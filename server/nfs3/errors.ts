import { VfsError } from '../vfs/errors.ts';
import {
  NFS3ERR_ACCES,
  NFS3ERR_BADHANDLE,
  NFS3ERR_DQUOT,
  NFS3ERR_EXIST,
  NFS3ERR_FBIG,
  NFS3ERR_INVAL,
  NFS3ERR_IO,
  NFS3ERR_ISDIR,
  NFS3ERR_MLINK,
  NFS3ERR_NAMETOOLONG,
  NFS3ERR_NODEV,
  NFS3ERR_NOENT,
  NFS3ERR_NOSPC,
  NFS3ERR_NOTDIR,
  NFS3ERR_NOTEMPTY,
  NFS3ERR_NOTSUPP,
  NFS3ERR_NXIO,
  NFS3ERR_PERM,
  NFS3ERR_ROFS,
  NFS3ERR_STALE,
  NFS3ERR_XDEV,
  NFSSTAT3_NAMES,
  type nfsstat3,
} from './constants.ts';

/** What an NfsError was about, for the log line (never sent to the client). */
export interface NfsErrorContext {
  op?: string;
  path?: string;
  name?: string;
  errno?: string;
  [key: string]: unknown;
}

/**
 * The one error every NFS handler throws: it carries the nfsstat3 the client gets. The VFS layer
 * under the handlers throws errno-coded errors (VfsError, node:fs), mapped here. The procedure wrapper turns it into that procedure's resfail reply.
 */
export class NfsError extends Error {
  override readonly name = 'NfsError';
  constructor(
    readonly status: Exclude<nfsstat3, 0>,
    readonly context: NfsErrorContext = {},
  ) {
    super(`${NFSSTAT3_NAMES[status]}${context.op ? ` (${context.op}${context.path !== undefined ? ` ${context.path}` : ''})` : ''}`);
  }
}

/** Node errno codes → nfsstat3 (RFC 1813 §2.6 gives the Unix meaning of each status). */
const ERRNO_STATUS: Readonly<Record<string, Exclude<nfsstat3, 0>>> = {
  EPERM: NFS3ERR_PERM,
  ENOENT: NFS3ERR_NOENT,
  EIO: NFS3ERR_IO,
  ENXIO: NFS3ERR_NXIO,
  EACCES: NFS3ERR_ACCES,
  EEXIST: NFS3ERR_EXIST,
  EXDEV: NFS3ERR_XDEV,
  ENODEV: NFS3ERR_NODEV,
  ENOTDIR: NFS3ERR_NOTDIR,
  EISDIR: NFS3ERR_ISDIR,
  EINVAL: NFS3ERR_INVAL,
  EFBIG: NFS3ERR_FBIG,
  ENOSPC: NFS3ERR_NOSPC,
  EROFS: NFS3ERR_ROFS,
  EMLINK: NFS3ERR_MLINK,
  ENAMETOOLONG: NFS3ERR_NAMETOOLONG,
  ENOTEMPTY: NFS3ERR_NOTEMPTY,
  EDQUOT: NFS3ERR_DQUOT,
  ESTALE: NFS3ERR_STALE,
  EBADHANDLE: NFS3ERR_BADHANDLE,
  // O_NOFOLLOW on a symlink: the object is not what the operation needs.
  ELOOP: NFS3ERR_INVAL,
  ENOTSUP: NFS3ERR_NOTSUPP,
  EOPNOTSUPP: NFS3ERR_NOTSUPP,
};

/** An exception thrown by node:fs, narrowed. */
export function errnoOf(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('E') ? code : undefined;
}

/**
 * Converts anything a handler may throw into an NfsError: NfsErrors pass through, errno errors map
 * by the table (unknown errnos are NFS3ERR_IO), and anything else is rethrown — a programming error
 * that the RPC layer answers with SYSTEM_ERR and logs.
 */
export function toNfsError(e: unknown, context: NfsErrorContext = {}): NfsError {
  if (e instanceof NfsError) return e;
  const errno = errnoOf(e);
  if (errno === undefined) throw e;
  // The VFS layer says what it was doing; the caller's context, if any, is more specific.
  const own = e instanceof VfsError ? e.context : {};
  return new NfsError(ERRNO_STATUS[errno] ?? NFS3ERR_IO, { ...own, ...context, errno });
}
