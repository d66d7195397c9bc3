/**
 * The fault controls the dashboard shows, as an interface the reply path implements: path
 * settings (loss, delay, device-queue hold…) and one-off faults for the next segments.
 */
import { z } from 'zod';
import { MAX_FAULT_MS, type FaultSettings } from '../reply/faults.ts';

export { FaultPatchSchema } from '../reply/faults.ts';

/** Most segments one one-off may drop. */
export const MAX_DROP_NEXT = 1000;

export interface OneOffFault {
  /** Connection id (ConnectionSnapshot.id); absent: every connection. */
  conn?: number;
  /** Drop the next N data segments. */
  dropNext?: number;
  /** Hold the next transmitted clone in the device queue this long. */
  holdNextMs?: number;
}

export interface FaultApi {
  get(): FaultSettings;
  /** Applies the given fields and returns the settings now in force. */
  set(partial: Partial<FaultSettings>): FaultSettings;
  oneOff(o: OneOffFault): void;
}

/** Thrown by a FaultApi for a request it cannot apply (e.g. an unknown connection); answered with 400. */
export class FaultRejectedError extends Error {
  override readonly name = 'FaultRejectedError';
  readonly statusCode = 400;
  constructor(
    message: string,
    readonly request: unknown,
  ) {
    super(message);
  }
}

export const OneOffFaultSchema = z
  .strictObject({
    conn: z.number().int().positive().optional(),
    dropNext: z.number().int().min(1).max(MAX_DROP_NEXT).optional(),
    holdNextMs: z.number().min(1).max(MAX_FAULT_MS).optional(),
  })
  .refine((o) => o.dropNext !== undefined || o.holdNextMs !== undefined, 'name dropNext or holdNextMs');
