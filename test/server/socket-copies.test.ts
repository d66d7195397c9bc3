// The socket edge's last resort, seen from /metrics: a client that stops reading its socket while
// READ replies pile up past net.socketOrphanBytes gets the rest as copies (its pages let go at once),
// `pagelife_reply_socket_copies_total` counts them, and every byte still arrives right once it reads.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { authSys, encodeCallHeader, recordMark } from '../../rpc/index.ts';
import { parseConfig } from '../../server/config.ts';
import { samplePattern } from '../../server/default-export.ts';
import { startPagelife, type RunningServer } from '../../server/main.ts';
import { NFSPROC3 } from '../../server/nfs3/constants.ts';
import { XdrWriter } from '../../xdr/writer.ts';
import { testLog } from '../support/logger.ts';
import { NfsTestClient, NFS_PROG, nfsArgs } from '../support/nfs-client.ts';
import { waitFor } from '../support/wait.ts';

const FILE_BYTES = 4 << 20;
const READ_BYTES = 256 << 10;
const ORPHAN_BYTES = 64 << 10;
const A = samplePattern(FILE_BYTES);

let dir: string;
let server: RunningServer;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-socket-copies-'));
  await fs.mkdir(path.join(dir, 'export'));
  await fs.writeFile(path.join(dir, 'export', 'a.bin'), A);
  server = await startPagelife(
    parseConfig({ varDir: dir, nfsPort: 0, mountPort: 0, httpPort: 0, portmap: 'off', host: '127.0.0.1', net: { socketOrphanBytes: ORPHAN_BYTES } }, 'test'),
    testLog,
  );
});
afterAll(async () => {
  await server?.close();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

function socketCopies(s: RunningServer): number {
  const fam = parsePrometheusTextFormat(s.telemetry.prometheus()).find((f) => f.name === 'pagelife_reply_socket_copies_total');
  if (!fam) throw new Error('pagelife_reply_socket_copies_total missing from /metrics');
  return Number((fam.metrics[0] as { value: string }).value);
}

describe('copies at the socket edge', () => {
  it('are counted in /metrics, and a late reader still gets every byte right', async () => {
    const s = server;
    const nfs = await NfsTestClient.connect({ nfsPort: s.ports.nfs, mountPort: s.ports.mount });
    const fh = await nfs.lookup('a.bin');
    await nfs.close();
    expect(socketCopies(s)).toBe(0);

    const calls = FILE_BYTES / READ_BYTES;
    const c = net.connect({ port: s.ports.nfs, host: '127.0.0.1' });
    c.pause();
    await new Promise<void>((resolve) => c.once('connect', resolve));
    c.write(
      Buffer.concat(
        Array.from({ length: calls }, (_, i) => {
          const body = Buffer.concat([...encodeCallHeader(new XdrWriter(), { xid: i + 1, prog: NFS_PROG, vers: 3, proc: NFSPROC3.READ, cred: authSys() }).toChunks(), nfsArgs.read(fh, i * READ_BYTES, READ_BYTES).toBuffer()]);
          return Buffer.concat([recordMark(body.length), body]);
        }),
      ),
    );
    await waitFor(() => socketCopies(s) > 0, 'a copy at the socket edge');

    // Read every reply: a record mark, then the record, whose last READ_BYTES are the data.
    const got: Buffer[] = [];
    c.on('data', (d: Buffer) => got.push(d));
    c.resume();
    let stream = Buffer.alloc(0);
    const replies: Buffer[] = [];
    await waitFor(() => {
      stream = Buffer.concat([stream, ...got.splice(0)]);
      while (stream.length >= 4) {
        const len = stream.readUInt32BE(0) & 0x7fff_ffff;
        if (stream.length < 4 + len) break;
        replies.push(stream.subarray(4, 4 + len));
        stream = stream.subarray(4 + len);
      }
      return replies.length === calls;
    }, 'every reply');
    c.destroy();
    // Calls run side by side, so replies come in the order they finished: matched by xid.
    expect(replies.map((r) => r.readUInt32BE(0)).sort((x, y) => x - y)).toEqual(Array.from({ length: calls }, (_, i) => i + 1));
    for (const r of replies) {
      const i = r.readUInt32BE(0) - 1;
      expect(r.subarray(r.length - READ_BYTES).equals(A.subarray(i * READ_BYTES, (i + 1) * READ_BYTES))).toBe(true);
    }
    await waitFor(() => s.pageCache.pinned === 0, 'every pin to return');
  });
});
