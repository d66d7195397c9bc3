// The fixture format at its edge: the published JSON Schema is the zod schema's, and a bad
// fixture is rejected with an error naming the step and the field.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { FixtureError } from '../../server/replay/errors.ts';
import { fixtureJsonSchema, SCHEMA_FILE } from '../../server/replay/json-schema.ts';
import { parseFixture } from '../../server/replay/load.ts';

const READ = { do: 'call', client: 'c1', label: 'r1', proc: 'READ', args: [{ fh: 'a.bin' }, { uint64: 0 }, { uint32: 4096 }] };
const base = (steps: unknown[], extra: Record<string, unknown> = {}) => ({ version: 1, name: 't', description: '', files: { 'a.bin': { fill: 'A', size: 4096 } }, steps, expect: {}, ...extra });

function rejection(input: unknown): FixtureError {
  try {
    parseFixture(input, 'bad.json');
  } catch (e) {
    if (e instanceof FixtureError) return e;
    throw e;
  }
  throw new Error('accepted');
}

describe('fixture schema', () => {
  it('fixtures/schema.json is generated from the zod schema (run npx tsx server/replay/json-schema.ts)', async () => {
    expect(await readFile(SCHEMA_FILE, 'utf8')).toBe(fixtureJsonSchema());
  });

  it('accepts a minimal fixture, leaving the mode open', () => {
    const f = parseFixture(base([READ, { do: 'settle' }]), 'ok.json');
    expect(f.config.replyMode).toBeUndefined();
    expect(f.steps[0]).toMatchObject({ do: 'call', program: 'nfs', transport: 'tcp' });
  });

  it.each([
    ['an unknown procedure', [{ ...READ, proc: 'FETCH' }], 'steps[0].proc (call FETCH)', /not a nfs procedure/],
    ['a step kind that does not exist', [READ, { do: 'explode' }], 'steps[1].do (explode)', /./],
    ['a negative drop', [READ, { do: 'drop', client: 'c1', segments: [0] }], 'steps[1].segments[0] (drop)', /too small|>/],
    ['a retransmission of an unknown call', [READ, { do: 'retransmit', client: 'c1', of: 'r9' }], 'steps[1].of (retransmit)', /no earlier call labelled r9/],
    ['a file handle outside the export', [{ ...READ, args: [{ fh: '../etc/passwd' }] }], 'steps[0].args[0].fh (call READ)', /inside the export/],
    ['an unknown field', [{ ...READ, colour: 'red' }], 'steps[0] (call READ)', /colour/],
    ['a wrong-typed item (the field it has, not the first kind of item)', [{ ...READ, args: [{ fh: 'a.bin' }, { uint64: 'zero' }, { uint32: 4096 }] }], 'steps[0].args[1].uint64 (call READ)', /expected number, received string/],
    ['a negative item', [{ ...READ, args: [{ fh: 'a.bin' }, { uint64: 0 }, { uint32: -1 }] }], 'steps[0].args[2].uint32 (call READ)', /too small|>=/],
    ['a range that ends before it starts', [{ do: 'drop-range', client: 'c1', from: 10, to: 5 }], 'steps[0].to (drop-range)', /past from/],
  ])('rejects %s, naming step and field', (_what, steps, where, why) => {
    const e = rejection(base(steps));
    expect(e.where).toBe(where);
    expect(e.why).toMatch(why);
    expect(e.message).toContain('bad.json');
  });

  it('rejects expectations about a call or check that does not exist', () => {
    const e = rejection(base([READ], { expect: { legacy: { replies: { r2: { data: 'torn' } } } } }));
    expect(e.where).toBe('expect.legacy.replies.r2');
  });

  it('rejects a version it does not know', () => {
    expect(rejection({ ...base([READ]), version: 2 }).where).toBe('version');
  });
});
