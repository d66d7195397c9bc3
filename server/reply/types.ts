import type { EventSink } from '../../netstack/events.ts';
import type { FaultSettings } from './faults.ts';
import type { ReplyMode } from './mode.ts';

/** Why the pin budget orphaned a reply's fragments. */
export type OrphanReason = 'budget-share' | 'budget-age';

/**
 * What the reply path tells the rest of the server (dashboard, metrics, trace, fixture recorder).
 * A reply's pages are pinned from `reply-pin` to `reply-release` (lent-reply.ts); `destructor` is
 * the netstack FragDestructor id that links these to the netstack events (transmit, retransmit,
 * hold, ack…). `connection-open` tells where a TCP connection's stream starts (sequence space);
 * `faults-change` and `faults-one-off` are the changes made at run time (the HTTP fault API).
 */
export type ReplyEvent =
  | { type: 'reply-pin'; t: number; conn: number; xid: number; destructor: number; pfns: number[]; file: string; offset: number; bytes: number }
  | { type: 'reply-release'; t: number; conn: number; xid: number; destructor: number; pfns: number[]; heldMs: number; mode: ReplyMode }
  | { type: 'pin-orphan'; t: number; conn: number; destructor: number; bytes: number; reason: OrphanReason }
  | { type: 'connection-open'; t: number; conn: number; remote: string; streamStart: number }
  | { type: 'faults-change'; t: number; set: Partial<FaultSettings> }
  | { type: 'faults-one-off'; t: number; conn: number | null; dropNext: number; holdNextMs: number };

export type ReplyBus = EventSink<ReplyEvent>;

export interface ReplyPathCounters {
  repliesByReference: number;
  repliesCopied: number;
  destructorsFired: number;
  budgetOrphanedFrags: number;
  budgetOrphanRuns: number;
  socketCopies: number;
}

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
  /** Duplicate ACKs received from the peer (on the wire, the real client's). */
  dupAcksIn: number;
  pinnedReplies: number;
}

export type { FaultSettings };
