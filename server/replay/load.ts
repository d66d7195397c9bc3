/** Reads a fixture file and validates it: zod at the edge, errors that name the step and field. */
import { readFile } from 'node:fs/promises';
import type { z } from 'zod';
import { FixtureError } from './errors.ts';
import { Fixture } from './schema.ts';

/** `steps[3].args[0].fh` from a zod issue path. */
function where(p: readonly PropertyKey[]): string {
  let out = '';
  for (const k of p) out += typeof k === 'number' ? `[${k}]` : out === '' ? String(k) : `.${String(k)}`;
  return out || '(top level)';
}

/** What a step is, for messages: `steps[3] (call READ)`. */
function stepWhere(input: unknown, p: readonly PropertyKey[]): string {
  const w = where(p);
  if (p[0] !== 'steps' || typeof p[1] !== 'number') return w;
  const step = (input as { steps?: unknown[] }).steps?.[p[1]] as { do?: unknown; proc?: unknown } | undefined;
  const kind = typeof step?.do === 'string' ? `${step.do}${typeof step.proc === 'string' ? ` ${step.proc}` : ''}` : 'step';
  return `${w} (${kind})`;
}

function valueAt(input: unknown, p: readonly PropertyKey[]): unknown {
  let v = input;
  for (const k of p) v = typeof v === 'object' && v !== null ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  return v;
}

/** The first issues of a failed parse, worded for a fixture author. */
function describe(input: unknown, issues: readonly z.core.$ZodIssue[]): { where: string; why: string } {
  const first = issues[0]!;
  // A union reports "invalid input"; its branches say what was wrong — take the one meant: the branch
  // whose keys the item has (`{"uint64": "zero"}` is a bad uint64, not a missing `fh`), then the deepest.
  if (first.code === 'invalid_union' && first.errors.length > 0) {
    const branches = first.errors.filter((b) => b.length > 0).map((b) => b.map((i) => ({ ...i, path: [...first.path, ...i.path] })));
    const misfit = (b: readonly z.core.$ZodIssue[]) => b.filter((i) => i.code === 'unrecognized_keys' || valueAt(input, i.path) === undefined).length;
    const best = branches.reduce<z.core.$ZodIssue[] | null>((a, b) => (a === null || misfit(b) < misfit(a) || (misfit(b) === misfit(a) && b[0]!.path.length > a[0]!.path.length) ? b : a), null);
    if (best) return describe(input, best);
  }
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : '';
  return { where: stepWhere(input, first.path), why: `${first.message}${more}` };
}

export function parseFixture(input: unknown, file: string): Fixture {
  const r = Fixture.safeParse(input);
  if (r.success) return r.data;
  const d = describe(input, r.error.issues);
  throw new FixtureError(file, d.where, d.why);
}

/** The fixture format's own JSON Schema (fixtures/schema.json), which a glob like fixtures/*.json also picks. */
const JSON_SCHEMA_META = /^https:\/\/json-schema\.org\//;

/** Reads a fixture; null when the file is a JSON Schema document rather than a fixture. */
export async function loadFixtureOrSchema(file: string): Promise<Fixture | null> {
  const input = await readJson(file);
  const meta = (input as { $schema?: unknown } | null)?.$schema;
  if (typeof meta === 'string' && JSON_SCHEMA_META.test(meta)) return null;
  return parseFixture(input, file);
}

export async function loadFixture(file: string): Promise<Fixture> {
  return parseFixture(await readJson(file), file);
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new FixtureError(file, '(file)', (e as Error).message);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new FixtureError(file, '(file)', `not JSON: ${(e as Error).message}`);
  }
}
