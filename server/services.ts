import path from 'node:path';
import type { Logger } from 'pino';
import type { RpcProgram } from '../rpc/program.ts';
import type { Config } from './config.ts';
import { accessGranted } from './exports/access.ts';
import { effectiveIdentity } from './exports/identity.ts';
import { optionsFor } from './exports/match.ts';
import { exportFromFlags, loadExportsFile } from './exports/parse.ts';
import type { ExportEntry } from './exports/types.ts';
import { createMountProgram } from './mount/program.ts';
import { createNfsContext, type NfsContext } from './nfs3/context.ts';
import { createNfsProgram } from './nfs3/program.ts';
import type { PageCache } from './pagecache/page-cache.ts';
import { openExports } from './vfs/export.ts';

/** The path under which `--export DIR` (or the embedded default) is served. */
export const DEFAULT_EXPORT_PATH = '/export';

export interface Services {
  programs: RpcProgram[];
  nfs: NfsContext;
  close(): Promise<void>;
}

/**
 * Builds the exports (the `--export`/default one, plus an exports file's) and the MOUNT and NFS
 * programs over them. An exports file that names `/export` itself overrides the flag-built one.
 */
export async function createServices(o: { config: Config; exportDir: string; pageCache: PageCache; log: Logger }): Promise<Services> {
  const { config } = o;
  const entries: ExportEntry[] = config.exportsFile ? await loadExportsFile(config.exportsFile) : [];
  if (!entries.some((e) => e.path === DEFAULT_EXPORT_PATH)) {
    entries.unshift(exportFromFlags({ dir: o.exportDir, path: DEFAULT_EXPORT_PATH, clients: config.exportClients, options: config.exportOptions }));
  }
  const exports = await openExports(entries.map((e) => ({ path: e.path, dir: e.dir, clients: e.rules })));
  const nfs = await createNfsContext({
    exports,
    stateDir: path.join(config.varDir, 'state'),
    pageCache: o.pageCache,
    access: { optionsFor, effectiveIdentity, accessGranted },
    log: o.log,
    pinnedWrite: config.pageCache.pinnedWrite,
  });
  for (const e of exports) o.log.info({ path: e.path, dir: e.dir }, 'exporting');
  return {
    programs: [createNfsProgram(nfs), createMountProgram(nfs)],
    nfs,
    close: async () => undefined,
  };
}
