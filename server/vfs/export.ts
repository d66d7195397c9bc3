import { createHash } from 'node:crypto';
import { lstat, realpath } from 'node:fs/promises';
import { normalizeExportPath } from '../exports/path.ts';
import type { ClientRule } from '../exports/types.ts';

/** One exported directory. */
export interface Export {
  /** Small stable number carried in every file handle (uint16). */
  id: number;
  /** The path clients mount, e.g. `/export`. */
  path: string;
  /** The host directory, realpath'd: nothing outside it is reachable. */
  dir: string;
  /** Who may use it and with which options (server/exports). */
  clients: ClientRule[];
  /** Device of `dir`: fileids of objects on other devices are mixed with their device (see attr.ts). */
  dev: bigint;
  /** fsid reported in fattr3 and FSSTAT: one per export, stable across restarts. */
  fsid: bigint;
}

export interface ExportSpec {
  path: string;
  dir: string;
  clients: ClientRule[];
  /** Fixed id (e.g. from an `fsid=` option); default: derived from `path`. */
  id?: number;
}

export class ExportConfigError extends Error {
  override readonly name = 'ExportConfigError';
  constructor(
    message: string,
    readonly context: { path?: string; dir?: string },
  ) {
    super(message);
  }
}

/**
 * The default id is a hash of the client-visible path rather than a position in the config, so
 * reordering or adding exports does not invalidate the handles clients hold.
 */
export function exportIdFor(exportPath: string): number {
  return createHash('sha256').update(normalizeExportPath(exportPath)).digest().readUInt16BE(0);
}

/** Validates and opens the configured exports: realpaths, directory checks, unique paths and ids. */
export async function openExports(specs: readonly ExportSpec[]): Promise<Export[]> {
  const out: Export[] = [];
  for (const spec of specs) {
    const p = normalizeExportPath(spec.path);
    let dir: string;
    try {
      dir = await realpath(spec.dir);
    } catch (e) {
      throw new ExportConfigError(`export ${p}: ${(e as Error).message}`, { path: p, dir: spec.dir });
    }
    const st = await lstat(dir, { bigint: true });
    if (!st.isDirectory()) throw new ExportConfigError(`export ${p}: ${dir} is not a directory`, { path: p, dir });
    const id = spec.id ?? exportIdFor(p);
    if (!Number.isInteger(id) || id < 0 || id > 0xffff) throw new ExportConfigError(`export ${p}: id ${id} is not a uint16`, { path: p });
    const clash = out.find((e) => e.path === p || e.id === id);
    if (clash) throw new ExportConfigError(`export ${p} clashes with ${clash.path} (same path or id ${id}); set an explicit id`, { path: p });
    out.push({ id, path: p, dir, clients: spec.clients, dev: st.dev, fsid: BigInt(id) + 1n });
  }
  return out;
}
