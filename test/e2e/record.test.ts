// Issue 6 acceptance 4: a live session — libnfs nfs-cat reading a file through `pagelife serve
// --record` under 5 % segment loss — is written as a fixture that replays to the same outcome:
// the same statuses, the same segments lost and retransmitted, the same destructor firings, the
// bytes the client read.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contentBytes } from '../../server/replay/content.ts';
import { loadFixture } from '../../server/replay/load.ts';
import { replay } from '../../server/replay/runner.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';

const run = promisify(execFile);
const FILE_BYTES = 1 << 20;
const LOSS = 0.05;
/** A seed whose 5 % draws lose segments of this session (the losses are scripted into the fixture). */
const SEED = 3;

let dir = '';
let server: ServerProcess | null = null;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-record-'));
  await fs.mkdir(path.join(dir, 'export'));
});

afterAll(async () => {
  await server?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('serve --record', () => {
  it('records an nfs-cat read under loss as a fixture that replays to the same outcome', async () => {
    const data = randomBytes(FILE_BYTES);
    await fs.writeFile(path.join(dir, 'export', 'mid.bin'), data);
    const fixture = path.join(dir, 'session.json');
    server = await startServer(['--export', path.join(dir, 'export'), '--var-dir', path.join(dir, 'var'), '--loss', String(LOSS), '--seed', String(SEED), '--record', fixture, '--log-level', 'warn']);
    const q = `version=3&nfsport=${server.ports.nfs}&mountport=${server.ports.mount}`;
    const cat = await run('nfs-cat', [`nfs://127.0.0.1/export/mid.bin?${q}`], { encoding: 'buffer', maxBuffer: 4 * FILE_BYTES });
    expect(Buffer.compare(cat.stdout, data)).toBe(0);
    await server.stop();
    server = null;

    const f = await loadFixture(fixture);
    expect(contentBytes(f.files['mid.bin']!).equals(data)).toBe(true);
    const recorded = f.expect.destructor!;
    expect(recorded.end?.drops).toBeGreaterThan(0);
    expect(f.steps.filter((s) => s.do === 'call' && s.proc === 'READ').length).toBeGreaterThan(0);

    const r = await replay(f, { mode: 'destructor' });
    expect(r.failures, r.log.join('\n')).toEqual([]);
    expect(r.torn).toEqual([]);
    expect(r.end.drops).toBe(recorded.end?.drops);
    // Retransmissions beyond the lost segments follow real timing (the fixture asks for at least one per drop).
    expect(recorded.end?.retransmits).toEqual({ min: recorded.end?.drops });
    expect(r.end.retransmits).toBeGreaterThanOrEqual(r.end.drops);
    expect(r.end.destructorsFired).toBe(recorded.end?.destructorsFired);
  });
});
