// `pagelife replay` as users run it: verdict lines, exit codes, files written, JSON.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../server/paths.ts';
import { replayCommand } from '../../server/replay/command.ts';
import { FixtureError, ReplayUsageError } from '../../server/replay/errors.ts';

const OVERWRITE = path.join(REPO_ROOT, 'fixtures', 'lost-segment-overwrite.json');
let dir = '';

async function cli(args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await replayCommand(args, (s) => (out += s));
  return { code, out };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pagelife-replay-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('pagelife replay', () => {
  it('prints a verdict per mode and exits 0 when every expectation holds', async () => {
    const r = await cli([OVERWRITE, '--all-modes']);
    expect(r.code).toBe(0);
    for (const m of ['destructor', 'legacy', 'copy']) expect(r.out).toMatch(new RegExp(`PASS lost-segment-overwrite \\[${m}\\]`));
    expect(r.out).toContain('3 of 3 runs passed');
  });

  it('exits 1 and names the failed expectation when one does not hold', async () => {
    const f = JSON.parse(await readFile(OVERWRITE, 'utf8'));
    f.expect.legacy.replies.r1.data = 'intact';
    const bad = path.join(dir, 'wrong.json');
    await writeFile(bad, JSON.stringify(f));
    const r = await cli([bad, '--mode', 'legacy']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/FAIL lost-segment-overwrite \[legacy\]/);
    expect(r.out).toMatch(/replies\.r1\.data: reply 1 is torn \(bytes \d+\.\.\d+ differ\)/);
  });

  it('writes the pcap and trace, step log with -v, and JSON with --json', async () => {
    const pcap = path.join(dir, 'wire.pcapng');
    const trace = path.join(dir, 'pages.json');
    const r = await cli([OVERWRITE, '--mode', 'legacy', '--pcap', pcap, '--trace', trace, '-v']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^\[1\] 0 ms: c1 READ \(r1\)$/m);
    expect(r.out).toMatch(/stale-retransmit conn=1/);
    expect((await readFile(pcap)).readUInt32LE(0)).toBe(0x0a0d0d0a);
    const t = JSON.parse(await readFile(trace, 'utf8'));
    expect(t.traceEvents.some((e: { name: string }) => e.name.startsWith('pinned xid'))).toBe(true);
    const j = await cli([OVERWRITE, '--mode', 'copy', '--json']);
    expect(JSON.parse(j.out)).toMatchObject([{ fixture: 'lost-segment-overwrite', mode: 'copy', pass: true, failures: [] }]);
  });

  it('refuses bad usage and bad fixtures before running anything', async () => {
    await expect(cli([])).rejects.toThrow(ReplayUsageError);
    await expect(cli([OVERWRITE, '--mode', 'fast'])).rejects.toThrow(ReplayUsageError);
    await expect(cli([OVERWRITE, '--mode', 'copy', '--all-modes'])).rejects.toThrow(ReplayUsageError);
    const bad = path.join(dir, 'bad.json');
    await writeFile(bad, JSON.stringify({ version: 1, name: 'x', description: '', steps: [{ do: 'call', client: 'c1', proc: 'READ', args: [{ fh: '/etc' }] }], expect: {} }));
    await expect(cli([bad])).rejects.toThrow(FixtureError);
  });
});
