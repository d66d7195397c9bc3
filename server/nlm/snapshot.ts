import type { Nsm } from '../nsm/monitor.ts';
import type { NlmContext } from './context.ts';
import { lengthOf, type LockRequest } from './lock-manager.ts';

/** A lock or waiter as JSON: 64-bit offsets as decimal strings. */
function entry(l: LockRequest) {
  return { file: l.file, caller: l.owner.caller, svid: l.owner.svid, oh: l.owner.oh.toString('hex'), exclusive: l.exclusive, offset: l.start.toString(), length: lengthOf(l).toString() };
}

export interface LocksSnapshot {
  grace: { active: boolean; remainingMs: number };
  nsmState: number;
  counts: { locks: number; waiters: number; clients: number; files: number; shares: number; pendingGrants: number; monitored: number; graceDenied: number };
  locks: ReturnType<typeof entry>[];
  waiters: ReturnType<typeof entry>[];
  monitored: { monName: string; address?: string | undefined }[];
}

/** What GET /api/locks shows and /metrics counts. */
export function locksSnapshot(nlm: NlmContext, nsm: Nsm): LocksSnapshot {
  const c = nlm.locks.counts();
  return {
    grace: { active: nsm.inGrace(), remainingMs: nsm.graceRemainingMs() },
    nsmState: nsm.state,
    counts: { ...c, shares: nlm.shares.all().length, pendingGrants: nlm.grants.count(), monitored: nsm.monitors().length, graceDenied: nlm.counters.graceDenied },
    locks: nlm.locks.held().map(entry),
    waiters: nlm.locks.waiters().map(entry),
    monitored: nsm.monitors().map((m) => ({ monName: m.monName, address: m.address })),
  };
}
