/**
 * The HTTP control API and who may use it: loopback only by default; beyond loopback, state-changing
 * requests need the control token (401 and nothing changed without it), read-only ones stay open, and
 * the dashboard page carries the token only when opened with it.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTROL_TOKEN_FILE, CONTROL_TOKEN_HEADER } from '../../server/http/control.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';

/** A non-loopback IPv4 address of this host, if it has one. */
const external = Object.values(os.networkInterfaces())
  .flat()
  .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

const post = (url: string, body: unknown, token?: string) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { [CONTROL_TOKEN_HEADER]: token } : {}) }, body: JSON.stringify(body) });

const lossAt = async (base: string): Promise<number> => ((await (await fetch(`${base}/api/faults`)).json()) as { loss: number }).loss;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pagelife-http-control-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function serve(varDir: string, httpHost?: string): Promise<ServerProcess> {
  return startServer(['--var-dir', path.join(dir, varDir), '--host', '127.0.0.1', ...(httpHost ? ['--http-host', httpHost] : [])]);
}

describe('HTTP control', () => {
  it('listens on loopback by default, where the controls need no token', async () => {
    const s = await serve('default');
    try {
      const base = `http://127.0.0.1:${s.ports.http}`;
      expect((await post(`${base}/api/faults`, { loss: 0.25 })).status).toBe(200);
      expect(await lossAt(base)).toBe(0.25);
      expect(s.output()).toContain('this machine only');
      if (external) await expect(fetch(`http://${external}:${s.ports.http}/healthz`)).rejects.toThrow();
    } finally {
      await s.stop();
    }
  });

  for (const host of ['0.0.0.0', ...(external ? [external] : [])]) {
    it(`bound to ${host === '0.0.0.0' ? 'every address' : 'a non-loopback address'}: POST without the token is 401 and changes nothing; with it, it works`, async () => {
      const s = await serve(`wide-${host}`, host);
      try {
        const token = (await readFile(path.join(dir, `wide-${host}`, 'state', CONTROL_TOKEN_FILE))).subarray(0, 24).toString('hex');
        expect(s.output()).toContain(`?token=${token}`);
        const base = `http://${host === '0.0.0.0' ? (external ?? '127.0.0.1') : host}:${s.ports.http}`;
        for (const bad of [undefined, 'x'.repeat(token.length), token.slice(1)]) {
          const r = await post(`${base}/api/faults`, { loss: 1 }, bad);
          expect(r.status).toBe(401);
          expect(((await r.json()) as { error: string }).error).toBe('unauthorized');
          expect((await post(`${base}/api/faults/one-off`, { dropNext: 3 }, bad)).status).toBe(401);
        }
        expect(await lossAt(base)).toBe(0);
        const ok = await post(`${base}/api/faults`, { loss: 0.5 }, token);
        expect(ok.status).toBe(200);
        expect(await lossAt(base)).toBe(0.5);
        // Read-only endpoints stay open; the page carries the token only when opened with it.
        expect((await fetch(`${base}/metrics`)).status).toBe(200);
        expect(await (await fetch(`${base}/`)).text()).not.toContain(token);
        expect(await (await fetch(`${base}/?token=${'0'.repeat(token.length)}`)).text()).not.toContain(token);
        expect(await (await fetch(`${base}/?token=${token}`)).text()).toContain(`<meta name="pagelife-token" content="${token}">`);
      } finally {
        await s.stop();
      }
    });
  }

  it('keeps the token across restarts (a bookmarked dashboard address stays valid)', async () => {
    const first = await serve('restart', '0.0.0.0');
    const token = /\?token=([0-9a-f]+)/.exec(first.output())?.[1];
    await first.stop();
    const second = await serve('restart', '0.0.0.0');
    try {
      expect(token).toBeDefined();
      expect(second.output()).toContain(`?token=${token}`);
    } finally {
      await second.stop();
    }
  });
});
