import type { Procedure, RpcProgram } from '../../rpc/program.ts';
import { cancel } from './cancel.ts';
import { NLM_PROGRAM, NLM_V1, NLM_V3, NLM_V4, NLMPROC } from './constants.ts';
import type { NlmContext } from './context.ts';
import { freeAllProcedure } from './free-all.ts';
import { granted } from './granted.ts';
import { lock, nmLock } from './lock.ts';
import { nullProcedure } from './null.ts';
import { toMsgProcedure, toRpcProcedure } from './procedure.ts';
import { resultProcedures } from './results.ts';
import { share, unshare } from './share.ts';
import { test } from './test.ts';
import { unlock } from './unlock.ts';

/**
 * NLM versions 1, 3 and 4 over one lock manager. Version 1 has procedures 0–15; versions 3 and 4 add
 * SHARE, UNSHARE, NM_LOCK and FREE_ALL (20–23). Versions differ only in the width of offsets.
 */
export function createNlmProgram(ctx: NlmContext): RpcProgram {
  const res = resultProcedures(ctx);
  const v1: (Procedure | undefined)[] = [];
  v1[NLMPROC.NULL] = nullProcedure;
  v1[NLMPROC.TEST] = toRpcProcedure(test, ctx);
  v1[NLMPROC.LOCK] = toRpcProcedure(lock, ctx);
  v1[NLMPROC.CANCEL] = toRpcProcedure(cancel, ctx);
  v1[NLMPROC.UNLOCK] = toRpcProcedure(unlock, ctx);
  v1[NLMPROC.GRANTED] = toRpcProcedure(granted, ctx);
  v1[NLMPROC.TEST_MSG] = toMsgProcedure(test, ctx, NLMPROC.TEST_RES);
  v1[NLMPROC.LOCK_MSG] = toMsgProcedure(lock, ctx, NLMPROC.LOCK_RES);
  v1[NLMPROC.CANCEL_MSG] = toMsgProcedure(cancel, ctx, NLMPROC.CANCEL_RES);
  v1[NLMPROC.UNLOCK_MSG] = toMsgProcedure(unlock, ctx, NLMPROC.UNLOCK_RES);
  v1[NLMPROC.GRANTED_MSG] = toMsgProcedure(granted, ctx, NLMPROC.GRANTED_RES);
  v1[NLMPROC.TEST_RES] = res.test;
  v1[NLMPROC.LOCK_RES] = res.other('LOCK_RES');
  v1[NLMPROC.CANCEL_RES] = res.other('CANCEL_RES');
  v1[NLMPROC.UNLOCK_RES] = res.other('UNLOCK_RES');
  v1[NLMPROC.GRANTED_RES] = res.granted;
  const v3 = [...v1];
  v3[NLMPROC.SHARE] = toRpcProcedure(share, ctx);
  v3[NLMPROC.UNSHARE] = toRpcProcedure(unshare, ctx);
  v3[NLMPROC.NM_LOCK] = toRpcProcedure(nmLock, ctx);
  v3[NLMPROC.FREE_ALL] = freeAllProcedure(ctx);
  // Holes (16–19) must read as PROC_UNAVAIL, not as missing array slots of another meaning.
  const filled = (a: (Procedure | undefined)[]) => Array.from({ length: a.length }, (_, i) => a[i]);
  return {
    prog: NLM_PROGRAM,
    name: 'nlockmgr',
    versions: new Map<number, ReadonlyArray<Procedure | undefined>>([
      [NLM_V1, filled(v1)],
      [NLM_V3, filled(v3)],
      [NLM_V4, filled(v3)],
    ]),
  };
}
