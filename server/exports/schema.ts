/**
 * The zod form of a parsed exports configuration. The exports-file parser checks syntax and
 * reports positions; this schema is the last gate on the result (ranges, canonical paths, unique
 * exports), and lets other configuration sources (a JSON or YAML config) carry exports too.
 */
import { z } from 'zod';
import type { ClientRule, ExportEntry, ExportOptions } from './types.ts';

const uint32 = z.number().int().min(0).max(0xffffffff);

/** Absolute, normalized (no `.`, `..`, `//`, trailing slash) — one string per export, no aliases. */
const canonicalPath = z
  .string()
  .startsWith('/', 'must be an absolute path')
  .refine((p) => p === '/' || !p.endsWith('/'), 'must not end with /')
  .refine((p) => !p.includes('\0'), 'must not contain NUL')
  .refine((p) => p.split('/').slice(1).every((c) => c !== '' && c !== '.' && c !== '..') || p === '/', 'must be normalized (no empty, . or .. components)');

export const ExportOptionsSchema = z.strictObject({
  rw: z.boolean(),
  rootSquash: z.boolean(),
  allSquash: z.boolean(),
  anonuid: uint32,
  anongid: uint32,
  secure: z.boolean(),
}) satisfies z.ZodType<ExportOptions>;

const ruleBase = { spec: z.string().min(1), options: ExportOptionsSchema, notes: z.array(z.string()) };

export const ClientRuleSchema = z.discriminatedUnion('kind', [
  z.strictObject({ ...ruleBase, kind: z.literal('any') }),
  z.strictObject({ ...ruleBase, kind: z.literal('ipv4'), network: uint32, prefixLength: z.number().int().min(0).max(32), single: z.boolean() }),
  z.strictObject({
    ...ruleBase,
    kind: z.literal('ipv6'),
    network: z.tuple([uint32, uint32, uint32, uint32]),
    prefixLength: z.number().int().min(0).max(128),
    single: z.boolean(),
  }),
  z.strictObject({ ...ruleBase, kind: z.literal('hostname'), name: z.string().regex(/^[a-z0-9_.-]+$/) }),
  z.strictObject({ ...ruleBase, kind: z.literal('wildcard'), pattern: z.string().regex(/^[a-z0-9_.*?-]+$/) }),
]) satisfies z.ZodType<ClientRule>;

export const ExportEntrySchema = z.strictObject({
  path: canonicalPath,
  dir: z.string().startsWith('/', 'must be an absolute path'),
  rules: z.array(ClientRuleSchema).min(1, 'an export needs at least one client'),
  // The export id lives in 16 bits of every file handle (server/vfs/fh.ts).
  fsid: z.number().int().min(0).max(0xffff).optional(),
}) satisfies z.ZodType<ExportEntry>;

export const ExportsConfigSchema = z.array(ExportEntrySchema).superRefine((entries, ctx) => {
  const seen = new Set<string>();
  entries.forEach((e, i) => {
    if (seen.has(e.path)) ctx.addIssue({ code: 'custom', path: [i, 'path'], message: `${e.path} is exported twice` });
    seen.add(e.path);
  });
});
