import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { Telemetry } from '../../telemetry/telemetry.ts';
import type { ZodTypeProvider } from '../zod.ts';

export type StateSnapshot = () => Record<string, unknown>;

export interface StatePluginOptions {
  telemetry: Telemetry;
  /** The server's own parts (ports, DRC…), reported under `server`. */
  state?: StateSnapshot;
  /** How long one serialized snapshot answers every request (0: built per request). */
  maxAgeMs?: number;
}

const PageParams = z.strictObject({ pfn: z.coerce.number().int().min(0) });

/** GET /api/state (what a dashboard starts from) and GET /api/pages/:pfn (one frame's detail). */
export const statePlugin: FastifyPluginAsync<StatePluginOptions> = async (app, opts) => {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const maxAgeMs = opts.maxAgeMs ?? 0;
  // The snapshot is hundreds of kB and costs the event loop milliseconds to build: however many
  // clients poll, it is built at most once per maxAgeMs and the same bytes answer them all.
  let cached: { body: Buffer; at: number } | null = null;
  r.get('/api/state', async (_req, reply) => {
    const t = performance.now();
    let timing: string;
    if (cached && t - cached.at < maxAgeMs) {
      timing = `build;dur=0, age;dur=${(t - cached.at).toFixed(1)}`;
    } else {
      cached = { body: opts.telemetry.snapshotBody(opts.state?.() ?? {}), at: t };
      // What building and serializing cost the event loop, told apart from time a busy loop kept the request waiting.
      timing = `build;dur=${(performance.now() - t).toFixed(1)}`;
    }
    return reply.header('server-timing', timing).type('application/json; charset=utf-8').send(cached.body);
  });
  r.get('/api/pages/:pfn', { schema: { params: PageParams } }, async (req, reply) => {
    const detail = opts.telemetry.pageDetail(req.params.pfn);
    if (!detail) return reply.code(404).send({ error: `no page frame ${req.params.pfn}` });
    return detail;
  });
};
