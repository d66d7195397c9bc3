/**
 * GRANTED callbacks: when a queued lock is granted, the client's lockd is told with NLM GRANTED (the
 * lock is already held for it). No answer: sent again every `retryMs`, at most `retries` times, then
 * given up (the lock stays; a Linux client re-sends its blocked LOCK every 30 s and is then answered
 * GRANTED). DENIED_GRACE_PERIOD from the client: retried. Any other refusal: the client no longer wants
 * the lock, which is released, as knfsd does. A CANCEL for a grant not yet acknowledged releases it too.
 */
import type { Logger } from 'pino';
import type { PeerCaller } from '../../rpc/peer-caller.ts';
import type { TransportKind } from '../../rpc/program.ts';
import { XdrWriter } from '../../xdr/writer.ts';
import { NLM4_DENIED_GRACE_PERIOD, NLM4_GRANTED, NLM_PROGRAM, NLMPROC } from './constants.ts';
import { ownerKey, type LockManager, type LockRequest, type Waiter } from './lock-manager.ts';
import { decodeRes, encodeTestargs, type nlm4_lock } from './xdr.ts';

/** Who to tell, and how, when a queued lock is granted. */
export interface GrantTarget {
  vers: number;
  transport: TransportKind;
  address: string;
  cookie: Buffer;
  alock: nlm4_lock;
}

interface Pending {
  waiter: Waiter<GrantTarget>;
  tries: number;
  timer?: NodeJS.Timeout;
}

function keyOf(r: LockRequest): string {
  return `${r.file}\0${ownerKey(r.owner)}\0${r.exclusive}\0${r.start}\0${r.end}`;
}

export class GrantCallbacks {
  private readonly pending = new Map<string, Pending>();
  private closed = false;

  constructor(private readonly o: { locks: LockManager<GrantTarget>; peers: PeerCaller; retryMs: number; retries: number; log: Logger }) {}

  granted(waiter: Waiter<GrantTarget>): void {
    if (this.closed) return;
    const key = keyOf(waiter);
    this.drop(key);
    const p: Pending = { waiter, tries: 0 };
    this.pending.set(key, p);
    void this.send(key, p);
  }

  /** CANCEL of a lock granted but not yet acknowledged: release it. True when there was one. */
  cancel(req: LockRequest): boolean {
    const key = keyOf(req);
    const p = this.pending.get(key);
    if (!p) return false;
    this.drop(key);
    this.o.locks.unlock(req.file, req.owner, req);
    return true;
  }

  /** The client learnt of the grant otherwise (its re-sent LOCK was answered GRANTED): stop calling back. */
  forget(req: LockRequest): void {
    this.drop(keyOf(req));
  }

  /** GRANTED_RES from a client that got a GRANTED_MSG-style answer path. */
  acknowledge(cookie: Buffer, stat: number): void {
    for (const [key, p] of this.pending) {
      if (!p.waiter.tag.cookie.equals(cookie)) continue;
      this.settle(key, p, stat);
      return;
    }
  }

  freeClient(caller: string): void {
    for (const [key, p] of this.pending) if (p.waiter.owner.caller === caller) this.drop(key);
  }

  count(): number {
    return this.pending.size;
  }

  close(): void {
    this.closed = true;
    for (const key of [...this.pending.keys()]) this.drop(key);
  }

  private drop(key: string): void {
    const p = this.pending.get(key);
    if (p?.timer) clearTimeout(p.timer);
    this.pending.delete(key);
  }

  private async send(key: string, p: Pending): Promise<void> {
    const t = p.waiter.tag;
    p.tries++;
    const args = encodeTestargs(new XdrWriter(), { cookie: t.cookie, exclusive: p.waiter.exclusive, alock: t.alock }, t.vers);
    try {
      const res = decodeRes(await this.o.peers.call(t.address, t.transport, NLM_PROGRAM, t.vers, NLMPROC.GRANTED, args));
      if (this.pending.get(key) === p) this.settle(key, p, res.stat);
    } catch (e) {
      if (this.pending.get(key) !== p) return;
      this.o.log.info({ client: t.address, caller: t.alock.caller_name, tries: p.tries, err: (e as Error).message }, 'nlm: GRANTED callback failed');
      this.retry(key, p);
    }
  }

  private settle(key: string, p: Pending, stat: number): void {
    if (stat === NLM4_GRANTED) return this.drop(key);
    if (stat === NLM4_DENIED_GRACE_PERIOD) return this.retry(key, p);
    this.drop(key);
    const w = p.waiter;
    this.o.log.info({ caller: w.owner.caller, stat }, 'nlm: client refused GRANTED; releasing the lock');
    this.o.locks.unlock(w.file, w.owner, w);
  }

  private retry(key: string, p: Pending): void {
    if (this.closed || p.tries > this.o.retries) {
      this.drop(key);
      return;
    }
    p.timer = setTimeout(() => void this.send(key, p), this.o.retryMs);
    p.timer.unref();
  }
}
