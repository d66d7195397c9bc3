// Issue 5 through the assembled server and real sockets (the guest version is test/e2e/reply-path).
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseConfig, REPLY_MODES, type ConfigInput } from '../../server/config.ts';
import { startPagelife, type RunningServer } from '../../server/main.ts';
import { samplePattern } from '../../server/default-export.ts';
import { testLog } from '../support/logger.ts';
import { NfsTestClient } from '../support/nfs-client.ts';
import { waitFor } from '../support/wait.ts';

const FILE_BYTES = 4 << 20;
const READ_BYTES = 256 << 10;
const A = samplePattern(FILE_BYTES);
const B = Buffer.alloc(FILE_BYTES, 0xbb);

let server: RunningServer | null = null;
let varDir = '';
const clients: NfsTestClient[] = [];

async function start(extra: ConfigInput): Promise<RunningServer> {
  varDir = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-reply-'));
  await fs.mkdir(path.join(varDir, 'export'));
  await fs.writeFile(path.join(varDir, 'export', 'a.bin'), A);
  await fs.writeFile(path.join(varDir, 'export', 'b.bin'), B);
  server = await startPagelife(parseConfig({ varDir, nfsPort: 0, mountPort: 0, httpPort: 0, portmap: 'off', host: '127.0.0.1', ...extra }, 'test'), testLog);
  return server;
}

async function client(s: RunningServer): Promise<NfsTestClient> {
  const c = await NfsTestClient.connect({ nfsPort: s.ports.nfs, mountPort: s.ports.mount });
  clients.push(c);
  return c;
}

/** Pages of `got` that are not the bytes of A at `offset`. */
function badPages(got: Buffer, offset: number): number {
  let bad = 0;
  for (let p = 0; p < got.length; p += 4096) if (!got.subarray(p, p + 4096).equals(A.subarray(offset + p, offset + p + 4096))) bad++;
  return bad;
}

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  if (server) {
    // Pins never leak: once connections have drained, no page is pinned and no reply is held.
    const s = server;
    await waitFor(() => s.replies.inflightReplies() === 0 && s.pageCache.pinned === 0, 'pins to drain');
    await s.close();
  }
  server = null;
  if (varDir) await fs.rm(varDir, { recursive: true, force: true });
});

describe.each(REPLY_MODES)('reply mode %s, lossy path, cache pressure from another file', (mode) => {
  it(mode === 'legacy' ? 'retransmissions carry foreign bytes and are counted stale' : 'every READ is correct and nothing is stale', async () => {
    const s = await start({ replyMode: mode, pageCache: { pages: 256 }, faults: { loss: 0.05, seed: 7 } });
    const reader = await client(s);
    const evictor = await client(s);
    const fa = await reader.lookup('a.bin');
    const fb = await evictor.lookup('b.bin');
    let stop = false;
    const pressure = (async () => {
      for (let off = 0; !stop; off = (off + 65536) % FILE_BYTES) await evictor.read(fb, off, 65536);
    })();
    let bad = 0;
    for (let round = 0; round < 4; round++) {
      for (let off = 0; off < FILE_BYTES; off += READ_BYTES) bad += badPages((await reader.read(fa, off, READ_BYTES)).data, off);
    }
    stop = true;
    await pressure;
    const retransmits = s.replies.connections().reduce((n, c) => n + c.retransmits, 0);
    expect(retransmits).toBeGreaterThan(0);
    if (mode === 'legacy') {
      expect(bad).toBeGreaterThan(0);
      expect(s.replies.staleRetransmits()).toBeGreaterThan(0);
    } else {
      expect(bad).toBe(0);
      expect(s.replies.staleRetransmits()).toBe(0);
    }
  });
});

describe('pin budget', () => {
  it('a connection that never gets ACKs cannot pin more than the budget; others keep reading', async () => {
    const s = await start({ pageCache: { pages: 512 }, pinBudget: { maxPinnedShare: 0.25, maxPinAgeMs: 60_000, checkIntervalMs: 20 } });
    const silent = await client(s);
    const other = await client(s);
    const conn = s.replies.connections().find((c) => c.remote.endsWith(`:${silent.rpc.localPort}`))!;
    s.replies.netPair(conn.id)!.setFaults({ ackLoss: 1 });
    const fa = await silent.lookup('a.bin');
    const fo = await other.lookup('a.bin');
    // Without ACKs its stream stalls after the first window: these replies stay queued, pinning
    // pages (6 x 64 pages: more than the budget, less than the cache, so no READ meets a full cache).
    let lent = 0;
    s.bus.on('reply-pin', (e) => (lent += e.conn === conn.id ? 1 : 0));
    const stuck = Array.from({ length: 6 }, (_, i) => silent.read(fa, i * READ_BYTES, READ_BYTES).catch(() => null));
    // Pages are pinned while a READ fills them, before the budget sees them lent: count from when
    // all six are lent, so the bound below is the budget's and not how many fills a loaded machine overlaps.
    await waitFor(() => lent === 6, 'the six stuck replies to be lent');
    let maxPinned = 0;
    for (let round = 0; round < 2; round++) {
      for (let off = 0; off < FILE_BYTES; off += READ_BYTES) {
        expect(badPages((await other.read(fo, off, READ_BYTES)).data, off)).toBe(0);
        maxPinned = Math.max(maxPinned, s.pageCache.pinned);
      }
    }
    // The budget is checked as each reply goes out: at most one reply's pages past it.
    expect(maxPinned).toBeLessThanOrEqual(128 + READ_BYTES / 4096 + 1);
    expect(s.replies.counters.budgetOrphanedFrags).toBeGreaterThan(0);
    await silent.close();
    await Promise.all(stuck);
  });

  it('a pin older than the maximum age is orphaned', async () => {
    const s = await start({ pageCache: { pages: 512 }, pinBudget: { maxPinnedShare: 1, maxPinAgeMs: 50, checkIntervalMs: 10 } });
    const c = await client(s);
    const conn = s.replies.connections().find((x) => x.remote.endsWith(`:${c.rpc.localPort}`))!;
    s.replies.netPair(conn.id)!.setFaults({ ackLoss: 1 });
    const fa = await c.lookup('a.bin');
    // Two pages: the reply fits the initial window (10 segments), so it arrives with every ACK lost.
    await c.read(fa, 0, 8192);
    expect(s.pageCache.pinned).toBe(2);
    await waitFor(() => s.pageCache.pinned === 0, 'the aged pin to be orphaned');
    expect(s.replies.counters.budgetOrphanedFrags).toBeGreaterThan(0);
  });
});

describe('UDP replies', () => {
  it('are one skb each whose destructor fires when the datagram leaves the device queue', async () => {
    const s = await start({ faults: { deviceHold: 150 } });
    const released: { heldMs: number; conn: number }[] = [];
    s.bus.on('reply-release', (e) => released.push({ heldMs: e.heldMs, conn: e.conn }));
    const c = await NfsTestClient.connect({ nfsPort: s.ports.nfs, mountPort: s.ports.mount, transport: 'udp' });
    clients.push(c);
    const fa = await c.lookup('a.bin');
    const { data } = await c.read(fa, 8192, 32768);
    expect(badPages(data, 8192)).toBe(0);
    // The reply could only arrive after it left the device queue, where its pages were let go.
    expect(released).toHaveLength(1);
    expect(released[0]!.heldMs).toBeGreaterThanOrEqual(150);
    const flow = s.replies.connections().find((x) => x.id === released[0]!.conn)!;
    expect(flow.transport).toBe('udp');
    expect(s.pageCache.pinned).toBe(0);
  });
});
