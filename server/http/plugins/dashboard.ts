import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { tokenMatches, type ControlAuth } from '../control.ts';
import { REPO_ROOT } from '../../paths.ts';
import type { ZodTypeProvider } from '../zod.ts';

/** From the checkout's root, not this module's URL: the bundle `npm start` runs lives elsewhere (build/). */
const DASHBOARD_DIR = pathToFileURL(path.join(REPO_ROOT, 'server', 'http', 'dashboard') + path.sep);

const ASSETS = {
  'dashboard.js': 'text/javascript; charset=utf-8',
  'dashboard.css': 'text/css; charset=utf-8',
} as const;

const AssetParams = z.strictObject({ name: z.enum(Object.keys(ASSETS) as [keyof typeof ASSETS]) });
const PageQuery = z.object({ token: z.string().max(256).optional() });

/** The page's head holds the control token when the address it was opened with carried a valid one. */
const TOKEN_SLOT = '<meta name="pagelife-token" content="">';

/**
 * The dashboard: one HTML page, one JS module, one stylesheet, read once at start (no build step).
 * Opened with `?token=` (the address printed at start) it can use the fault controls of a server
 * reachable beyond loopback; without it, it still shows everything.
 */
export const dashboardPlugin: FastifyPluginAsync<{ auth?: ControlAuth | undefined }> = async (app, { auth }) => {
  const html = await readFile(new URL('index.html', DASHBOARD_DIR), 'utf8');
  const assets = new Map<keyof typeof ASSETS, string>();
  for (const name of Object.keys(ASSETS) as (keyof typeof ASSETS)[]) assets.set(name, await readFile(new URL(name, DASHBOARD_DIR), 'utf8'));
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get('/', { schema: { querystring: PageQuery } }, async (req, reply) => {
    const page = auth?.required && tokenMatches(auth, req.query.token) ? html.replace(TOKEN_SLOT, `<meta name="pagelife-token" content="${auth.token}">`) : html;
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').header('referrer-policy', 'no-referrer').send(page);
  });
  r.get('/assets/:name', { schema: { params: AssetParams } }, async (req, reply) =>
    reply.type(ASSETS[req.params.name]).header('cache-control', 'no-cache').send(assets.get(req.params.name)),
  );
};
