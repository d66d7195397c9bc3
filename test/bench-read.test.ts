// `bench read` end to end on a small file: its machine-readable lines, and nothing left behind.
// Needs libnfs-utils (nfs-cat) and ../shared/bench/nfs-read-bench; skipped where they are absent.
// Ganesha is left out (--skip-ganesha): it needs root and rpcbind, which unit suites do not assume.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../server/paths.ts';

const run = promisify(execFile);
const tool = process.env.PAGELIFE_NFS_READ_BENCH ?? path.resolve(REPO_ROOT, '../shared/bench/nfs-read-bench');
const haveClient = existsSync(tool) && spawnSync('sh', ['-c', 'command -v nfs-cat'], { stdio: 'ignore' }).status === 0;
const benchDirs = (): string[] => readdirSync(tmpdir()).filter((f) => f.startsWith('pagelife-bench-read-'));

describe.skipIf(!haveClient)('bench read', () => {
  it('prints MiB/s per reply mode, the ratios, the pin-duration distribution, and removes its temp dir', async () => {
    const before = new Set(benchDirs());
    const { stdout } = await run('node', ['bin/bench.js', 'read', '--size', '4', '--rounds', '2', '--runs', '1', '--skip-ganesha'], { cwd: REPO_ROOT, timeout: 120_000 });
    const lines = stdout.split('\n').filter((l) => l && !l.startsWith('#'));
    const value = (prefix: string): number => {
      const l = lines.find((x) => x.startsWith(`${prefix} `));
      expect(l, prefix).toBeDefined();
      return Number(l!.slice(prefix.length + 1));
    };
    for (const mode of ['destructor', 'legacy', 'copy']) expect(value(`read_mib_s ${mode}`), mode).toBeGreaterThan(0);
    expect(value('ratio destructor/copy')).toBeGreaterThan(0);
    expect(value('ratio destructor/legacy')).toBeGreaterThan(0);
    expect(lines.some((l) => l.startsWith('read_mib_s ganesha') || l.startsWith('ratio destructor/ganesha'))).toBe(false);
    expect(stdout).toMatch(/^# ganesha: skipped \(--skip-ganesha\)$/m);
    // 4 MiB in 1 MiB READs, two invocations of nfs-read-bench of two reads each (one uncounted).
    expect(value('pin_ms count')).toBeGreaterThanOrEqual(16);
    expect(value('pin_ms p50')).toBeGreaterThan(0);
    const buckets = lines.filter((l) => l.startsWith('pin_ms_bucket '));
    expect(buckets.at(-1)).toMatch(/^pin_ms_bucket \+Inf \d+$/);
    expect(buckets.reduce((n, l) => n + Number(l.split(' ')[2]), 0)).toBe(value('pin_ms count'));
    expect(benchDirs().filter((d) => !before.has(d))).toEqual([]);
  });

  it('refuses an unknown argument', async () => {
    const err = (await run('node', ['bin/bench.js', 'read', '--bogus'], { cwd: REPO_ROOT }).catch((e: unknown) => e)) as { code: number; stderr: string };
    expect(err.code).not.toBe(0);
    expect(err.stderr).toMatch(/unknown argument --bogus/);
  });
});
