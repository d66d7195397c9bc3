// The pin budget as a function over holders: who is orphaned, in which order, and why.
import { describe, expect, it } from 'vitest';
import { overBudget, type PinBudget } from '../../server/reply/budget.ts';

const budget: PinBudget = { maxPinnedShare: 0.5, maxPinAgeMs: 100, checkIntervalMs: 10 };

function holder(name: string, oldest: number, pages: number, lent = 1) {
  return { name, pages, lentReplies: lent, oldestPin: () => oldest };
}

describe('overBudget', () => {
  it('yields the oldest holders while the share is exceeded, reading the pinned count afresh each time', () => {
    const hs = [holder('young', 900, 30), holder('old', 100, 30), holder('idle', 0, 0, 0), holder('mid', 500, 30)];
    let pinned = 90;
    const out: string[] = [];
    for (const { holder: h, reason } of overBudget(hs, { ...budget, maxPinAgeMs: 10_000 }, { now: 950, limit: 50, pinned: () => pinned })) {
      out.push(`${h.name}:${reason}`);
      pinned -= h.pages; // what orphaning it gave back
    }
    expect(out).toEqual(['old:budget-share', 'mid:budget-share']);
  });

  it('yields every holder older than the maximum age even under the share, and nothing else', () => {
    const hs = [holder('a', 800, 1), holder('b', 10, 1), holder('c', 50, 1)];
    const out = [...overBudget(hs, budget, { now: 200, limit: 50, pinned: () => 3 })].map(({ holder: h, reason }) => `${h.name}:${reason}`);
    expect(out).toEqual(['b:budget-age', 'c:budget-age']);
  });
});
