import type { StreamBudgetStats } from '../../rpc/stream-budget.ts';
import type { Config } from '../config.ts';
import { Exposition } from './exposition.ts';

/**
 * /metrics for the `limits` section: each limit beside its current use (per-connection limits
 * with the most any connection uses now; turnSliceMs with the longest turn of stream input over
 * about the last second), and what the server did at the limits.
 */
export function limitsExposition(limits: Config['limits'], s: StreamBudgetStats, udp: { inflight: number; bufferedBytes: number; dropped: number; droppedBytesLimit: number }[]): string {
  const use: Record<keyof Config['limits'], number> = {
    maxRecord: s.maxConnBufferedBytes,
    maxInflight: s.maxConnInflight,
    maxQueuedReplyBytes: s.maxConnQueuedReplyBytes,
    replyReserveBytes: s.maxConnInflight * limits.replyReserveBytes,
    idleTimeoutMs: s.longestIdleMs,
    recordTimeoutMs: s.oldestPartialMs,
    inputPressureAgeMs: s.oldestInputWaitMs,
    maxBufferedTotal: s.bufferedBytes,
    bufferedPressureTotal: s.bufferedBytes,
    maxConnections: s.connections,
    turnSliceMs: s.longestTurnMs,
    maxQueuedReplyBytesTotal: s.queuedReplyBytes,
    udpMaxInflight: Math.max(0, ...udp.map((u) => u.inflight)),
    udpMaxBufferedBytes: Math.max(0, ...udp.map((u) => u.bufferedBytes)),
  };
  const names = Object.keys(use) as (keyof Config['limits'])[];
  return new Exposition()
    .gauge('pagelife_limit', 'Configured limit (config `limits` section; bytes, calls or ms as its name says).', names.map((limit) => ({ labels: { limit }, value: limits[limit] })))
    .gauge('pagelife_limit_used', 'Current use of each limit (per-connection limits: the most any connection uses now).', names.map((limit) => ({ labels: { limit }, value: use[limit] })))
    .gauge('pagelife_rpc_stream_connections', 'RPC stream (TCP) connections open.', [{ value: s.connections }])
    .gauge('pagelife_rpc_stream_paused_connections', 'Connections not being read now (backpressure: replies not taken, or calls at their limit).', [{ value: s.pausedConnections }])
    .gauge('pagelife_rpc_inflight_calls', 'Calls executing now over stream connections.', [{ value: s.inflight }])
    .counter('pagelife_rpc_stream_pauses_total', 'Times a connection stopped being read for backpressure.', [{ value: s.pauses }])
    .gauge('pagelife_rpc_stream_input_waiting_connections', 'Connections not being read now because buffered input is under pressure (limits.bufferedPressureTotal) and they hold their share of it.', [{ value: s.inputWaitingConnections }])
    .counter('pagelife_rpc_stream_input_waits_total', 'Times a connection stopped being read for input pressure.', [{ value: s.inputWaits }])
    .counter('pagelife_rpc_stream_turn_yields_total', 'Times a connection stopped reading or starting calls until the next turn of the event loop (limits.turnSliceMs).', [{ value: s.turnYields }])
    .counter(
      'pagelife_rpc_connections_closed_total',
      'Stream connections closed by the server, by reason.',
      Object.entries(s.closed).map(([reason, value]) => ({ labels: { reason }, value })),
    )
    .counter('pagelife_rpc_udp_dropped_total', 'UDP calls dropped at a limit (clients retransmit), by the limit.', [
      { labels: { limit: 'udpMaxInflight' }, value: udp.reduce((a, u) => a + u.dropped, 0) },
      { labels: { limit: 'udpMaxBufferedBytes' }, value: udp.reduce((a, u) => a + u.droppedBytesLimit, 0) },
    ])
    .text();
}
