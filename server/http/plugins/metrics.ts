import type { FastifyPluginAsync } from 'fastify';
import { Exposition, PROMETHEUS_CONTENT_TYPE } from '../../telemetry/exposition.ts';
import type { Telemetry } from '../../telemetry/telemetry.ts';
import type { EventStream } from '../event-stream.ts';

export interface MetricsPluginOptions {
  telemetry: Telemetry;
  stream: EventStream;
  extra?: () => string;
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
    reply.type(PROMETHEUS_CONTENT_TYPE);
    return opts.telemetry.prometheus() + own.text() + (opts.extra?.() ?? '');
  });
};
