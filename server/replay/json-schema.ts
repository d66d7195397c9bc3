/**
 * The published JSON Schema of the fixture format, generated from the zod schema. `npx tsx
 * server/replay/json-schema.ts` rewrites fixtures/schema.json; test/replay/schema.test.ts fails when
 * the file is out of date.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { REPO_ROOT } from '../paths.ts';
import { Fixture, FIXTURE_VERSION } from './schema.ts';

export const SCHEMA_FILE = path.join(REPO_ROOT, 'fixtures', 'schema.json');

/** The schema as a fixture author reads it: input types (defaults optional). */
export function fixtureJsonSchema(): string {
  const schema = z.toJSONSchema(Fixture, { io: 'input', target: 'draft-2020-12' });
  const out = { ...schema, $id: `https://pagelife.invalid/fixtures/schema-v${FIXTURE_VERSION}.json`, title: `pagelife fixture, version ${FIXTURE_VERSION}` };
  return `${JSON.stringify(out, null, 2)}\n`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await writeFile(SCHEMA_FILE, fixtureJsonSchema());
  console.log(`wrote ${path.relative(process.cwd(), SCHEMA_FILE)}`);
}
