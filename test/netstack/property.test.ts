import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { setSkbRegistry, SkbRegistry } from '../../netstack/index.ts';
import { configArb, runScenario } from './scenario.ts';

let registry: SkbRegistry;
beforeEach(() => {
  registry = setSkbRegistry(new SkbRegistry())!;
});
afterEach(() => {
  setSkbRegistry(null);
});

describe('TCP with paged-fragment destructors, random sends over random paths', () => {
  it('delivers exactly the bytes sent; each destructor fires once, never while referenced; no reference left once drained', async () => {
    await fc.assert(
      fc.asyncProperty(configArb, async (cfg) => {
        registry = setSkbRegistry(new SkbRegistry())!;
        const { pair, pages, received, expected, fires } = await runScenario(cfg);
        expect(Buffer.concat(received).equals(Buffer.concat(expected))).toBe(true);
        expect(registry.violations).toEqual([]);
        for (const [d, count] of fires) expect(count, `destructor ${d.id}`).toBe(1);
        expect(pair.stats().pinnedDestructors).toBe(0);
        expect(pair.stats().staleRetransmits).toBe(0);
        expect(registry.live.size).toBe(0);
        expect(pages.map((p) => p.count)).toEqual(pages.map(() => 1));
        expect(registry.leakedPages()).toEqual([]);
        if (process.env.NETSTACK_PROPERTY_STATS) console.log(JSON.stringify(pair.stats()));
      }),
      { numRuns: Number(process.env.NETSTACK_PROPERTY_RUNS ?? 300) },
    );
  });
});
