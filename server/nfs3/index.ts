export { createNfsProgram } from './program.ts';
export {
  createNfsContext,
  exportsAccessPolicy,
  DEFAULT_MAX_READ,
  DEFAULT_MAX_READDIR,
  DEFAULT_MAX_WRITE,
  DEFAULT_NFS_LIMITS,
  type AccessPolicy,
  type NfsContext,
  type NfsContextOptions,
  type NfsLimits,
} from './context.ts';
export { NFS_PROGRAM, NFS_V3, NFSPROC3, NFSSTAT3_NAMES, type nfsstat3 } from './constants.ts';
export { NfsError } from './errors.ts';
