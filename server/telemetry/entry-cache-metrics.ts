import type { Config } from '../config.ts';
import { Exposition } from './exposition.ts';

/**
 * /metrics for the listing entries kept between READDIR(PLUS) calls (`entryCache`): the limit
 * beside its use, the directories watched, and those inotify refused (their listings stat every
 * entry: fs.inotify.max_user_watches may be too low).
 */
export function entryCacheExposition(limits: Config['entryCache'], s: { entries: number; directories: number; unwatchable: number; runBytes: number }): string {
  return new Exposition()
    .gauge('pagelife_entry_cache_entries', 'Directory entries kept between listings (config entryCache.maxEntries bounds them).', [{ value: s.entries }])
    .gauge('pagelife_entry_cache_max_entries', 'Configured entryCache.maxEntries.', [{ value: limits.maxEntries }])
    .gauge('pagelife_entry_cache_directories', 'Directories with kept entries, each watched with inotify.', [{ value: s.directories }])
    .gauge('pagelife_entry_cache_run_bytes', 'Bytes of READDIRPLUS pages made of kept entries (config entryCache.maxRunBytes bounds them).', [{ value: s.runBytes }])
    .counter('pagelife_entry_cache_unwatchable_total', 'Directories whose entries could not be kept because inotify refused a watch.', [{ value: s.unwatchable }])
    .text();
}
