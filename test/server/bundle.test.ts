// What `npm start` runs: the bundle `npm run build` makes of server/start.ts starts from build/,
// finds the checkout's files (the embedded export, the dashboard's assets) and serves.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { samplePattern, SAMPLE_BIG_BYTES } from '../../server/default-export.ts';
import { NfsTestClient } from '../support/nfs-client.ts';
import { BUNDLE, REPO_ROOT, startServer, type ServerProcess } from '../support/server-process.ts';

let dir = '';
let server: ServerProcess | null = null;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pagelife-bundle-'));
  await promisify(execFile)('npm', ['run', '--silent', 'build'], { cwd: REPO_ROOT, timeout: 60_000 });
  server = await startServer(['--var-dir', dir, '--cache-pages', '512'], { entry: BUNDLE });
}, 90_000);
afterAll(async () => {
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('npm start (the built bundle)', () => {
  it('serves the embedded export over NFS and the dashboard over HTTP', async () => {
    const { ports } = server!;
    const nfs = await NfsTestClient.connect({ nfsPort: ports.nfs, mountPort: ports.mount });
    try {
      const fh = await nfs.lookup('big.bin');
      const { data } = await nfs.read(fh, 4096, 65536);
      expect(data.equals(samplePattern(SAMPLE_BIG_BYTES).subarray(4096, 4096 + 65536))).toBe(true);
    } finally {
      await nfs.close();
    }
    const page = await fetch(`http://127.0.0.1:${ports.http}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<html');
    const js = await fetch(`http://127.0.0.1:${ports.http}/assets/dashboard.js`);
    expect(js.status).toBe(200);
  });
});
