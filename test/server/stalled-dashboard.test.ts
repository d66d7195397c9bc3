// Issue 7 acceptance 2 with the real server: a dashboard that stops reading its websocket while
// at least 10,000 real READs run neither slows the NFS side nor grows the server's memory past a bound.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import WebSocket from 'ws';
import { DEFAULT_EVENT_STREAM_LIMITS } from '../../server/http/event-stream.ts';
import { parseConfig } from '../../server/config.ts';
import { startPagelife, type RunningServer } from '../../server/main.ts';
import { samplePattern } from '../../server/default-export.ts';
import { testLog } from '../support/logger.ts';
import { NfsTestClient } from '../support/nfs-client.ts';

const READS = 10_000;
const READ_BYTES = 64 << 10;
const FILE_BYTES = 32 << 20;
const CONCURRENCY = 8;
/** Deltas sent to the stalled client without one dropped, after which the test gives up. */
const MAX_DELTAS_BEFORE_A_DROP = 300;
/** Bounded telemetry, one client's bounded queue and socket buffer, GC slack. */
const HEAP_GROWTH_LIMIT = 64 << 20;

let dir: string;
let server: RunningServer;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-stalled-'));
  await fs.mkdir(path.join(dir, 'export'));
  await fs.writeFile(path.join(dir, 'export', 'a.bin'), samplePattern(FILE_BYTES));
  server = await startPagelife(parseConfig({ varDir: dir, nfsPort: 0, mountPort: 0, httpPort: 0, portmap: 'off', host: '127.0.0.1', pageCache: { pages: 8192 } }, 'test'), testLog);
});
afterAll(async () => {
  await server?.close();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

async function metrics(): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${server.ports.http}/metrics`)).text();
  const out = new Map<string, number>();
  for (const family of parsePrometheusTextFormat(text)) {
    const m = family.metrics[0] as { value?: string } | undefined;
    if (m?.value !== undefined) out.set(family.name, Number(m.value));
  }
  return out;
}

describe('a stalled dashboard during 10,000 READs', () => {
  it('keeps its queue bounded and the heap within a bound; every READ is answered correctly', async () => {
    let socket!: net.Socket;
    const ws = new WebSocket(`ws://127.0.0.1:${server.ports.http}/api/events`, {
      createConnection: (opts: unknown) => (socket = net.connect(opts as net.NetConnectOpts)),
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('message', () => resolve());
      ws.once('error', reject);
    });
    socket.pause();

    v8.setFlagsFromString('--expose_gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    const want = samplePattern(FILE_BYTES);
    const clients = await Promise.all(Array.from({ length: CONCURRENCY }, () => NfsTestClient.connect({ nfsPort: server.ports.nfs, mountPort: server.ports.mount })));
    let maxQueued = 0;
    let bad = 0;
    let reads = 0;
    let dropped = 0;
    let deltas = 0;
    // At least READS; past them, on until the stall has cost the stalled client deltas. Deltas come
    // with time, not per READ, so the bound is on deltas made (a stall fills the socket buffers in
    // ~50 here), not on READs: a faster server runs more READs before the first drop.
    const more = () => reads < READS || (dropped === 0 && deltas < MAX_DELTAS_BEFORE_A_DROP);
    await Promise.all(
      clients.map(async (c) => {
        const fh = await c.lookup('a.bin');
        while (more()) {
          const i = reads++;
          const off = ((i * 7919) % (FILE_BYTES / READ_BYTES)) * READ_BYTES;
          const { data } = await c.read(fh, off, READ_BYTES);
          if (!data.equals(want.subarray(off, off + READ_BYTES))) bad++;
          if (i % 1000 === 0) {
            const m = await metrics();
            maxQueued = Math.max(maxQueued, m.get('pagelife_dashboard_max_queued_deltas') ?? 0);
            dropped = m.get('pagelife_dashboard_deltas_dropped_total') ?? 0;
            deltas = m.get('pagelife_dashboard_deltas_total') ?? 0;
          }
        }
      }),
    );
    for (const c of clients) await c.close();
    gc();
    const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
    const m = await metrics();
    ws.terminate();

    expect(bad).toBe(0);
    expect(m.get('pagelife_dashboard_deltas_total')).toBeGreaterThan(0);
    // The stall was real: the stalled client's kernel buffers filled and deltas were dropped for it.
    expect(m.get('pagelife_dashboard_deltas_dropped_total')).toBeGreaterThan(0);
    expect(maxQueued).toBeLessThanOrEqual(DEFAULT_EVENT_STREAM_LIMITS.maxQueuedBatches);
    expect(m.get('pagelife_dashboard_max_queued_deltas')).toBeLessThanOrEqual(DEFAULT_EVENT_STREAM_LIMITS.maxQueuedBatches);
    expect(heapGrowth).toBeLessThan(HEAP_GROWTH_LIMIT);
    console.log(`stalled dashboard: ${reads} READs, heap +${(heapGrowth / 2 ** 20).toFixed(1)} MiB, deltas ${m.get('pagelife_dashboard_deltas_total')}, dropped ${m.get('pagelife_dashboard_deltas_dropped_total')}, max queued ${maxQueued}`);
  });
});
