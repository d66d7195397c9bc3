import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { Telemetry } from '../../telemetry/telemetry.ts';
import type { ZodTypeProvider } from '../zod.ts';

export type StateSnapshot = () => Record<string, unknown>;

export interface StatePluginOptions {
  telemetry: Telemetry;
  /** The server's own parts (ports, DRC…), reported under `server`. */
  state?: StateSnapshot;
}

const PageParams = z.strictObject({ pfn: z.coerce.number().int().min(0) });

/** GET /api/state (what a dashboard starts from) and GET /api/pages/:pfn (one frame's detail). */
export const statePlugin: FastifyPluginAsync<StatePluginOptions> = async (app, opts) => {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get('/api/state', async (_req, reply) => {
    // Built and serialized here so the time it costs the event loop can be told (Server-Timing)
    // from the time a busy loop kept the request waiting.
    const t = performance.now();
    const body = JSON.stringify({ ...opts.telemetry.snapshot(), server: opts.state?.() ?? {} });
    return reply.header('server-timing', `build;dur=${(performance.now() - t).toFixed(1)}`).type('application/json; charset=utf-8').send(body);
  });
  r.get('/api/pages/:pfn', { schema: { params: PageParams } }, async (req, reply) => {
    const detail = opts.telemetry.pageDetail(req.params.pfn);
    if (!detail) return reply.code(404).send({ error: `no page frame ${req.params.pfn}` });
    return detail;
  });
};
