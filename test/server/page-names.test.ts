/**
 * The dashboard's page detail names a cached page's file by the path a client sees, not only by its
 * device and inode: a real server, a real READ over TCP, then GET /api/pages/:pfn.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseConfig } from '../../server/config.ts';
import { startPagelife, type RunningServer } from '../../server/main.ts';
import { NfsTestClient } from '../support/nfs-client.ts';
import { testLog } from '../support/logger.ts';

let dir: string;
let server: RunningServer;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pagelife-page-names-'));
  await writeFile(path.join(dir, 'export-file.bin'), Buffer.alloc(3 * 4096, 7));
  server = await startPagelife(
    parseConfig({ export: dir, varDir: path.join(dir, '.var'), nfsPort: 0, mountPort: 0, httpPort: 0, portmap: 'off', host: '127.0.0.1', logLevel: 'silent' }, 'test'),
    testLog,
  );
});

afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

it('names the file of a cached page by its path in the export', async () => {
  const c = await NfsTestClient.connect({ nfsPort: server.ports.nfs, mountPort: server.ports.mount });
  try {
    const fh = await c.lookup('export-file.bin');
    await c.read(fh, 0, 3 * 4096);
  } finally {
    await c.close();
  }
  const frame = server.pageCache.frames.find((f) => f.file !== null)!;
  const res = await fetch(`http://127.0.0.1:${server.ports.http}/api/pages/${frame.pfn}`);
  const detail = (await res.json()) as { file: string; path: string | null };
  expect(detail.file).toBe(frame.file);
  expect(detail.path).toBe('/export/export-file.bin');
});
