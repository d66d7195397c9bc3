// configureTiering: V8 marks a function for optimisation after the budget set here, not its own.
// A fresh process sets the budget, runs one small function a few hundred times, and `--trace-opt`
// says whether V8 marked it: with a 1 KiB budget it must, with V8's own 66 KiB it must not yet.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const REPO = path.resolve(import.meta.dirname, '../..');

/** Whether V8 marked `hot` for optimisation after 300 calls in a process that set `budget`. */
async function marked(budget: number): Promise<boolean> {
  const script = `
    const { configureTiering } = await import('./server/jit.ts');
    configureTiering(${budget});
    function hot(a) { let s = 0; for (let i = 0; i < a.length; i++) s += a[i]; return s; }
    const a = [1, 2, 3, 4];
    let t = 0;
    for (let i = 0; i < 300; i++) t += hot(a);
    console.log('total', t);`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--trace-opt', '--input-type=module', '-e', script], { cwd: REPO, timeout: 30_000 });
  expect(stdout).toContain('total 3000');
  return /marking .*<JSFunction hot /.test(stdout);
}

describe('configureTiering', () => {
  it('sets the bytecode V8 runs before it optimises a function; 0 leaves V8 its own', async () => {
    const [small, own] = await Promise.all([marked(1024), marked(0)]);
    expect(small).toBe(true);
    expect(own).toBe(false);
  });
});
