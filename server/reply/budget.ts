import type { OrphanReason } from './types.ts';

export interface PinBudget {
  /** Pinned pages may take at most this share of the cache before the oldest pins are orphaned. */
  maxPinnedShare: number;
  /** A pin older than this is orphaned (a peer that never acknowledges). */
  maxPinAgeMs: number;
  checkIntervalMs: number;
}

/** What the budget reads of a conduit. */
export interface PinHolder {
  /** Replies it holds lent (lent-reply.ts). */
  readonly lentReplies: number;
  /** Time the oldest reply still holding pages was pinned; Infinity when none. */
  oldestPin(): number;
}

/** What the budget reads of the page cache, now (it changes as the caller orphans). */
export interface PinState {
  now: number;
  limit: number;
  pinned(): number;
}

/**
 * The pin budget: while pinned pages exceed their share of the cache, or some reply has been held
 * longer than the maximum age, the oldest holders are orphaned (their fragments copied out, the
 * destructors fire, the cache gets its pages back). Yields the holders to orphan, oldest first,
 * with why; the caller orphans each before asking for the next, so the share is read afresh.
 */
export function* overBudget<H extends PinHolder>(holders: Iterable<H>, budget: PinBudget, state: PinState): Generator<{ holder: H; reason: OrphanReason }> {
  // Runs every checkIntervalMs over every connection: only the holders are copied out.
  const byAge: H[] = [];
  for (const h of holders) if (h.lentReplies > 0) byAge.push(h);
  byAge.sort((a, b) => a.oldestPin() - b.oldestPin());
  for (const holder of byAge) {
    const tooOld = state.now - holder.oldestPin() > budget.maxPinAgeMs;
    if (!tooOld && state.pinned() <= state.limit) return;
    yield { holder, reason: tooOld ? 'budget-age' : 'budget-share' };
  }
}
