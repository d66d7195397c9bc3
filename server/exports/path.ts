import path from 'node:path';

/** Client-visible export path in canonical form: absolute, no trailing slash, no `.`/`..`. */
export function normalizeExportPath(p: string): string {
  const n = path.posix.normalize(`/${p}`);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}
