import websocket from '@fastify/websocket';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Telemetry } from '../telemetry/telemetry.ts';
import { EventStream } from './event-stream.ts';
import type { FaultApi } from './fault-api.ts';
import { dashboardPlugin } from './plugins/dashboard.ts';
import { eventsPlugin } from './plugins/events.ts';
import { faultsPlugin } from './plugins/faults.ts';
import { metricsPlugin } from './plugins/metrics.ts';
import { statePlugin, type StateSnapshot } from './plugins/state.ts';
import { tracePlugin } from './plugins/trace.ts';
import { zodValidatorCompiler } from './zod.ts';

export type { StateSnapshot } from './plugins/state.ts';
export type { FaultApi, OneOffFault } from './fault-api.ts';

/** Largest message a dashboard may send on the websocket (it only ever sends `{"type":"resync"}`). */
export const MAX_CLIENT_MESSAGE_BYTES = 1024;

export interface HttpAppOptions {
  log: Logger;
  /** The server's own parts for GET /api/state (ports, DRC…), under `server`. */
  state?: StateSnapshot;
  telemetry: Telemetry;
  faults: FaultApi;
  /** The dashboard event stream; by default one on the telemetry with the default limits. */
  stream?: EventStream;
  /** More /metrics families from parts outside the telemetry (the wire's counters). */
  extraMetrics?: () => string;
}

/** The HTTP side: dashboard, state and page detail, /metrics, trace export, fault controls, event stream. */
export async function buildHttpApp(opts: HttpAppOptions): Promise<FastifyInstance> {
  const log = opts.log.child({ component: 'http' });
  // The dashboard polls and streams; a log line per request would drown the server's own.
  const app = Fastify({ loggerInstance: log as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }) });
  app.setValidatorCompiler(zodValidatorCompiler);
  const stream = opts.stream ?? new EventStream(opts.telemetry, log);
  app.addHook('onClose', async () => stream.close());
  await app.register(websocket, { options: { maxPayload: MAX_CLIENT_MESSAGE_BYTES } });
  await app.register(dashboardPlugin);
  await app.register(statePlugin, { telemetry: opts.telemetry, state: opts.state });
  await app.register(metricsPlugin, { telemetry: opts.telemetry, stream, ...(opts.extraMetrics ? { extra: opts.extraMetrics } : {}) });
  await app.register(tracePlugin, { telemetry: opts.telemetry });
  await app.register(faultsPlugin, { faults: opts.faults });
  await app.register(eventsPlugin, { stream });
  app.get('/healthz', async () => ({ ok: true }));
  return app;
}
