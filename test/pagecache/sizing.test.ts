import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../server/config.ts';
import { CACHE_MAX_PAGES, CACHE_MIN_PAGES, defaultCachePages, machineMemory } from '../../server/pagecache/sizing.ts';

const GiB = 2 ** 30;

describe('default page cache size', () => {
  it('is a sixteenth of memory, never below 64 MiB nor above 512 MiB', () => {
    expect(defaultCachePages(4 * GiB)).toBe(65_536); // 256 MiB
    expect(defaultCachePages(512 * 2 ** 20)).toBe(CACHE_MIN_PAGES);
    expect(defaultCachePages(64 * GiB)).toBe(CACHE_MAX_PAGES);
    expect(CACHE_MIN_PAGES * 4096).toBe(64 * 2 ** 20);
    expect(CACHE_MAX_PAGES * 4096).toBe(512 * 2 ** 20);
  });

  it('is what a config without pages gets; a given size wins', () => {
    expect(machineMemory()).toBeGreaterThan(0);
    expect(parseConfig({}, 'test').pageCache.pages).toBe(defaultCachePages());
    expect(parseConfig({ pageCache: { pages: 2000 } }, 'test').pageCache.pages).toBe(2000);
  });
});
