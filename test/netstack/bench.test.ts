import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('bench dispatcher', () => {
  it('an unknown benchmark prints usage and exits 2', async () => {
    const err = (await run('node', ['bin/bench.js', 'no-such-bench']).catch((e: unknown) => e)) as { code: number; stderr: string };
    expect(err.code).toBe(2);
    expect(err.stderr).toMatch(/usage: npm run bench <name>.*\n.*netstack/);
  });

  it('netstack prints machine-readable pps lines for both variants and their ratio', async () => {
    const { stdout } = await run('node', ['bin/bench.js', 'netstack', '--packets', '2048', '--rounds', '1']);
    const values = Object.fromEntries(
      stdout
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => l.split(' ') as [string, string]),
    );
    for (const key of ['pps_with_destructors', 'pps_without_destructors', 'ratio', 'skb_pps_with_destructors', 'skb_pps_without_destructors', 'skb_ratio']) {
      expect(Number(values[key]), key).toBeGreaterThan(0);
    }
  });
});
