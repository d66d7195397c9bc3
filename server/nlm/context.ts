import type { Logger } from 'pino';
import type { CallContext } from '../../rpc/program.ts';
import type { FileHandleCodec } from '../vfs/fh.ts';
import { GrantCallbacks, type GrantTarget } from './grant-callbacks.ts';
import { LockManager, rangeOf, type LockLimits, type LockOwner, type LockRequest } from './lock-manager.ts';
import type { PeerCaller } from '../../rpc/peer-caller.ts';
import { ShareTable } from './share-table.ts';
import type { nlm4_lock } from './xdr.ts';

export interface NlmConfig {
  limits: LockLimits;
  /** SHARE reservations over all clients. */
  maxShares: number;
  /** Port of the clients' portmapper, through which GRANTED and _RES callbacks find their lockd. */
  clientPortmapPort: number;
  callbackTimeoutMs: number;
  /** Callbacks (GRANTED, _RES, SM_NOTIFY) in flight at once. */
  maxCallbacks: number;
  /** A GRANTED callback that got no answer is sent again after this long, at most `grantedRetries` times. */
  grantedRetryMs: number;
  grantedRetries: number;
}


/** What NLM needs from NSM: the grace period, and monitoring of the clients that hold locks. */
export interface NlmHooks {
  inGrace(): boolean;
  /** Starts monitoring the caller (persisted before it resolves); false when NSM refuses (its limit). */
  monitor(callerName: string, call: CallContext): Promise<boolean>;
}

export interface NlmContext {
  config: NlmConfig;
  locks: LockManager<GrantTarget>;
  shares: ShareTable;
  peers: PeerCaller;
  grants: GrantCallbacks;
  hooks: NlmHooks;
  /** The identity of the file a handle names (every handle of one file maps to one key), or undefined for a handle we did not make. */
  fileKey(fh: Buffer): string | undefined;
  /** Requests refused because of the grace period, since start. */
  counters: { graceDenied: number };
  log: Logger;
}

export function createNlmContext(o: { config: NlmConfig; fh: FileHandleCodec; hooks: NlmHooks; peers: PeerCaller; log: Logger }): NlmContext {
  const { peers, log } = o;
  let grants: GrantCallbacks | undefined;
  const locks = new LockManager<GrantTarget>(o.config.limits, (w) => grants?.granted(w));
  grants = new GrantCallbacks({ locks, peers, retryMs: o.config.grantedRetryMs, retries: o.config.grantedRetries, log });
  return {
    config: o.config,
    locks,
    shares: new ShareTable(o.config.maxShares),
    peers,
    grants,
    hooks: o.hooks,
    fileKey(fh) {
      try {
        const id = o.fh.decode(fh);
        return `${id.exportId}:${id.dev}:${id.ino}`;
      } catch {
        return undefined;
      }
    },
    counters: { graceDenied: 0 },
    log,
  };
}

export function ownerOf(l: nlm4_lock): LockOwner {
  return { caller: l.caller_name, svid: l.svid, oh: l.oh };
}

export function lockRequestOf(file: string, l: nlm4_lock, exclusive: boolean): LockRequest {
  return { file, owner: ownerOf(l), exclusive, ...rangeOf(l.l_offset, l.l_len) };
}
