/**
 * Who may change the server over HTTP. Read-only endpoints (dashboard, state, metrics, trace, the
 * event stream) are open to whoever can reach the listener. State-changing ones (faults, one-offs:
 * `POST /api/faults {"loss":1}` stops every NFS reply) need the control token whenever the listener
 * is reachable beyond loopback. The token lives in `<varDir>/state/http-token` (0600, kept across
 * restarts), is printed at start as the dashboard's address with `?token=`, and is sent back in the
 * `x-pagelife-token` header; the dashboard page learns it from that address, as Jupyter's does.
 */
import { timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { loadSecret } from '../secret.ts';

export const CONTROL_TOKEN_HEADER = 'x-pagelife-token';
export const CONTROL_TOKEN_FILE = 'http-token';
const TOKEN_BYTES = 24;

export interface ControlAuth {
  token: string;
  /** False on a loopback listener: anyone who can reach it is on this machine already. */
  required: boolean;
}

/** True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

export async function loadControlAuth(stateDir: string, httpHost: string): Promise<ControlAuth> {
  const token = (await loadSecret(stateDir, CONTROL_TOKEN_FILE, TOKEN_BYTES)).subarray(0, TOKEN_BYTES).toString('hex');
  return { token, required: !isLoopbackHost(httpHost) };
}

export function tokenMatches(auth: ControlAuth, given: unknown): boolean {
  if (typeof given !== 'string' || given.length !== auth.token.length) return false;
  return timingSafeEqual(Buffer.from(given), Buffer.from(auth.token));
}

const READ_ONLY_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Refuses every state-changing request without the token (401, nothing changed), when one is required. */
export function requireControlToken(app: FastifyInstance, auth: ControlAuth): void {
  if (!auth.required) return;
  app.addHook('onRequest', async (req, reply) => {
    if (READ_ONLY_METHODS.has(req.method) || tokenMatches(auth, req.headers[CONTROL_TOKEN_HEADER])) return;
    req.log.warn({ method: req.method, url: req.url, from: req.ip }, 'http: control request without a valid token refused');
    return reply.code(401).send({ error: 'unauthorized', message: `this server is reachable beyond loopback: send the control token in ${CONTROL_TOKEN_HEADER} (printed at start)` });
  });
}
