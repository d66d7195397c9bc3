/**
 * POSIX byte-range locks as NLM serves them (fcntl(2) F_SETLK/F_SETLKW/F_GETLK semantics, without
 * the host kernel): pure state, no I/O. Ranges are 64-bit, half-open [start, end); a length of 0
 * means "to end of file" and is stored as end = OFFSET_END.
 *
 * An owner is (caller name, svid, owner handle). A request by an owner over its own locks never
 * conflicts: it splits, merges, upgrades or downgrades them. Locks of other owners conflict when they
 * overlap and either is exclusive. A blocked request waits in its file's FIFO queue; a waiter is
 * granted when no held lock conflicts and no earlier waiter it conflicts with is still waiting, so a
 * stream of shared locks cannot starve a queued exclusive one.
 */

/** One past the largest byte offset: the end of every "to EOF" range. */
export const OFFSET_END = 1n << 64n;

export interface LockOwner {
  /** caller_name of the NLM call: the client host. */
  caller: string;
  svid: number;
  oh: Buffer;
}

export interface LockRange {
  start: bigint;
  /** Exclusive; OFFSET_END for "to end of file". */
  end: bigint;
}

/** RFC-style (offset, length) → range; an offset + length past 2^64 is clipped to end of file, as Linux lockd does. */
export function rangeOf(offset: bigint, length: bigint): LockRange {
  if (length === 0n) return { start: offset, end: OFFSET_END };
  const end = offset + length;
  return { start: offset, end: end > OFFSET_END ? OFFSET_END : end };
}

/** Range → (offset, length) as NLM carries it. */
export function lengthOf(r: LockRange): bigint {
  return r.end === OFFSET_END ? 0n : r.end - r.start;
}

export function ownerKey(o: LockOwner): string {
  return `${o.caller}\0${o.svid}\0${o.oh.toString('hex')}`;
}

export interface HeldLock extends LockRange {
  file: string;
  owner: LockOwner;
  exclusive: boolean;
}

export interface LockRequest extends LockRange {
  /** Identity of the file (equal for every handle of one file). */
  file: string;
  owner: LockOwner;
  exclusive: boolean;
}

/** A queued blocking request, with what the caller needs to tell the client when it is granted. */
export interface Waiter<T> extends LockRequest {
  tag: T;
}

export type LockOutcome<T> =
  | { status: 'granted' }
  | { status: 'denied'; holder: HeldLock }
  | { status: 'blocked'; waiter: Waiter<T> }
  | { status: 'nolocks'; reason: string };

export interface LockLimits {
  /** Held ranges over all clients. */
  maxLocks: number;
  /** Held ranges of one client (caller name). */
  maxLocksPerClient: number;
  /** Queued blocking requests over all clients. */
  maxWaiters: number;
  maxWaitersPerClient: number;
}

export const LOCK_DEFAULT_LIMITS: Readonly<LockLimits> = {
  maxLocks: 65_536,
  maxLocksPerClient: 8_192,
  maxWaiters: 4_096,
  maxWaitersPerClient: 512,
};

function overlaps(a: LockRange, b: LockRange): boolean {
  return a.start < b.end && b.start < a.end;
}

function sameOwner(a: LockOwner, b: LockOwner): boolean {
  return a.svid === b.svid && a.caller === b.caller && a.oh.equals(b.oh);
}

function conflicts(a: { owner: LockOwner; exclusive: boolean } & LockRange, b: { owner: LockOwner; exclusive: boolean } & LockRange): boolean {
  return (a.exclusive || b.exclusive) && overlaps(a, b) && !sameOwner(a.owner, b.owner);
}

/** An owner's locks on a file after cutting [start, end) out of them (an unlock, or the first half of a lock). */
function cut(locks: HeldLock[], r: LockRange): HeldLock[] {
  const out: HeldLock[] = [];
  for (const l of locks) {
    if (!overlaps(l, r)) {
      out.push(l);
      continue;
    }
    if (l.start < r.start) out.push({ ...l, end: r.start });
    if (l.end > r.end) out.push({ ...l, start: r.end });
  }
  return out;
}

