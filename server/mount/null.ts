import { XdrWriter } from '../../xdr/writer.ts';
import type { MountProcedure } from './procedure.ts';

/** MOUNTPROC3_NULL: does nothing, answers nothing (clients ping with it). */
export const nullProcedure: MountProcedure = { name: 'NULL', handler: () => new XdrWriter() };
