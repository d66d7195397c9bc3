// Issue 15: page fills reach the dashboard's timeline — a real `pagelife` (startPagelife), a real
// websocket on /api/events, real READs over TCP: one that misses the cache and one that does not.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../server/config.ts';
import { samplePattern } from '../../server/default-export.ts';
import { startPagelife, type RunningServer } from '../../server/main.ts';
import { PAGE_SIZE } from '../../server/pagecache/page-cache.ts';
import type { LifetimeJson } from '../../server/telemetry/lifetimes.ts';
import type { TelemetryDelta, TelemetrySnapshot } from '../../server/telemetry/telemetry.ts';
import { testLog } from '../support/logger.ts';
import { NfsTestClient } from '../support/nfs-client.ts';

const PAGES = 8;
/** How long the stream may take to deliver what happened (it batches every ~100 ms). */
const SETTLE_MS = 10_000;

type Message = { type: 'snapshot'; state: TelemetrySnapshot } | { type: 'delta'; delta: TelemetryDelta };

let dir: string;
let server: RunningServer;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-fills-'));
  await fs.mkdir(path.join(dir, 'export'));
  await fs.writeFile(path.join(dir, 'export', 'a.bin'), samplePattern(PAGES * PAGE_SIZE));
  server = await startPagelife(parseConfig({ varDir: dir, nfsPort: 0, mountPort: 0, httpPort: 0, portmap: 'off', host: '127.0.0.1', pageCache: { pages: 256 } }, 'test'), testLog);
});
afterAll(async () => {
  await server?.close();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('the dashboard stream', () => {
  it('carries the page fills of a READ that missed the cache on its lifetime, and none for a READ of cached pages', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.ports.http}/api/events`);
    const seen = new Map<number, LifetimeJson>();
    ws.on('message', (data: Buffer) => {
      const m = JSON.parse(data.toString('utf8')) as Message;
      for (const l of m.type === 'snapshot' ? m.state.lifetimes : m.delta.lifetimes) seen.set(l.destructor, l);
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('message', () => resolve());
      ws.once('error', reject);
    });
    const nfs = await NfsTestClient.connect({ nfsPort: server.ports.nfs, mountPort: server.ports.mount });
    try {
      const fh = await nfs.lookup('a.bin');
      const want = samplePattern(PAGES * PAGE_SIZE);
      /** Reads the whole file; returns its lifetime once the stream has delivered it released. */
      const readAndSee = async (): Promise<LifetimeJson> => {
        const before = new Set(seen.keys());
        const { data } = await nfs.read(fh, 0, PAGES * PAGE_SIZE);
        expect(data.equals(want)).toBe(true);
        let l: LifetimeJson | undefined;
        await expect
          .poll(() => (l = [...seen.values()].find((x) => !before.has(x.destructor) && x.releasedAt !== null)), { timeout: SETTLE_MS, interval: 20 })
          .toBeDefined();
        return l!;
      };
      const missed = await readAndSee();
      expect(missed.counts.fill).toBe(PAGES);
      const fills = missed.marks.filter((m) => m.kind === 'fill');
      expect(fills.length).toBeGreaterThan(0);
      for (const m of fills) expect(m.t).toBeLessThanOrEqual(missed.pinnedAt);
      const cached = await readAndSee();
      expect(cached.counts.fill).toBeUndefined();
      expect(cached.marks.some((m) => m.kind === 'fill')).toBe(false);
    } finally {
      await nfs.close();
      ws.terminate();
    }
  });
});
