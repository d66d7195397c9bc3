// serve --record as a plain subscriber of the server's bus: calls with their handles turned back
// into paths, their statuses, fault changes and one-off holds made at run time — through a real
// server, real sockets and the fault API's own calls.
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../server/config.ts';
import { startPagelife, type RunningServer } from '../../server/main.ts';
import { loadFixture } from '../../server/replay/load.ts';
import { SessionRecorder } from '../../server/replay/recorder.ts';
import { testLog } from '../support/logger.ts';
import { NfsTestClient } from '../support/nfs-client.ts';

let server: RunningServer | null = null;
let client: NfsTestClient | null = null;
let dir = '';

afterEach(async () => {
  await client?.close();
  await server?.close();
  client = null;
  server = null;
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('SessionRecorder', () => {
  it('writes the calls, their statuses and the run-time fault changes of a live session', async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-recorder-'));
    await fs.mkdir(path.join(dir, 'export'));
    await fs.writeFile(path.join(dir, 'export', 'f.bin'), Buffer.alloc(8192, 7));
    server = await startPagelife(parseConfig({ varDir: dir, nfsPort: 0, mountPort: 0, httpPort: 0, portmap: 'off', host: '127.0.0.1' }, 'test'), testLog);
    const recorder = new SessionRecorder(path.join(dir, 'session.json'));
    await recorder.start(server);
    client = await NfsTestClient.connect({ nfsPort: server.ports.nfs, mountPort: server.ports.mount });
    const fh = await client.lookup('f.bin');
    server.replies.setFaults({ delay: 3, loss: 0.5 });
    server.replies.setFaults({ loss: 0 });
    expect(server.replies.oneOff({ holdNextMs: 20 })).toBe(true);
    expect((await client.read(fh, 0, 4096)).data.equals(Buffer.alloc(4096, 7))).toBe(true);
    await client.close();
    client = null;
    await recorder.save();

    const f = await loadFixture(path.join(dir, 'session.json'));
    const calls = f.steps.filter((s) => s.do === 'call');
    const read = calls.find((s) => s.proc === 'READ')!;
    expect(read.args[0]).toEqual({ fh: 'f.bin' });
    expect(f.steps.filter((s) => s.do === 'faults').map((s) => s.set)).toEqual([{ delay: 3 }]);
    expect(f.steps.filter((s) => s.do === 'hold').map((s) => s.ms)).toEqual([20]);
    const statuses = Object.values(f.expect.destructor!.replies ?? {}).map((r) => r.status);
    expect(statuses.length).toBe(calls.length);
    expect(statuses.every((s) => s === 'NFS3_OK' || s === 'MNT3_OK')).toBe(true);
  });
});
