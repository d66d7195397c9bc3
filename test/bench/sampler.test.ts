// `bench sampler` end to end: the probe runs under V8's sampler and (where perf may sample) under
// perf, and each line gives a share of the loop's time inside fstatSync that is a fraction.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { perfCanSample } from '../../bench/lib/perf-budget.ts';

const run = promisify(execFile);
const perfWorks = perfCanSample();

describe('bench sampler', () => {
  it("prints the clock's, V8's and (with perf) perf's share of the time in fstat", async () => {
    const { stdout } = await run('node', ['bin/bench.js', 'sampler', '--seconds', '1'], { timeout: 60_000 });
    const shares = new Map(
      stdout
        .split('\n')
        .filter((l) => l.startsWith('sampler '))
        .map((l) => {
          const f = l.split(' ');
          return [f[1]!, Number(f[f.indexOf('fstat_share') + 1])] as const;
        }),
    );
    expect([...shares.keys()]).toEqual(perfWorks ? ['clock', 'v8', 'perf'] : ['clock', 'v8']);
    for (const [who, share] of shares) {
      expect(share, who).toBeGreaterThan(0);
      expect(share, who).toBeLessThan(1);
    }
  }, 90_000);
});
