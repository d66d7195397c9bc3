/**
 * The fault controls the dashboard shows, as an interface the reply path implements: path
 * settings (loss, delay, device-queue hold…) and one-off faults for the next segments.
 */
import { z } from 'zod';
import type { FaultSettings } from '../reply/types.ts';

/** Bounds on what the API accepts, so a typo cannot stall a connection for hours. */
export const MAX_FAULT_DELAY_MS = 10_000;
export const MAX_DEVICE_HOLD_MS = 60_000;
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

const probability = z.number().min(0).max(1);

export const FaultPatchSchema = z
  .strictObject({
    loss: probability,
    ackLoss: probability,
    delay: z.number().min(0).max(MAX_FAULT_DELAY_MS),
    jitter: z.number().min(0).max(MAX_FAULT_DELAY_MS),
    reorder: probability,
    duplicate: probability,
    deviceHold: z.number().min(0).max(MAX_DEVICE_HOLD_MS),
    seed: z.number().int().min(0).max(0xffff_ffff),
  })
  .partial()
  .refine((p) => Object.keys(p).length > 0, 'name at least one fault setting');

export const OneOffFaultSchema = z
  .strictObject({
    conn: z.number().int().positive().optional(),
    dropNext: z.number().int().min(1).max(MAX_DROP_NEXT).optional(),
    holdNextMs: z.number().min(1).max(MAX_DEVICE_HOLD_MS).optional(),
  })
  .refine((o) => o.dropNext !== undefined || o.holdNextMs !== undefined, 'name dropNext or holdNextMs');
