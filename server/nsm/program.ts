import type { CallContext, Procedure, RpcProgram } from '../../rpc/program.ts';
import type { XdrReader } from '../../xdr/reader.ts';
import { XdrWriter } from '../../xdr/writer.ts';
import { NSM_PROGRAM, NSM_V1, SM_MAXSTRLEN, SM_PRIV_SIZE, SMPROC, STAT_FAIL, STAT_SUCC } from './constants.ts';
import type { Nsm } from './monitor.ts';
import type { MyId } from './store.ts';

function decodeMyId(r: XdrReader): MyId {
  const myName = r.string(SM_MAXSTRLEN);
  return { myName, prog: r.int32(), vers: r.int32(), proc: r.int32() };
}

/**
 * SM_MON, SM_UNMON, SM_UNMON_ALL and SM_SIMU_CRASH are for the local lock manager only: loopback, as
 * rpc.statd requires, and a privileged port (a kernel lockd's), so no unprivileged local process can
 * make us forget monitored clients or drop every lock.
 */
function local(ctx: CallContext): boolean {
  const a = ctx.remoteAddress.replace(/^::ffff:/, '');
  return (a === '::1' || a.startsWith('127.')) && ctx.remotePort < 1024;
}

/** NSM version 1 (sm_inter.x). */
export function createNsmProgram(nsm: Nsm): RpcProgram {
  const statRes = (ok: boolean) => new XdrWriter().uint32(ok ? STAT_SUCC : STAT_FAIL).int32(nsm.state);
  const procs: Procedure[] = [];
  procs[SMPROC.NULL] = { name: 'SM_NULL', handler: () => new XdrWriter() };
  procs[SMPROC.STAT] = {
    name: 'SM_STAT',
    handler(r) {
      r.string(SM_MAXSTRLEN);
      return statRes(true);
    },
  };
  procs[SMPROC.MON] = {
    name: 'SM_MON',
    async handler(r, ctx) {
      const monName = r.string(SM_MAXSTRLEN);
      const myId = decodeMyId(r);
      const priv = r.fixedOpaque(SM_PRIV_SIZE);
      return statRes(local(ctx) && (await nsm.mon(monName, myId, priv)));
    },
  };
  procs[SMPROC.UNMON] = {
    name: 'SM_UNMON',
    async handler(r, ctx) {
      const monName = r.string(SM_MAXSTRLEN);
      const myId = decodeMyId(r);
      if (local(ctx)) await nsm.unmon(monName, myId);
      return new XdrWriter().int32(nsm.state);
    },
  };
  procs[SMPROC.UNMON_ALL] = {
    name: 'SM_UNMON_ALL',
    async handler(r, ctx) {
      const myId = decodeMyId(r);
      if (local(ctx)) await nsm.unmonAll(myId);
      return new XdrWriter().int32(nsm.state);
    },
  };
  procs[SMPROC.SIMU_CRASH] = {
    name: 'SM_SIMU_CRASH',
    async handler(_r, ctx) {
      if (local(ctx)) await nsm.simulateCrash();
      else ctx.log.info({ remote: ctx.remoteAddress, port: ctx.remotePort }, 'nsm: SM_SIMU_CRASH from a remote or unprivileged caller ignored');
      return new XdrWriter();
    },
  };
  procs[SMPROC.NOTIFY] = {
    name: 'SM_NOTIFY',
    async handler(r, ctx) {
      const monName = r.string(SM_MAXSTRLEN);
      const state = r.int32();
      await nsm.notified(monName, state, ctx.remoteAddress);
      return new XdrWriter();
    },
  };
  return { prog: NSM_PROGRAM, name: 'status', versions: new Map([[NSM_V1, procs]]) };
}
