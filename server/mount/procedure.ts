/**
 * The one handler shape every MOUNT procedure has (as `nfs3/procedure.ts` for NFS): a name and a
 * handler that gets the arguments, the RPC call and the program's context.
 */
import type { CallContext, Procedure, ProcedureResult } from '../../rpc/program.ts';
import type { XdrReader } from '../../xdr/reader.ts';
import type { NfsContext } from '../nfs3/context.ts';
import type { mountstat3 } from './constants.ts';
import type { MountTable } from './mount-table.ts';

/** What every MOUNT procedure works with: the exports and their file system, and who mounted what. */
export interface MountContext {
  nfs: NfsContext;
  table: MountTable;
}

export interface MountProcedure {
  name: string;
  handler(r: XdrReader, call: CallContext, ctx: MountContext): ProcedureResult | Promise<ProcedureResult>;
}

/** A refusal: the mountstat3 the client gets, and what it was about (for the log line only). */
export class MountError extends Error {
  override readonly name = 'MountError';
  constructor(
    readonly status: Exclude<mountstat3, 0>,
    readonly context: Record<string, unknown>,
  ) {
    super(`mount status ${status}`);
  }
}

export function toRpcProcedure(p: MountProcedure, ctx: MountContext): Procedure {
  return { name: p.name, handler: (r, call) => p.handler(r, call, ctx) };
}
