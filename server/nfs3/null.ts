import type { Procedure } from '../../rpc/program.ts';
import { XdrWriter } from '../../xdr/writer.ts';

/** RFC 1813 §3.3.0 NULL: no arguments, no results; clients ping with it. */
export const nullProcedure: Procedure = {
  name: 'NULL',
  handler: () => new XdrWriter(),
};
