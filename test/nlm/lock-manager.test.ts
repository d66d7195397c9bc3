import { describe, expect, it } from 'vitest';
import { LockManager, OFFSET_END, lengthOf, rangeOf, type LockOwner, type LockRequest } from '../../server/nlm/lock-manager.ts';

const a: LockOwner = { caller: 'a', svid: 1, oh: Buffer.from([1]) };
const b: LockOwner = { caller: 'b', svid: 1, oh: Buffer.from([2]) };
const req = (owner: LockOwner, exclusive: boolean, offset: bigint, length: bigint, file = 'f'): LockRequest => ({ file, owner, exclusive, ...rangeOf(offset, length) });

describe('lock manager', () => {
  it('keeps 64-bit ranges exact and clips offset + length past 2^64 to end of file', () => {
    const lm = new LockManager();
    const high = (1n << 63n) + 5n;
    expect(lm.lock(req(a, true, high, 10n), { block: false, tag: undefined }).status).toBe('granted');
    expect(lm.test(req(b, false, high + 9n, 1n))).toMatchObject({ start: high, end: high + 10n });
    expect(lm.test(req(b, false, high + 10n, 0n))).toBeUndefined();
    expect(rangeOf((1n << 64n) - 2n, 10n)).toEqual({ start: (1n << 64n) - 2n, end: OFFSET_END });
    expect(lengthOf(rangeOf(7n, 0n))).toBe(0n);
  });

  it('refuses locks past the per-client and total limits, and an unlock whose split would pass them', () => {
    const lm = new LockManager({ maxLocks: 3, maxLocksPerClient: 2, maxWaiters: 1, maxWaitersPerClient: 1 });
    expect(lm.lock(req(a, true, 0n, 1n), { block: false, tag: undefined }).status).toBe('granted');
    expect(lm.lock(req(a, true, 2n, 1n), { block: false, tag: undefined }).status).toBe('granted');
    expect(lm.lock(req(a, true, 4n, 1n), { block: false, tag: undefined })).toMatchObject({ status: 'nolocks', reason: 'client lock limit' });
    // Merging into an existing range does not grow the count.
    expect(lm.lock(req(a, true, 1n, 1n), { block: false, tag: undefined }).status).toBe('granted');
    expect(lm.counts().locks).toBe(1);
    expect(lm.lock(req(b, false, 10n, 5n), { block: false, tag: undefined }).status).toBe('granted');
    expect(lm.unlock('f', b, rangeOf(12n, 1n))).toBe(true);
    expect(lm.unlock('f', a, rangeOf(1n, 1n))).toBe('lock table full');
    expect(lm.lock(req(b, true, 0n, 1n), { block: true, tag: undefined }).status).toBe('blocked');
    expect(lm.lock(req(b, true, 1n, 1n), { block: true, tag: undefined })).toMatchObject({ status: 'nolocks', reason: 'blocked-lock queue full' });
  });

  it('frees every lock and waiter of a client, and grants the waiters that were behind it', () => {
    const granted: string[] = [];
    const lm = new LockManager<string>(undefined, (w) => granted.push(w.tag));
    lm.lock(req(a, true, 0n, 0n), { block: false, tag: 'a0' });
    lm.lock(req(a, true, 0n, 0n, 'g'), { block: false, tag: 'a1' });
    expect(lm.lock(req(b, false, 5n, 5n), { block: true, tag: 'b' }).status).toBe('blocked');
    expect(lm.freeClient('a')).toBe(2);
    expect(granted).toEqual(['b']);
    expect(lm.held()).toHaveLength(1);
    expect(lm.counts()).toEqual({ locks: 1, waiters: 0, clients: 1, files: 1 });
  });
});
