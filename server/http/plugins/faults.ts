import type { FastifyPluginAsync } from 'fastify';
import { FaultPatchSchema, OneOffFaultSchema, type FaultApi } from '../fault-api.ts';
import type { ZodTypeProvider } from '../zod.ts';

/** GET/POST /api/faults (path settings) and POST /api/faults/one-off (the next segments only). */
export const faultsPlugin: FastifyPluginAsync<{ faults: FaultApi }> = async (app, opts) => {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get('/api/faults', async () => opts.faults.get());
  r.post('/api/faults', { schema: { body: FaultPatchSchema } }, async (req) => {
    const now = opts.faults.set(req.body);
    req.log.info({ faults: req.body }, 'faults changed');
    return now;
  });
  r.post('/api/faults/one-off', { schema: { body: OneOffFaultSchema } }, async (req) => {
    opts.faults.oneOff(req.body);
    req.log.info({ oneOff: req.body }, 'one-off fault queued');
    return { ok: true };
  });
};
