import type { FastifyPluginAsync } from 'fastify';
import type { Telemetry } from '../../telemetry/telemetry.ts';

/** GET /api/trace: page lifetimes in Trace Event Format (open in Perfetto or chrome://tracing). */
export const tracePlugin: FastifyPluginAsync<{ telemetry: Telemetry }> = async (app, opts) => {
  app.get('/api/trace', async (_req, reply) => {
    reply.header('content-disposition', 'inline; filename="pagelife-trace.json"');
    return opts.telemetry.chromeTrace();
  });
};
