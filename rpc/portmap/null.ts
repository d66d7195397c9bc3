import { XdrWriter } from '../../xdr/writer.ts';
import type { PortmapProcedure } from './procedure.ts';

/** PMAPPROC_NULL / RPCBPROC_NULL. */
export const nullProcedure: PortmapProcedure = { name: 'NULL', handler: () => new XdrWriter() };