/** Adds a range to an owner's cut locks and merges it with touching ranges of the same type. */
function insert(locks: HeldLock[], add: HeldLock): HeldLock[] {
  let merged = add;
  const out: HeldLock[] = [];
  for (const l of locks) {
    if (l.exclusive === merged.exclusive && (l.end === merged.start || l.start === merged.end)) {
      merged = { ...merged, start: l.start < merged.start ? l.start : merged.start, end: l.end > merged.end ? l.end : merged.end };
    } else out.push(l);
  }
  out.push(merged);
  return out.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
}

export class LockManager<T = undefined> {
  /** file → owner key → that owner's locks, sorted by start, disjoint, touching ranges of one type merged. */
  private readonly files = new Map<string, Map<string, HeldLock[]>>();
  private readonly queues = new Map<string, Waiter<T>[]>();
  private readonly locksByClient = new Map<string, number>();
  private readonly waitersByClient = new Map<string, number>();
  private lockCount = 0;
  private waiterCount = 0;

  constructor(
    private readonly limits: LockLimits = LOCK_DEFAULT_LIMITS,
    /** Called for each waiter granted from the queue (its lock is already held). */
    private readonly onGrant: (w: Waiter<T>) => void = () => undefined,
  ) {}

  /** F_GETLK: the first lock of another owner that conflicts, or undefined. */
  test(req: LockRequest): HeldLock | undefined {
    const owners = this.files.get(req.file);
    if (!owners) return undefined;
    for (const locks of owners.values()) for (const l of locks) if (conflicts(req, l)) return l;
    return undefined;
  }

  /**
   * F_SETLK (block false) or F_SETLKW (block true). A blocking request that is already queued (a
   * client re-sending its LOCK) is the same waiter, not a new one.
   */
  lock(req: LockRequest, o: { block: boolean; tag: T }): LockOutcome<T> {
    const queue = this.queues.get(req.file);
    const already = queue?.find((w) => sameRequest(w, req));
    if (already) {
      this.grantWaiters(req.file);
      return this.queues.get(req.file)?.includes(already) ? { status: 'blocked', waiter: already } : { status: 'granted' };
    }
    const holder = this.test(req);
    // A new blocking request also waits behind earlier waiters it conflicts with (fairness).
    const ahead = o.block && !holder ? queue?.find((w) => conflicts(w, req)) : undefined;
    if (!holder && !ahead) {
      const r = this.apply(req);
      if (r !== true) return { status: 'nolocks', reason: r };
      // A downgrade (exclusive → shared) can unblock shared waiters.
      this.grantWaiters(req.file);
      return { status: 'granted' };
    }
    if (!o.block) return { status: 'denied', holder: holder! };
    const client = req.owner.caller;
    if (this.waiterCount >= this.limits.maxWaiters) return { status: 'nolocks', reason: 'blocked-lock queue full' };
    if ((this.waitersByClient.get(client) ?? 0) >= this.limits.maxWaitersPerClient) return { status: 'nolocks', reason: 'client blocked-lock limit' };
    const waiter: Waiter<T> = { ...req, tag: o.tag };
    if (queue) queue.push(waiter);
    else this.queues.set(req.file, [waiter]);
    this.waiterCount++;
    bump(this.waitersByClient, client, 1);
    return { status: 'blocked', waiter };
  }

  /** F_UNLCK over [start, end) of the owner's locks; 'nolocks' when the split would pass a limit. */
  unlock(file: string, owner: LockOwner, r: LockRange): true | string {
    const owners = this.files.get(file);
    const key = ownerKey(owner);
    const mine = owners?.get(key);
    if (!owners || !mine) return true;
    const next = cut(mine, r);
    const refused = this.refuse(owner.caller, next.length - mine.length);
    if (refused) return refused;
    this.commit(file, owners, key, owner.caller, mine, next);
    this.grantWaiters(file);
    return true;
  }

  /** Withdraws a queued request (NLM CANCEL); false when there was none. */
  cancel(req: LockRequest): boolean {
    const queue = this.queues.get(req.file);
    const i = queue?.findIndex((w) => sameRequest(w, req)) ?? -1;
    if (!queue || i < 0) return false;
    this.dropWaiter(queue, i);
    this.grantWaiters(req.file);
    return true;
  }

