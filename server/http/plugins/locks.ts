import type { FastifyPluginAsync } from 'fastify';
import type { LocksSnapshot } from '../../nlm/snapshot.ts';

export interface LocksPluginOptions {
  locks: () => LocksSnapshot;
}

/** GET /api/locks: the NLM locks held and queued, the grace period and the monitored clients (read-only). */
export const locksPlugin: FastifyPluginAsync<LocksPluginOptions> = async (app, opts) => {
  app.get('/api/locks', async () => opts.locks());
};
