import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { MemoryReclaimer, reclaimExposition } from '../../server/memory-reclaim.ts';
import { testLog } from '../support/logger.ts';

const MiB = 2 ** 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Keeps the event loop busy for `ms` of wall time (utilization near 1 however slow the machine). */
function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

/** 64 MiB of 64 KiB buffers, as a closed connection's socket reads leave behind once dropped. */
function buffers(): Buffer[] {
  return Array.from({ length: 1024 }, (_, i) => Buffer.alloc(64 * 1024, i));
}

describe('MemoryReclaimer', () => {
  it('collects once the loop is quiet after growth, not while it is busy, and not again without new growth', async () => {
    const r = new MemoryReclaimer({ checkMs: 0, quietUtilization: 0.05, quietMs: 0, growthBytes: 32 * MiB }, testLog);
    try {
      // Held while allocated, so that no collection V8 runs on its own frees them before the check.
      const held = buffers();
      spin(300);
      expect(r.check()).toBe(false);
      expect(r.reclaims).toBe(0);
      held.length = 0;
      await sleep(300);
      const before = process.memoryUsage().arrayBuffers;
      expect(r.check()).toBe(true);
      expect(r.reclaims).toBe(1);
      // The 64 MiB of buffers were garbage: the collection freed them (their backing stores in a
      // background sweep after its pause).
      await expect.poll(() => before - process.memoryUsage().arrayBuffers, { timeout: 5000 }).toBeGreaterThanOrEqual(60 * MiB);
      await sleep(300);
      expect(r.check()).toBe(false);
      expect(reclaimExposition(r)).toContain('pagelife_memory_reclaims_total 1');
    } finally {
      r.close();
    }
  });

  it('collects when closed connections let go of growthBytes, which memoryUsage() cannot tell from live bytes', async () => {
    let released = 0;
    const r = new MemoryReclaimer({ checkMs: 0, quietUtilization: 0.05, quietMs: 0, growthBytes: 32 * MiB }, testLog, () => released);
    try {
      await sleep(300);
      expect(r.check()).toBe(false);
      released += 40 * MiB;
      await sleep(300);
      expect(r.check()).toBe(true);
      await sleep(300);
      expect(r.check()).toBe(false);
      expect(r.reclaims).toBe(1);
    } finally {
      r.close();
    }
  });

  it('waits while RPC calls come in, however idle the loop, and collects at the first check without any', async () => {
    let released = 0;
    let calls = 0;
    const r = new MemoryReclaimer({ checkMs: 0, quietUtilization: 0.05, quietMs: 0, growthBytes: 32 * MiB }, testLog, () => released, () => calls);
    try {
      released += 40 * MiB;
      for (let i = 0; i < 3; i++) {
        // A client pinging NULL: a call per check, the loop idle otherwise.
        calls++;
        await sleep(300);
        expect(r.check()).toBe(false);
      }
      await sleep(300);
      expect(r.check()).toBe(true);
      expect(r.reclaims).toBe(1);
    } finally {
      r.close();
    }
  });
});

describe('MemoryReclaimer quietMs', () => {
  it('collects only once every check over quietMs found the server quiet, counting again after a call', async () => {
    let released = 0;
    let calls = 0;
    const r = new MemoryReclaimer({ checkMs: 0, quietUtilization: 0.05, quietMs: 500, growthBytes: 32 * MiB }, testLog, () => released, () => calls);
    try {
      released += 40 * MiB;
      await sleep(300);
      expect(r.check()).toBe(false); // quiet for ~300 ms
      calls++;
      await sleep(300);
      expect(r.check()).toBe(false); // a call: quiet from here
      await sleep(300);
      expect(r.check()).toBe(false); // ~300 ms
      await sleep(300);
      expect(r.check()).toBe(true); // ~600 ms
      expect(r.reclaims).toBe(1);
    } finally {
      r.close();
    }
  });
});

describe('configureHeapGrowth', () => {
  const REPO = path.resolve(import.meta.dirname, '../..');
  /** V8's old-generation limit factors after full collections, in a fresh process that set `percent`. */
  async function factors(percent: number): Promise<string[]> {
    const script = `
      const { configureHeapGrowth } = await import('./server/memory-reclaim.ts');
      configureHeapGrowth(${percent});
      globalThis.kept = Array.from({ length: 200000 }, (_, i) => ({ i }));
      gc();
      await new Promise((r) => setTimeout(r, 200));
      gc();`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--expose-gc', '--trace-gc-verbose', '--input-type=module', '-e', script], { cwd: REPO, timeout: 30_000 });
    return [...stdout.matchAll(/\[HeapController\] Limit: .*\(([\d.]+)\)/g)].map((m) => m[1]!);
  }

  it('fixes the factor V8 grows the old generation by after every full collection', async () => {
    const [doubled, half] = await Promise.all([factors(100), factors(50)]);
    expect(doubled.length).toBeGreaterThanOrEqual(2);
    expect(new Set(doubled)).toEqual(new Set(['2.0']));
    expect(half.length).toBeGreaterThanOrEqual(2);
    expect(new Set(half)).toEqual(new Set(['1.5']));
  });
});