  /** Every lock and waiter of a client (FREE_ALL, or SM_NOTIFY: it rebooted). Returns how many locks went. */
  freeClient(caller: string): number {
    let freed = 0;
    const touched = new Set<string>();
    for (const [file, queue] of this.queues) {
      for (let i = queue.length - 1; i >= 0; i--) {
        if (queue[i]!.owner.caller === caller) {
          this.dropWaiter(queue, i);
          touched.add(file);
        }
      }
    }
    for (const [file, owners] of this.files) {
      for (const [key, locks] of owners) {
        if (locks[0]?.owner.caller !== caller) continue;
        freed += locks.length;
        this.commit(file, owners, key, caller, locks, []);
        touched.add(file);
      }
    }
    for (const file of touched) this.grantWaiters(file);
    return freed;
  }

  /** Whether a client (caller name) holds or waits for any lock. */
  hasClient(caller: string): boolean {
    return this.locksByClient.has(caller) || this.waitersByClient.has(caller);
  }

  /** Every held lock, for /api/locks and tests. */
  held(): HeldLock[] {
    const out: HeldLock[] = [];
    for (const owners of this.files.values()) for (const locks of owners.values()) out.push(...locks);
    return out;
  }

  waiters(): Waiter<T>[] {
    return [...this.queues.values()].flat();
  }

  counts(): { locks: number; waiters: number; clients: number; files: number } {
    return { locks: this.lockCount, waiters: this.waiterCount, clients: this.locksByClient.size, files: this.files.size };
  }

  /** Takes the lock (no conflict checked here): true, or why a limit refuses it. */
  private apply(req: LockRequest): true | string {
    let owners = this.files.get(req.file);
    const key = ownerKey(req.owner);
    const mine = owners?.get(key) ?? [];
    const next = insert(cut(mine, req), { file: req.file, owner: req.owner, exclusive: req.exclusive, start: req.start, end: req.end });
    const refused = this.refuse(req.owner.caller, next.length - mine.length);
    if (refused) return refused;
    if (!owners) {
      owners = new Map();
      this.files.set(req.file, owners);
    }
    this.commit(req.file, owners, key, req.owner.caller, mine, next);
    return true;
  }

  private refuse(client: string, growth: number): string | undefined {
    if (growth <= 0) return undefined;
    if (this.lockCount + growth > this.limits.maxLocks) return 'lock table full';
    if ((this.locksByClient.get(client) ?? 0) + growth > this.limits.maxLocksPerClient) return 'client lock limit';
    return undefined;
  }

  private commit(file: string, owners: Map<string, HeldLock[]>, key: string, client: string, before: HeldLock[], after: HeldLock[]): void {
    const growth = after.length - before.length;
    this.lockCount += growth;
    bump(this.locksByClient, client, growth);
    if (after.length) owners.set(key, after);
    else owners.delete(key);
    if (!owners.size) this.files.delete(file);
  }

  private dropWaiter(queue: Waiter<T>[], i: number): void {
    const [w] = queue.splice(i, 1);
    this.waiterCount--;
    bump(this.waitersByClient, w!.owner.caller, -1);
    if (!queue.length) this.queues.delete(w!.file);
  }

  /** Grants, in queue order, every waiter that conflicts with no held lock and no earlier waiter. */
  private grantWaiters(file: string): void {
    const queue = this.queues.get(file);
    if (!queue) return;
    const granted: Waiter<T>[] = [];
    // A grant removes a waiter (and may downgrade its owner's lock), which can unblock earlier ones: rescan until stable.
    for (let changed = true; changed; ) {
      changed = false;
      for (let i = 0; i < queue.length; ) {
        const w = queue[i]!;
        const blocked = this.test(w) !== undefined || queue.slice(0, i).some((e) => conflicts(e, w));
        if (blocked || this.apply(w) !== true) {
          i++;
          continue;
        }
        this.dropWaiter(queue, i);
        granted.push(w);
        changed = true;
      }
    }
    for (const w of granted) this.onGrant(w);
  }
}

function sameRequest(a: LockRequest, b: LockRequest): boolean {
  return a.file === b.file && a.exclusive === b.exclusive && a.start === b.start && a.end === b.end && sameOwner(a.owner, b.owner);
}

function bump(m: Map<string, number>, k: string, by: number): void {
  const v = (m.get(k) ?? 0) + by;
  if (v > 0) m.set(k, v);
  else m.delete(k);
}
