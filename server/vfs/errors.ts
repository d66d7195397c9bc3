/**
 * The VFS layer's one error: an errno (the Unix meaning RFC 1813 maps its statuses from) plus what the
 * layer was doing. It carries `code` like a node:fs error, so the protocol layers above map both the
 * same way and this layer needs to know nothing of NFS. EBADHANDLE is Linux's own errno for a file
 * handle its server did not issue (include/linux/errno.h).
 */
export type VfsErrno = 'ESTALE' | 'EBADHANDLE' | 'ENOTDIR' | 'ENOENT' | 'EACCES' | 'ENAMETOOLONG' | 'EINVAL';

export class VfsError extends Error {
  override readonly name = 'VfsError';
  constructor(
    readonly code: VfsErrno,
    readonly context: { op: string; path?: string; reason?: string; [key: string]: unknown },
  ) {
    super(`${code} (${context.op}${context.path !== undefined ? ` ${context.path}` : ''}${context.reason ? `: ${context.reason}` : ''})`);
  }
}
