import { readFile } from 'node:fs/promises';
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { ZodTypeProvider } from '../zod.ts';

const DASHBOARD_DIR = new URL('../dashboard/', import.meta.url);

const ASSETS = {
  'dashboard.js': 'text/javascript; charset=utf-8',
  'dashboard.css': 'text/css; charset=utf-8',
} as const;

const AssetParams = z.strictObject({ name: z.enum(Object.keys(ASSETS) as [keyof typeof ASSETS]) });

/** The dashboard: one HTML page, one JS module, one stylesheet, read once at start (no build step). */
export const dashboardPlugin: FastifyPluginAsync = async (app) => {
  const html = await readFile(new URL('index.html', DASHBOARD_DIR), 'utf8');
  const assets = new Map<keyof typeof ASSETS, string>();
  for (const name of Object.keys(ASSETS) as (keyof typeof ASSETS)[]) assets.set(name, await readFile(new URL(name, DASHBOARD_DIR), 'utf8'));
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(html));
  r.get('/assets/:name', { schema: { params: AssetParams } }, async (req, reply) =>
    reply.type(ASSETS[req.params.name]).header('cache-control', 'no-cache').send(assets.get(req.params.name)),
  );
};
