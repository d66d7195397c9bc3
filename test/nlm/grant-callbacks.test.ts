// GRANTED callbacks to a client that never answers: retried a bounded number of times over real
// sockets, then dropped with the lock still held for the client (its re-sent LOCK is then GRANTED);
// a CANCEL of a grant not yet acknowledged releases the lock.
import dgram from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GrantCallbacks } from '../../server/nlm/grant-callbacks.ts';
import type { GrantTarget } from '../../server/nlm/grant-callbacks.ts';
import { LockManager, rangeOf, type LockOwner, type LockRequest } from '../../server/nlm/lock-manager.ts';
import { PeerCaller } from '../../rpc/peer-caller.ts';
import { testLog } from '../support/logger.ts';

let blackhole: dgram.Socket;
const xids = new Set<number>();

beforeAll(async () => {
  blackhole = dgram.createSocket('udp4');
  blackhole.on('message', (m) => xids.add(m.readUInt32BE(0)));
  await new Promise<void>((r) => blackhole.bind(0, '127.0.0.1', () => r()));
});
afterAll(() => blackhole.close());

const a: LockOwner = { caller: 'a', svid: 1, oh: Buffer.from('a') };
const b: LockOwner = { caller: 'b', svid: 2, oh: Buffer.from('b') };
const req = (owner: LockOwner): LockRequest => ({ file: 'f', owner, exclusive: true, ...rangeOf(0n, 0n) });
const tag: GrantTarget = { vers: 4, transport: 'udp', address: '127.0.0.1', cookie: Buffer.from('c'), alock: { caller_name: 'b', fh: Buffer.alloc(44), oh: b.oh, svid: 2, l_offset: 0n, l_len: 0n } };

function setup(retries: number) {
  const peers = new PeerCaller({ portmapPort: blackhole.address().port, timeoutMs: 150, maxInflight: 4, hostname: 'test' });
  let grants: GrantCallbacks | undefined;
  const locks = new LockManager<GrantTarget>(undefined, (w) => grants!.granted(w));
  grants = new GrantCallbacks({ locks, peers, retryMs: 50, retries, log: testLog });
  return { locks, grants };
}

describe('GRANTED callbacks', () => {
  it('are sent 1 + retries times to a client that never answers, then dropped; the lock stays held', async () => {
    xids.clear();
    const { locks, grants } = setup(2);
    locks.lock(req(a), { block: false, tag });
    expect(locks.lock(req(b), { block: true, tag }).status).toBe('blocked');
    locks.unlock('f', a, rangeOf(0n, 0n));
    expect(grants.count()).toBe(1);
    const end = Date.now() + 10_000;
    while (grants.count() > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(grants.count()).toBe(0);
    // Each attempt asks the client's portmapper once (UDP retransmissions reuse the xid).
    expect(xids.size).toBe(3);
    expect(locks.held()).toEqual([expect.objectContaining({ owner: b })]);
    expect(locks.lock(req(b), { block: true, tag }).status).toBe('granted');
    grants.close();
  });

  it('a CANCEL before the client acknowledged the grant releases the lock', () => {
    const { locks, grants } = setup(5);
    locks.lock(req(a), { block: false, tag });
    locks.lock(req(b), { block: true, tag });
    locks.unlock('f', a, rangeOf(0n, 0n));
    expect(locks.cancel(req(b))).toBe(false);
    expect(grants.cancel(req(b))).toBe(true);
    expect(locks.held()).toEqual([]);
    expect(grants.count()).toBe(0);
    grants.close();
  });
});
