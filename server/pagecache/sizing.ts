/**
 * The page cache's default size, from the machine's memory. Linux lets its page cache grow into all
 * free memory and shrinks it under pressure; a preallocated pool cannot shrink, so a server sharing
 * the machine takes a fixed share of it, within bounds: never less than the old fixed 64 MiB, and no
 * more than 512 MiB (each frame also costs ~0.2 KiB of heap, and the dashboard's grid a cell).
 */
import { totalmem } from 'node:os';
import { PAGE_SIZE } from '../../netstack/page.ts';

/** The share of the machine's memory the default page cache takes. */
export const CACHE_MEMORY_SHARE = 1 / 16;
/** Bounds of the default, in 4 KiB pages (64 MiB and 512 MiB). */
export const CACHE_MIN_PAGES = 16_384;
export const CACHE_MAX_PAGES = 131_072;

/** The memory this process may use: the machine's, or its cgroup's limit when that is lower. */
export function machineMemory(): number {
  const total = totalmem();
  const limit = process.constrainedMemory?.() ?? 0;
  return limit > 0 && limit < total ? limit : total;
}

/** Frames of the default page cache for a machine with `memory` bytes. */
export function defaultCachePages(memory = machineMemory()): number {
  return Math.min(CACHE_MAX_PAGES, Math.max(CACHE_MIN_PAGES, Math.floor((memory * CACHE_MEMORY_SHARE) / PAGE_SIZE)));
}
