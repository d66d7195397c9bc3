// Acceptance 1: every fixture of the library replays in every mode and meets its expectations;
// legacy shows the corruption its expectations announce, the other modes never do.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPLY_MODES } from '../../server/config.ts';
import { REPO_ROOT } from '../../server/paths.ts';
import { loadFixture } from '../../server/replay/load.ts';
import { replay } from '../../server/replay/runner.ts';
import type { Fixture, ModeExpect } from '../../server/replay/schema.ts';

export const FIXTURE_DIR = path.join(REPO_ROOT, 'fixtures');
const FILES = readdirSync(FIXTURE_DIR).filter((f) => f.endsWith('.json') && f !== 'schema.json');

/** Does the mode's expectation announce corruption: a torn READ, or stale retransmissions? */
function announcesCorruption(e: ModeExpect | undefined): boolean {
  if (!e) return false;
  const torn = Object.values(e.replies ?? {}).some((r) => r.data === 'torn');
  const stale = [e.end, ...Object.values(e.checkpoints ?? {})].some((c) => {
    const s = c?.staleRetransmits;
    return s !== undefined && (typeof s === 'number' ? s > 0 : (s.min ?? 0) > 0);
  });
  return torn || stale;
}

describe('the fixture library', () => {
  it('has the scenarios issue 6 lists, each with expectations for all three modes', async () => {
    expect(FILES.length).toBeGreaterThanOrEqual(11);
    for (const file of FILES) {
      const f: Fixture = await loadFixture(path.join(FIXTURE_DIR, file));
      expect(Object.keys(f.expect).sort(), file).toEqual([...REPLY_MODES].sort());
    }
  });
});

describe.each(FILES)('%s', (file) => {
  it.each(REPLY_MODES)('replays in %s mode and meets its expectations', async (mode) => {
    const f = await loadFixture(path.join(FIXTURE_DIR, file));
    const r = await replay(f, { mode });
    expect(r.failures, r.log.join('\n')).toEqual([]);
    const corrupt = r.torn.length > 0 || r.end.staleRetransmits > 0;
    if (mode === 'legacy') expect(corrupt).toBe(announcesCorruption(f.expect.legacy));
    else expect(corrupt, `${mode} must never deliver stale bytes`).toBe(false);
  });
});
