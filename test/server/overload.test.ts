// Issue 13 acceptance 3 through the assembled server and real sockets: a client that never ACKs
// (ack loss 1 on its connection) and one that never reads its socket, together, cannot pin more
// than the pin budget or queue more than their reply limits, a third client keeps reading correct
// data, and every pin returns once they go.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { authSys, encodeCallHeader, recordMark } from '../../rpc/index.ts';
import { parseConfig } from '../../server/config.ts';
import { samplePattern } from '../../server/default-export.ts';
import { startPagelife, type RunningServer } from '../../server/main.ts';
import { NFSPROC3 } from '../../server/nfs3/constants.ts';
import { XdrWriter } from '../../xdr/writer.ts';
import { testLog } from '../support/logger.ts';
import { NfsTestClient, NFS_PROG, nfsArgs } from '../support/nfs-client.ts';
import { waitFor } from '../support/wait.ts';

const FILE_BYTES = 8 << 20;
const READ_BYTES = 256 << 10;
const PAGES = 1024;
const SHARE = 0.25;
const QUEUE_LIMIT = 2 << 20;
const A = samplePattern(FILE_BYTES);

let dir: string;
let server: RunningServer;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-overload-'));
  await fs.mkdir(path.join(dir, 'export'));
  await fs.writeFile(path.join(dir, 'export', 'a.bin'), A);
  server = await startPagelife(
    parseConfig(
      {
        varDir: dir,
        nfsPort: 0,
        mountPort: 0,
        httpPort: 0,
        portmap: 'off',
        host: '127.0.0.1',
        pageCache: { pages: PAGES },
        pinBudget: { maxPinnedShare: SHARE, maxPinAgeMs: 60_000, checkIntervalMs: 20 },
        limits: { maxQueuedReplyBytes: QUEUE_LIMIT, replyReserveBytes: READ_BYTES + 4096 },
      },
      'test',
    ),
    testLog,
  );
});
afterAll(async () => {
  await server?.close();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

function readCall(xid: number, fh: Buffer, offset: number): Buffer {
  const body = Buffer.concat([...encodeCallHeader(new XdrWriter(), { xid, prog: NFS_PROG, vers: 3, proc: NFSPROC3.READ, cred: authSys() }).toChunks(), nfsArgs.read(fh, offset, READ_BYTES).toBuffer()]);
  return Buffer.concat([recordMark(body.length), body]);
}

describe('a never-ACKing client and a stalled reader together', () => {
  it('pin no more than the budget, queue no more than their limits, and give every pin back when they go', async () => {
    const s = server;
    const mk = () => NfsTestClient.connect({ nfsPort: s.ports.nfs, mountPort: s.ports.mount });
    const silent = await mk();
    const reader = await mk();
    const fh = await reader.lookup('a.bin');
    const conn = s.replies.connections().find((c) => c.remote.endsWith(`:${silent.rpc.localPort}`))!;
    s.replies.netPair(conn.id)!.setFaults({ ackLoss: 1 });
    const stuck = Array.from({ length: 16 }, (_, i) => silent.read(fh, (i * READ_BYTES) % FILE_BYTES, READ_BYTES).catch(() => null));

    const stalled = net.connect({ port: s.ports.nfs, host: '127.0.0.1' });
    stalled.on('error', () => undefined);
    stalled.pause();
    await new Promise<void>((resolve) => stalled.once('connect', resolve));
    const calls = 400;
    stalled.write(Buffer.concat(Array.from({ length: calls }, (_, i) => readCall(i + 1, fh, (i * READ_BYTES) % FILE_BYTES))));
    await waitFor(() => s.replies.connections().length >= 3, 'the stalled connection');

    const limit = Math.floor(SHARE * PAGES);
    let maxPinned = 0;
    let maxQueued = 0;
    let bad = 0;
    const sample = setInterval(() => {
      // Pages the network holds: READs still executing pin theirs for the page cache's own I/O.
      maxPinned = Math.max(maxPinned, s.pageCache.pinned - streams(s).inflight * (READ_BYTES / 4096));
      maxQueued = Math.max(maxQueued, streams(s).maxConnQueuedReplyBytes);
    }, 5);
    try {
      for (let round = 0; round < 2; round++) {
        for (let off = 0; off < FILE_BYTES; off += READ_BYTES) {
          const { data } = await reader.read(fh, off, READ_BYTES);
          if (!data.equals(A.subarray(off, off + READ_BYTES))) bad++;
        }
      }
    } finally {
      clearInterval(sample);
    }
    expect(bad).toBe(0);
    // The budget is enforced as each reply goes out: at most one reply's pages past it, plus the
    // socket edge: a socket that does not drain holds up to net.socketOrphanBytes of views before
    // the reply path copies (the pin budget cannot reach bytes already handed to the socket).
    expect(maxPinned).toBeLessThanOrEqual(limit + READ_BYTES / 4096 + 1 + s.config.net.socketOrphanBytes / 4096);
    // The stalled reader stopped being read: it holds at most its queue limit plus one reserved reply.
    expect(maxQueued).toBeLessThanOrEqual(QUEUE_LIMIT + READ_BYTES + 8192);
    const st = streams(s);
    expect(st.pausedConnections).toBeGreaterThanOrEqual(1);

    stalled.destroy();
    await silent.close();
    await Promise.all(stuck);
    await waitFor(() => s.replies.inflightReplies() === 0 && s.pageCache.pinned === 0, 'every pin to return');
    await reader.close();
    await waitFor(() => streams(s).connections === 0 && streams(s).queuedReplyBytes === 0 && streams(s).bufferedBytes === 0, 'the budget to empty');
  });
});

/** The stream budget's figures (what GET /api/state reports under server.streams). */
function streams(s: RunningServer) {
  return s.streams.stats();
}

describe('READ over UDP', () => {
  it('asking for 1 MiB gets at most 32 KiB, one datagram (a larger reply did not fit an skb and crashed the server)', async () => {
    const c = await NfsTestClient.connect({ nfsPort: server.ports.nfs, mountPort: server.ports.mount, transport: 'udp' });
    try {
      const fh = await c.lookup('a.bin');
      const { data, eof } = await c.read(fh, 4096, 1 << 20);
      expect(data.length).toBe(32 * 1024);
      expect(eof).toBe(false);
      expect(data.equals(A.subarray(4096, 4096 + 32 * 1024))).toBe(true);
    } finally {
      await c.close();
    }
  });
});
