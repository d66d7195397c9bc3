import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import type { RpcProgram } from '../rpc/program.ts';
import type { Config } from './config.ts';
import { exportFromFlags, loadExportsFile } from './exports/parse.ts';
import type { ExportEntry } from './exports/types.ts';
import { createMountProgram } from './mount/program.ts';
import { createNfsContext, exportsAccessPolicy, type NfsContext } from './nfs3/context.ts';
import { createNfsProgram } from './nfs3/program.ts';
import { createNlmContext, type NlmContext } from './nlm/context.ts';
import { freeClient } from './nlm/free-all.ts';
import { PeerCaller } from '../rpc/peer-caller.ts';
import { createNlmProgram } from './nlm/program.ts';
import { Nsm } from './nsm/monitor.ts';
import { createNsmProgram } from './nsm/program.ts';
import type { PageCache } from './pagecache/page-cache.ts';
import { openExports } from './vfs/export.ts';
import { StartupError } from './startup-error.ts';

/** The path under which `--export DIR` (or the embedded default) is served. */
export const DEFAULT_EXPORT_PATH = '/export';

export interface Services {
  programs: RpcProgram[];
  nfs: NfsContext;
  nlm: NlmContext;
  nsm: Nsm;
  close(): Promise<void>;
}

/** A file that cannot be read is a StartupError; a parse error (ExportsParseError) passes unchanged. */
const unreadable =
  (file: string) =>
  (e: unknown): never => {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === undefined) throw e;
    throw new StartupError(`exports file ${file}: cannot read it (${code})`, { file, code });
  };

/**
 * Builds the exports (the `--export`/default one, plus an exports file's) and the MOUNT and NFS
 * programs over them. An exports file that names `/export` itself overrides the flag-built one.
 */
export async function createServices(o: { config: Config; exportDir: string; pageCache: PageCache; log: Logger }): Promise<Services> {
  const { config } = o;
  const entries: ExportEntry[] = config.exportsFile ? await loadExportsFile(config.exportsFile).catch(unreadable(config.exportsFile)) : [];
  if (!entries.some((e) => e.path === DEFAULT_EXPORT_PATH)) {
    entries.unshift(exportFromFlags({ dir: o.exportDir, path: DEFAULT_EXPORT_PATH, clients: config.exportClients, options: config.exportOptions }));
  }
  const exports = await openExports(entries.map((e) => ({ path: e.path, dir: e.dir, clients: e.rules, ...(e.fsid !== undefined ? { id: e.fsid } : {}) })));
  const nfs = await createNfsContext({
    exports,
    stateDir: path.join(config.varDir, 'state'),
    pageCache: o.pageCache,
    access: exportsAccessPolicy(),
    log: o.log,
    pinnedWrite: config.pageCache.pinnedWrite,
    allowDevices: config.allowDevices,
    anchorCache: config.anchorCache,
    entryCache: config.entryCache,
  });
  for (const e of entries) {
    o.log.info({ path: e.path, dir: e.dir, clients: e.rules.map((r) => r.spec) }, 'exporting');
    for (const r of e.rules) for (const note of r.notes) o.log.info({ path: e.path, client: r.spec }, `exports: ${note}`);
  }
  // Locking: NSM first (its saved state decides the grace period), then NLM over the NFS handles.
  const hostname = os.hostname();
  const peers = new PeerCaller({
    portmapPort: config.nlm.clientPortmapPort,
    timeoutMs: config.nlm.callbackTimeoutMs,
    maxInflight: config.nlm.maxCallbacks,
    hostname,
  });
  let nlm: NlmContext | undefined;
  const nsm = await Nsm.start({
    dir: path.join(config.varDir, 'nsm'),
    config: config.nsm,
    peers,
    hostname,
    log: o.log.child({ svc: 'nsm' }),
    onPeerRebooted: (name) => nlm && freeClient(nlm, name),
    isIdle: (name) => !nlm || (!nlm.locks.hasClient(name) && !nlm.shares.all().some((s) => s.caller === name)),
  });
  nlm = createNlmContext({
    config: config.nlm,
    fh: nfs.fh,
    peers,
    hooks: { inGrace: () => nsm.inGrace(), monitor: (name, call) => nsm.monitorPeer(name, call.remoteAddress, call.localAddress) },
    log: o.log,
  });
  const lockCtx = nlm;
  return {
    programs: [createNfsProgram(nfs), createMountProgram(nfs), createNlmProgram(lockCtx), createNsmProgram(nsm)],
    nfs,
    nlm: lockCtx,
    nsm,
    close: async () => {
      lockCtx.grants.close();
      nsm.close();
      nfs.vfs.close();
      nfs.entries.close();
    },
  };
}
