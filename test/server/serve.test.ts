// The assembled server over real sockets: MOUNT, NFS over TCP and UDP, through `startPagelife`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { XdrWriter } from '../../xdr/writer.ts';
import { NFS3_RESULTS } from '../../server/nfs3/results.ts';
import { RpcClient, authSys } from '../../rpc/index.ts';
import { parseConfig } from '../../server/config.ts';
import { startPagelife, type RunningServer } from '../../server/main.ts';
import { samplePattern, SAMPLE_BIG_BYTES } from '../../server/default-export.ts';
import { testLog } from '../support/logger.ts';

let varDir: string;
let server: RunningServer;

beforeAll(async () => {
  varDir = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-serve-'));
  const config = parseConfig({ varDir, nfsPort: 0, mountPort: 0, httpPort: 0, portmap: 'off', host: '127.0.0.1', pageCache: { pages: 512 } }, 'test');
  server = await startPagelife(config, testLog);
});
afterAll(async () => {
  await server?.close();
  if (varDir) await fs.rm(varDir, { recursive: true, force: true });
});

async function rootFh(): Promise<Buffer> {
  const m = await RpcClient.connect({ host: '127.0.0.1', port: server.ports.mount, transport: 'udp' });
  const r = await m.call(100005, 3, 1, new XdrWriter().string('/export'), { cred: authSys() });
  await m.close();
  expect(r.uint32()).toBe(0);
  return r.opaque(64);
}

describe('pagelife serve (embedded default export)', () => {
  it('creates the default export and reads big.bin over TCP and UDP through MOUNT, LOOKUP and READ', async () => {
    const fh = await rootFh();
    const want = samplePattern(SAMPLE_BIG_BYTES);
    for (const transport of ['tcp', 'udp'] as const) {
      const c = await RpcClient.connect({ host: '127.0.0.1', port: server.ports.nfs, transport });
      const l = await c.call(100003, 3, 3, new XdrWriter().opaque(fh).string('big.bin'), { cred: authSys() });
      expect(l.uint32()).toBe(0);
      const file = NFS3_RESULTS.LOOKUP.resok.decode(l).object;
      const count = transport === 'tcp' ? 1 << 20 : 32 << 10;
      for (const offset of [0, 4096 * 7 + 12, SAMPLE_BIG_BYTES - 100]) {
        const r = await c.call(100003, 3, 6, new XdrWriter().opaque(file).uint64(offset).uint32(count), { cred: authSys() });
        expect(r.uint32()).toBe(0);
        const { count: n, eof, data: parts } = NFS3_RESULTS.READ.resok.decode(r);
        const data = Buffer.concat(parts);
        expect(n).toBe(Math.min(count, SAMPLE_BIG_BYTES - offset));
        expect(eof).toBe(offset + n === SAMPLE_BIG_BYTES);
        expect(data.equals(want.subarray(offset, offset + n))).toBe(true);
      }
      await c.close();
    }
    // Every READ's pages were released once its reply had been written.
    await new Promise((r) => setTimeout(r, 50));
    expect(server.pageCache.pinned).toBe(0);
  });
});
