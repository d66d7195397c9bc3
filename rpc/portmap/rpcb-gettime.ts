import { XdrWriter } from '../../xdr/writer.ts';
import type { PortmapProcedure } from './procedure.ts';

/** RPCBPROC_GETTIME: this host's time, seconds since the epoch. */
export const rpcbGettime: PortmapProcedure = { name: 'GETTIME', handler: () => new XdrWriter().uint32(Math.floor(Date.now() / 1000)) };
