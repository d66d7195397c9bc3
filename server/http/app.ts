import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';

/** A snapshot of the server for `GET /api/state`; each part is produced by the module that owns it. */
export type StateSnapshot = () => Record<string, unknown>;

export interface HttpAppOptions {
  log: Logger;
  state: StateSnapshot;
}

/** The HTTP side: JSON state now; the dashboard, fault API and /metrics register here as plugins. */
export async function buildHttpApp(opts: HttpAppOptions): Promise<FastifyInstance> {
  const app = Fastify({ loggerInstance: opts.log.child({ component: 'http' }) as FastifyBaseLogger, disableRequestLogging: true });
  app.get('/api/state', async () => opts.state());
  app.get('/healthz', async () => ({ ok: true }));
  return app;
}
