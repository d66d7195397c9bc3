import type { Procedure } from '../../rpc/program.ts';
import { XdrWriter } from '../../xdr/writer.ts';

/** NLM_NULL: no arguments, no results. */
export const nullProcedure: Procedure = {
  name: 'NULL',
  handler: () => new XdrWriter(),
};
