import websocket from '@fastify/websocket';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Telemetry } from '../telemetry/telemetry.ts';
import { requireControlToken, type ControlAuth } from './control.ts';
import { EventStream } from './event-stream.ts';
import type { FaultApi } from './fault-api.ts';
import { dashboardPlugin } from './plugins/dashboard.ts';
import { eventsPlugin } from './plugins/events.ts';
import { faultsPlugin } from './plugins/faults.ts';
import { locksPlugin } from './plugins/locks.ts';
import type { LocksSnapshot } from '../nlm/snapshot.ts';
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
  /** How long one built /api/state answers every request (0: built per request). */
  stateMaxAgeMs?: number;
  telemetry: Telemetry;
  faults: FaultApi;
  /** The dashboard event stream; by default one on the telemetry with the default limits. */
  stream?: EventStream;
  /** The control token; absent: every endpoint open (tests of the API itself). */
  auth?: ControlAuth;
  /** More /metrics text from the server's own parts (its limits and their use, the wire's counters). */
  metrics?: () => string;
  /** NLM locks for GET /api/locks and /metrics (absent: no locking service). */
  locks?: () => LocksSnapshot;
}

/** The HTTP side: dashboard, state and page detail, /metrics, trace export, fault controls, event stream. */
export async function buildHttpApp(opts: HttpAppOptions): Promise<FastifyInstance> {
  const log = opts.log.child({ component: 'http' });
  // The dashboard polls and streams; a log line per request would drown the server's own.
  const app = Fastify({ loggerInstance: log as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }) });
  app.setValidatorCompiler(zodValidatorCompiler);
  const stream = opts.stream ?? new EventStream({ snapshot: () => opts.telemetry.streamSnapshot(), delta: () => opts.telemetry.delta() }, log);
  app.addHook('onClose', async () => stream.close());
  if (opts.auth) requireControlToken(app, opts.auth);
  await app.register(websocket, { options: { maxPayload: MAX_CLIENT_MESSAGE_BYTES } });
  await app.register(dashboardPlugin, { auth: opts.auth });
  await app.register(statePlugin, { telemetry: opts.telemetry, state: opts.state, maxAgeMs: opts.stateMaxAgeMs ?? 0 });
  await app.register(metricsPlugin, { telemetry: opts.telemetry, stream, ...(opts.metrics ? { extra: opts.metrics } : {}), ...(opts.locks ? { locks: opts.locks } : {}) });
  if (opts.locks) await app.register(locksPlugin, { locks: opts.locks });
  await app.register(tracePlugin, { telemetry: opts.telemetry });
  await app.register(faultsPlugin, { faults: opts.faults });
  await app.register(eventsPlugin, { stream });
  app.get('/healthz', async () => ({ ok: true }));
  return app;
}
