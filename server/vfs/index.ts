export { openExports, exportIdFor, ExportConfigError, type Export, type ExportSpec } from './export.ts';
export { FileHandleCodec, loadFhSecret, FH_SIZE, FH_SECRET_FILE, type FileId } from './fh.ts';
export { Vfs, MISSING_TTL_MS, type VNode } from './vfs.ts';
export { Anchor, generationOf, openVerified } from './anchor.ts';
export { VfsError } from './errors.ts';
