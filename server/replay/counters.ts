/** The counters a fixture's expectations name, read from the core and from the events of one run. */
import type { TcpPair } from '../../netstack/connection.ts';
import type { NetstackEvent } from '../../netstack/events.ts';
import type { ServerCore } from '../main.ts';
import type { ReplyEvent } from '../reply/types.ts';
import { COUNTER_NAMES, type CounterName } from './schema.ts';

export type CounterValues = Record<CounterName, number>;

/** Counters kept by counting events (the rest are read from the core's state). */
const BY_EVENT: Partial<Record<NetstackEvent['type'] | ReplyEvent['type'], CounterName>> = {
  'segment-retransmit': 'retransmits',
  'fast-retransmit': 'fastRetransmits',
  rto: 'rtos',
  'segment-drop': 'drops',
  'segment-hold': 'holds',
  'stale-retransmit': 'staleRetransmits',
  orphan: 'orphanedFrags',
  'pin-orphan': 'pinOrphans',
};

export class RunCounters {
  private readonly counted: Partial<CounterValues> = {};

  constructor(
    private readonly core: ServerCore,
    private readonly pairs: readonly TcpPair[],
  ) {}

  event(e: NetstackEvent | ReplyEvent): void {
    const name = BY_EVENT[e.type];
    if (name) this.bump(name);
    else if (e.type === 'ack' && e.lost) this.bump('ackDrops');
    else if (e.type === 'frag-unref' && e.destructor !== null) {
      this.bump('fragUnrefs');
      this.bump('destructorFragRefs', -1);
    } else if (e.type === 'frag-ref' && e.destructor !== null) this.bump('destructorFragRefs');
  }

  /** Counts, except destructorFragRefs: frag slots pointing at a destructor now (refs minus unrefs). */
  private bump(n: CounterName, by = 1): void {
    this.counted[n] = (this.counted[n] ?? 0) + by;
  }

  now(): CounterValues {
    const { core } = this;
    const cache = core.pageCache.stats();
    let duplicates = 0;
    for (const p of this.pairs) duplicates += p.stats().duplicates;
    const state: Partial<CounterValues> = {
      pinnedPages: core.pageCache.pinned,
      pinnedReplies: core.replies.inflightReplies(),
      destructorsFired: core.replies.counters.destructorsFired,
      duplicates,
      drcHits: core.drc.stats().hits,
      cowCopies: cache.cowCopies,
      evictions: cache.evictions,
    };
    return Object.fromEntries(COUNTER_NAMES.map((n) => [n, state[n] ?? this.counted[n] ?? 0])) as CounterValues;
  }
}
