import type { FastifyPluginAsync } from 'fastify';
import { Exposition, PROMETHEUS_CONTENT_TYPE } from '../../telemetry/exposition.ts';
import type { Telemetry } from '../../telemetry/telemetry.ts';
import type { EventStream } from '../event-stream.ts';
import type { LocksSnapshot } from '../../nlm/snapshot.ts';

export interface MetricsPluginOptions {
  telemetry: Telemetry;
  stream: EventStream;
  extra?: () => string;
  locks?: () => LocksSnapshot;
}

/** GET /metrics: the telemetry's facts and the dashboard stream's own, in Prometheus text format. */
export const metricsPlugin: FastifyPluginAsync<MetricsPluginOptions> = async (app, opts) => {
  app.get('/metrics', async (_req, reply) => {
    const s = opts.stream.stats();
    const own = new Exposition()
      .gauge('pagelife_dashboard_clients', 'Dashboards connected to the event stream.', [{ value: s.clients }])
      .counter('pagelife_dashboard_deltas_total', 'Deltas built for the event stream.', [{ value: s.deltas }])
      .counter('pagelife_dashboard_deltas_dropped_total', 'Deltas dropped for clients that did not keep up.', [{ value: s.dropped }])
      .counter('pagelife_dashboard_snapshots_total', 'Snapshots sent (on connect and after drops).', [{ value: s.snapshots }])
      .gauge('pagelife_dashboard_max_queued_deltas', 'Longest delta queue of any client.', [{ value: s.maxQueued }]);
    if (opts.locks) {
      const l = opts.locks().counts;
      own
        .gauge('pagelife_nlm_locks', 'NLM byte-range locks held.', [{ value: l.locks }])
        .gauge('pagelife_nlm_blocked_locks', 'NLM blocking lock requests waiting.', [{ value: l.waiters }])
        .gauge('pagelife_nlm_clients', 'Clients holding NLM locks.', [{ value: l.clients }])
        .gauge('pagelife_nlm_shares', 'NLM share reservations held.', [{ value: l.shares }])
        .gauge('pagelife_nsm_monitored', 'Hosts the status monitor watches.', [{ value: l.monitored }])
        .counter('pagelife_nlm_grace_denied_total', 'NLM requests refused with DENIED_GRACE_PERIOD.', [{ value: l.graceDenied }]);
    }
    reply.type(PROMETHEUS_CONTENT_TYPE);
    return opts.telemetry.prometheus() + own.text() + (opts.extra?.() ?? '');
  });
};
