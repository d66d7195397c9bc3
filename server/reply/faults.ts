/**
 * Path fault settings: one schema, the only definition of their names, types and bounds. The
 * configuration (defaults at start), the HTTP API (run-time patches) and fixtures (scripted steps)
 * all derive theirs from it, so a value one accepts the others accept too.
 */
import { z } from 'zod';

/** Longest delay, jitter or device-queue hold: a minute — a typo must not stall a connection for hours. */
export const MAX_FAULT_MS = 60_000;

const probability = z.number().min(0).max(1);
const faultMs = z.number().min(0).max(MAX_FAULT_MS);

export const FaultSettingsSchema = z.strictObject({
  /** Probability of losing a data segment. */
  loss: probability,
  /** Probability of losing an ACK (1: a peer that never acknowledges). */
  ackLoss: probability,
  /** One-way delay and uniform jitter, ms. */
  delay: faultMs,
  jitter: faultMs,
  /** Probability a data segment is held back and overtaken. */
  reorder: probability,
  /** Probability a data segment arrives twice. */
  duplicate: probability,
  /** Every transmitted clone is held in the device queue this long, ms. */
  deviceHold: faultMs,
  /** Seed of the path's random choices. */
  seed: z.number().int().min(0).max(0xffff_ffff),
});

/** Path faults, settable at start (config, CLI) and at run time (HTTP API). */
export type FaultSettings = z.infer<typeof FaultSettingsSchema>;

export const DEFAULT_FAULT_SETTINGS: Readonly<FaultSettings> = Object.freeze({
  loss: 0,
  ackLoss: 0,
  delay: 0,
  jitter: 0,
  reorder: 0,
  duplicate: 0,
  deviceHold: 0,
  seed: 1,
});

const field = FaultSettingsSchema.shape;
const d = DEFAULT_FAULT_SETTINGS;

/** The configuration's section: any subset, the rest from the defaults. */
export const FaultConfigSchema = z
  .strictObject({
    loss: field.loss.default(d.loss),
    ackLoss: field.ackLoss.default(d.ackLoss),
    delay: field.delay.default(d.delay),
    jitter: field.jitter.default(d.jitter),
    reorder: field.reorder.default(d.reorder),
    duplicate: field.duplicate.default(d.duplicate),
    deviceHold: field.deviceHold.default(d.deviceHold),
    seed: field.seed.default(d.seed),
  })
  .prefault({});

/** A run-time change (POST /api/faults): at least one setting. */
export const FaultPatchSchema = FaultSettingsSchema.partial().refine((p) => Object.keys(p).length > 0, 'name at least one fault setting');

/** A fixture's `faults` step and path: the same settings (the seed is the fixture's own), plus the reorder hold. */
export const FixtureFaultsSchema = FaultSettingsSchema.omit({ seed: true })
  .extend({ reorderDelay: faultMs })
  .partial();
