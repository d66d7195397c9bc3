import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../server/config.ts';
import { FaultPatchSchema } from '../../server/http/fault-api.ts';
import { FixtureFaultsSchema, MAX_FAULT_MS } from '../../server/reply/faults.ts';

const FIELDS = ['loss', 'ackLoss', 'delay', 'jitter', 'reorder', 'duplicate', 'deviceHold'] as const;

describe('fault settings: one set of bounds', () => {
  it('config, HTTP and fixtures accept exactly the same values for every setting', () => {
    fc.assert(
      fc.property(fc.constantFrom(...FIELDS), fc.oneof(fc.double({ min: -10, max: 2 * MAX_FAULT_MS, noNaN: true }), fc.constantFrom(0, 1, MAX_FAULT_MS, MAX_FAULT_MS + 1, 20_000)), (field, value) => {
        const config = ConfigSchema.safeParse({ faults: { [field]: value } }).success;
        const http = FaultPatchSchema.safeParse({ [field]: value }).success;
        const fixture = FixtureFaultsSchema.safeParse({ [field]: value }).success;
        expect({ field, value, http, fixture }).toEqual({ field, value, http: config, fixture: config });
      }),
      { numRuns: 2000 },
    );
  });

  it('a server started with --delay 20000 can be set back to 20000 over HTTP', () => {
    const started = ConfigSchema.parse({ faults: { delay: 20_000 } });
    expect(FaultPatchSchema.parse({ delay: started.faults.delay })).toEqual({ delay: 20_000 });
  });

  it('unknown fault names are errors everywhere', () => {
    expect(ConfigSchema.safeParse({ faults: { los: 0.1 } }).success).toBe(false);
    expect(FaultPatchSchema.safeParse({ los: 0.1 }).success).toBe(false);
    expect(FixtureFaultsSchema.safeParse({ los: 0.1 }).success).toBe(false);
  });
});
