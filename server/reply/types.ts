import type { EventBus } from '../../netstack/events.ts';
import type { ReplyMode } from './mode.ts';

/**
 * What the reply path tells the rest of the server (dashboard, metrics, trace, fixture recorder).
 * A reply's pages are pinned from `reply-pin` to `reply-release`; `destructor` is the netstack
 * FragDestructor id that links these to the netstack events (transmit, retransmit, hold, ack…).
 */
export type ReplyEvent =
  | { type: 'reply-pin'; t: number; conn: number; xid: number; destructor: number; pfns: number[]; file: string; offset: number; bytes: number }
  | { type: 'reply-release'; t: number; conn: number; xid: number; destructor: number; pfns: number[]; heldMs: number; mode: ReplyMode }
  | { type: 'pin-orphan'; t: number; conn: number; destructor: number; bytes: number; reason: 'budget-share' | 'budget-age' };

export type ReplyBus = EventBus<ReplyEvent>;

/** One TCP connection's state as the dashboard shows it. */
export interface ConnectionSnapshot {
  id: number;
  remote: string;
  transport: 'tcp' | 'udp';
  bytesInFlight: number;
  cwnd: number;
  ssthresh: number;
  srttMs: number;
  rtoMs: number;
  retransmits: number;
  staleRetransmits: number;
  pinnedReplies: number;
}

export type { FaultSettings } from './faults.ts';
