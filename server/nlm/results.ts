import type { Procedure } from '../../rpc/program.ts';
import { XdrWriter } from '../../xdr/writer.ts';
import type { NlmContext } from './context.ts';
import { decodeNetobj, decodeRes, decodeTestres } from './xdr.ts';

/**
 * The _RES procedures: results of _MSG calls, sent to us by a client. GRANTED_RES acknowledges a
 * GRANTED callback (matched by cookie); the others answer calls this server never makes and are
 * checked for shape, then dropped. All are void.
 */
export function resultProcedures(ctx: NlmContext): { test: Procedure; other: (name: string) => Procedure; granted: Procedure } {
  return {
    test: {
      name: 'TEST_RES',
      handler(r, rpc) {
        decodeTestres(r, rpc.vers);
        return new XdrWriter();
      },
    },
    other: (name) => ({
      name,
      handler(r) {
        decodeNetobj(r);
        r.uint32();
        return new XdrWriter();
      },
    }),
    granted: {
      name: 'GRANTED_RES',
      handler(r) {
        const res = decodeRes(r);
        ctx.grants.acknowledge(res.cookie, res.stat);
        return new XdrWriter();
      },
    },
  };
}
