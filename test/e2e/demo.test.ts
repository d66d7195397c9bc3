// Issue 15: `npm run demo` as a new user runs it — one command, no root, no guest, libnfs nfs-cat
// as the client, default network settings — shows blocks that never existed on disk in legacy mode
// and none with the fix or the copy baseline.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/server-process.ts';

describe('pagelife demo', () => {
  it('prints one line per mode: bad blocks in legacy only, the dashboard address, exit 0', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [path.join(REPO_ROOT, 'bin/pagelife.js'), 'demo', '--seconds', '6', '--http-port', '0'], { timeout: 300_000 });
    console.log(stdout);
    const lines = new Map([...stdout.matchAll(/^demo (\w+) bad_blocks (\d+) blocks_read (\d+)$/gm)].map((m) => [m[1], { bad: Number(m[2]), read: Number(m[3]) }]));
    expect([...lines.keys()]).toEqual(['destructor', 'legacy', 'copy']);
    for (const [mode, r] of lines) {
      expect(r.read, mode).toBeGreaterThanOrEqual(1024);
      if (mode !== 'legacy') expect(r.bad, mode).toBe(0);
    }
    expect(lines.get('legacy')!.bad).toBeGreaterThan(0);
    expect(stdout).toMatch(/^demo legacy: serving with 5 % loss; dashboard http:\/\/localhost:\d+\/$/m);
  });
});
