// Issue 15, rough edge 7: a session recorded live by `serve --record` (in one mode) replays in
// every mode, as `pagelife replay --all-modes` runs it.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../server/config.ts';
import { startPagelife } from '../../server/main.ts';
import { replayCommand } from '../../server/replay/command.ts';
import { loadFixture } from '../../server/replay/load.ts';
import { SessionRecorder } from '../../server/replay/recorder.ts';
import { testLog } from '../support/logger.ts';
import { NfsTestClient } from '../support/nfs-client.ts';

let dir = '';
afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('serve --record, then replay --all-modes', () => {
  it('writes expectations every mode can run: statuses everywhere, no stale retransmits but in legacy', async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-record-unit-'));
    await fs.mkdir(path.join(dir, 'export'));
    await fs.writeFile(path.join(dir, 'export', 'a.bin'), randomBytes(256 << 10));
    const config = parseConfig(
      { export: path.join(dir, 'export'), varDir: path.join(dir, 'var'), host: '127.0.0.1', nfsPort: 0, mountPort: 0, httpPort: 0, portmap: 'off', faults: { loss: 0.05, seed: 3 } },
      'test',
    );
    const server = await startPagelife(config, testLog);
    const file = path.join(dir, 'session.json');
    const recorder = new SessionRecorder(file);
    await recorder.start(server);
    const c = await NfsTestClient.connect({ nfsPort: server.ports.nfs, mountPort: server.ports.mount });
    const fh = await c.lookup('a.bin');
    for (let off = 0; off < 256 << 10; off += 64 << 10) await c.read(fh, off, 64 << 10);
    await c.close();
    await recorder.save();
    await server.close();

    const f = await loadFixture(file);
    expect(Object.keys(f.expect).sort()).toEqual(['copy', 'destructor', 'legacy']);
    expect(f.expect.destructor?.end?.drops).toBeGreaterThan(0);
    expect(f.expect.copy).toMatchObject({ end: { staleRetransmits: 0 } });
    let out = '';
    const code = await replayCommand([file, '--all-modes'], (s) => (out += s));
    expect(code, out).toBe(0);
    expect(out).toContain('3 of 3 runs passed');
  });
});
