import type { Procedure } from '../../rpc/program.ts';
import { XdrWriter } from '../../xdr/writer.ts';
import type { NlmContext } from './context.ts';
import { decodeNotify } from './xdr.ts';

/** Drops every lock, waiter and share of a client host (it rebooted); shared by FREE_ALL and SM_NOTIFY. */
export function freeClient(ctx: NlmContext, caller: string): number {
  ctx.grants.freeClient(caller);
  ctx.shares.freeClient(caller);
  const n = ctx.locks.freeClient(caller);
  ctx.log.info({ caller, locks: n }, 'nlm: freed the locks of a client');
  return n;
}

/** NLM_FREE_ALL (versions 3 and 4): nlm_notify { name, state }, void result. */
export function freeAllProcedure(ctx: NlmContext): Procedure {
  return {
    name: 'FREE_ALL',
    handler(r) {
      freeClient(ctx, decodeNotify(r).name);
      return new XdrWriter();
    },
  };
}
