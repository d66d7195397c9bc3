import { Agenda } from './agenda.ts';
import type { Clock } from './clock.ts';
import type { SkBuff } from './skb.ts';

/** Ethernet + IPv4 + TCP header bytes a frame adds on the link (for serialisation time). */
const FRAME_OVERHEAD = 14 + 20 + 20;

/** What sits in the queue: an skb and whether it is a datagram (no TCP), released at `at`. */
export interface DeviceQueueEntry {
  skb: SkBuff;
  datagram: boolean;
  held: boolean;
}

/**
 * A device queue (qdisc + driver ring): transmitted skbs wait here until TX completion, when
 * `onTxComplete` gets them — the moment the driver would free its clone.
 *
 * With a bandwidth, frames leave one after another at link speed. A hold parks one frame for
 * a given time while the others pass (a stalled ring on a multiqueue NIC): that is how a
 * clone comes to outlive the ACK of its own retransmission.
 */
export class DeviceQueue {
  /** Bytes per second on the link; 0 = unlimited. */
  bandwidth = 0;
  private busyUntil = 0;
  private readonly agenda: Agenda<DeviceQueueEntry>;

  constructor(
    private readonly clock: Clock,
    onTxComplete: (entry: DeviceQueueEntry) => void,
  ) {
    this.agenda = new Agenda(clock, onTxComplete);
  }

  get length(): number {
    return this.agenda.size;
  }

  /** The skbs waiting for TX completion. */
  skbs(): SkBuff[] {
    return this.agenda.items().map((e) => e.skb);
  }

  /** Empties the queue (a reset): the entries are the caller's to free. */
  clear(): DeviceQueueEntry[] {
    this.busyUntil = 0;
    return this.agenda.clear();
  }

  enqueue(skb: SkBuff, datagram: boolean, holdMs: number): void {
    const now = this.clock.now();
    if (holdMs > 0) {
      this.agenda.schedule(now + holdMs, { skb, datagram, held: true });
      return;
    }
    let at = now;
    if (this.bandwidth > 0) {
      at = Math.max(now, this.busyUntil) + ((skb.len + FRAME_OVERHEAD) * 1000) / this.bandwidth;
      this.busyUntil = at;
    }
    this.agenda.schedule(at, { skb, datagram, held: false });
  }
}
