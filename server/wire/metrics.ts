import { Exposition } from '../telemetry/exposition.ts';
import type { WireSnapshot } from './wire-host.ts';

/** The wire's /metrics families: frames and bytes each way, drops by cause, checksum failures, connections. */
export function wireMetrics(s: WireSnapshot): string {
  return new Exposition()
    .counter('pagelife_wire_frames_total', 'Ethernet frames on the wire.', [
      { labels: { direction: 'in' }, value: s.framesIn },
      { labels: { direction: 'out' }, value: s.framesOut },
    ])
    .counter('pagelife_wire_bytes_total', 'Ethernet frame bytes on the wire.', [
      { labels: { direction: 'in' }, value: s.bytesIn },
      { labels: { direction: 'out' }, value: s.bytesOut },
    ])
    .counter(
      'pagelife_wire_drops_total',
      'Frames, fragments or segments the wire stack dropped, by cause.',
      Object.entries(s.drops).map(([cause, value]) => ({ labels: { cause }, value })),
    )
    .counter('pagelife_wire_checksum_failures_total', 'Frames dropped for a bad IPv4, ICMP, UDP or TCP checksum.', [{ value: s.checksumFailures }])
    .counter('pagelife_wire_resets_sent_total', 'TCP RSTs the wire stack sent.', [{ value: s.resetsSent }])
    .counter('pagelife_wire_connections_accepted_total', 'TCP connections accepted on the wire.', [{ value: s.connectionsAccepted }])
    .gauge('pagelife_wire_connections', 'TCP connections on the wire (TIME_WAIT not counted).', [{ value: s.connections }])
    .gauge('pagelife_wire_half_open', 'Half-open TCP connections (the SYN queue).', [{ value: s.halfOpen }])
    .text();
}
