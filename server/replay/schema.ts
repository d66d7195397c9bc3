/**
 * The fixture format (version FIXTURE_VERSION): one zod schema, the only definition. The JSON Schema
 * in fixtures/schema.json is generated from it (json-schema.ts) and checked by a test.
 */
import { z } from 'zod';
import { ConfigSchema, REPLY_MODES } from '../config.ts';
import { FixtureFaultsSchema } from '../reply/faults.ts';
import { Content } from './content.ts';
import { MOUNT_PROC_NAMES, NFS_PROC_NAMES } from './procedures.ts';
import { STATUS_NAMES } from './status.ts';

export const FIXTURE_VERSION = 1;

/** Longest run of virtual time one step may ask for (an RTO backs off to 120 s at most). */
export const MAX_STEP_MS = 600_000;

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, _ . - (a name, not a sentence)');
const ms = z.number().min(0).max(MAX_STEP_MS);
/** A path inside the export ('' is its root); no '..', no leading '/'. */
const exportPath = z.string().refine((p) => p === '' || (!p.startsWith('/') && !p.split('/').some((s) => s === '' || s === '.' || s === '..')), 'a path inside the export: no leading /, no . or .. components');

/** One XDR item of a call's arguments (RFC 4506), in order; `fh` is the handle of a path in the export. */
export const ArgItem = z.union([
  z.strictObject({ fh: exportPath }),
  z.strictObject({ uint32: z.number().int().min(0).max(0xffff_ffff) }),
  z.strictObject({ uint64: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER) }),
  z.strictObject({ bool: z.boolean() }),
  z.strictObject({ string: z.string() }),
  z.strictObject({ opaque: Content }),
  z.strictObject({ fixed: Content }),
]);
export type ArgItem = z.infer<typeof ArgItem>;

const client = name.describe('a named client; it connects at its first call');

const Call = z
  .strictObject({
    do: z.literal('call'),
    client,
    label: name.optional().describe('names the call for expectations and retransmissions'),
    program: z.enum(['nfs', 'mount']).default('nfs'),
    proc: z.string().describe('procedure name: NFSPROC3 (READ, WRITE…) or MOUNTPROC3 (MNT…)'),
    args: z.array(ArgItem).default([]),
    xid: z.number().int().min(0).max(0xffff_ffff).optional(),
    transport: z.enum(['tcp', 'udp']).default('tcp'),
  })
  .superRefine((c, ctx) => {
    const names: readonly string[] = c.program === 'nfs' ? NFS_PROC_NAMES : MOUNT_PROC_NAMES;
    if (!names.includes(c.proc)) ctx.addIssue({ code: 'custom', path: ['proc'], message: `not a ${c.program} procedure; one of ${names.join(', ')}` });
  });

const Faults = FixtureFaultsSchema;

export const Step = z.discriminatedUnion('do', [
  Call,
  z.strictObject({
    do: z.literal('retransmit'),
    client,
    of: name.describe('label of the call sent again, same XID and bytes'),
    label: name.optional(),
    connection: z.enum(['same', 'new']).default('same').describe('new: the client closes its connection and reconnects first, as after an RPC timeout'),
  }),
  z.strictObject({ do: z.literal('connect'), client, consume: z.enum(['at-once', 'hold']).default('at-once').describe('hold: keep delivered bytes (and their skbs) until a consume step') }),
  z.strictObject({ do: z.literal('disconnect'), client }),
  z.strictObject({ do: z.literal('consume'), client }),
  z.strictObject({ do: z.literal('pull'), client, bytes: z.number().int().positive().describe('pskb_pull_tail this many bytes of each held skb into its linear area') }),
  z.strictObject({ do: z.literal('drop'), client, segments: z.array(z.number().int().positive()).min(1).describe('data segments to lose, counted from the next one to leave the device (1)') }),
  z.strictObject({
    do: z.literal('drop-range'),
    client,
    from: z.number().int().min(0).describe('stream offset (0: the first byte this connection sends)'),
    to: z.number().int().positive(),
    times: z.number().int().positive().default(1),
  }),
  z.strictObject({
    do: z.literal('hold'),
    client,
    ms: ms.positive(),
    count: z.number().int().positive().default(1).describe('the next COUNT clones to leave wait MS in the device queue'),
    transport: z.enum(['tcp', 'udp']).default('tcp').describe('udp: the client\'s UDP flow, which its first UDP call creates'),
  }),
  z.strictObject({ do: z.literal('faults'), client: client.optional().describe('absent: every connection, now and to come'), set: Faults }),
  z.strictObject({ do: z.literal('write-behind'), file: exportPath, offset: z.number().int().min(0).default(0), content: Content }),
  z.strictObject({ do: z.literal('pressure'), file: exportPath.describe('a local reader reads this whole file through the page cache') }),
  z.strictObject({ do: z.literal('advance'), ms }),
  z.strictObject({ do: z.literal('settle') }),
  z.strictObject({ do: z.literal('check'), label: name }),
]);
export type Step = z.infer<typeof Step>;

/** A count expected exactly, or within bounds. */
const Count = z.union([z.number().int().min(0), z.strictObject({ min: z.number().int().min(0).optional(), max: z.number().int().min(0).optional() })]);
export type Count = z.infer<typeof Count>;

export const COUNTER_NAMES = [
  'pinnedPages',
  'pinnedReplies',
  'destructorsFired',
  'staleRetransmits',
  'retransmits',
  'fastRetransmits',
  'rtos',
  'drops',
  'ackDrops',
  'holds',
  'duplicates',
  'fragUnrefs',
  'destructorFragRefs',
  'orphanedFrags',
  'pinOrphans',
  'drcHits',
  'cowCopies',
  'evictions',
] as const;
export type CounterName = (typeof COUNTER_NAMES)[number];

const Counts = z.strictObject(Object.fromEntries(COUNTER_NAMES.map((n) => [n, Count.optional()])) as Record<CounterName, z.ZodOptional<typeof Count>>);
export type Counts = z.infer<typeof Counts>;

const ReplyExpect = z.strictObject({
  status: z.enum(STATUS_NAMES).optional(),
  data: z.union([z.enum(['intact', 'torn']), Content]).optional().describe('intact: the file bytes when the server answered; torn: anything else'),
  replies: Count.optional().describe('replies the client received for this call (default: at least one)'),
  drc: z.enum(['hit', 'miss']).optional().describe('answered from the duplicate request cache or executed'),
});
export type ReplyExpect = z.infer<typeof ReplyExpect>;

export const ModeExpect = z.strictObject({
  replies: z.record(name, ReplyExpect).optional(),
  files: z.record(exportPath, Content).optional().describe('file contents on disk at the end'),
  checkpoints: z.record(name, Counts).optional().describe('counters at a check step'),
  end: Counts.optional().describe('counters after the last step and a settle'),
});
export type ModeExpect = z.infer<typeof ModeExpect>;

export const Fixture = z
  .strictObject({
    $schema: z.string().optional(),
    version: z.literal(FIXTURE_VERSION),
    name,
    description: z.string(),
    config: z
      .strictObject({
        replyMode: z.enum(REPLY_MODES).optional(),
        pageCache: ConfigSchema.shape.pageCache.optional(),
        net: ConfigSchema.shape.net.optional(),
        pinBudget: ConfigSchema.shape.pinBudget.optional(),
        drc: ConfigSchema.shape.drc.optional(),
        limits: ConfigSchema.shape.limits.optional(),
      })
      .default({})
      .describe('server configuration; replyMode absent: the mode is chosen at replay'),
    path: ConfigSchema.shape.faults.describe('path profile at start, and the seed of every random fault'),
    files: z.record(exportPath, Content).default({}),
    steps: z.array(Step).min(1),
    expect: z.partialRecord(z.enum(REPLY_MODES), ModeExpect).describe('what each mode must show'),
  })
  .superRefine((f, ctx) => {
    const labels = new Set<string>();
    const checks = new Set<string>();
    f.steps.forEach((s, i) => {
      if ((s.do === 'call' || s.do === 'retransmit') && s.label) {
        if (labels.has(s.label)) ctx.addIssue({ code: 'custom', path: ['steps', i, 'label'], message: `label ${s.label} used twice` });
        labels.add(s.label);
      }
      if (s.do === 'retransmit' && !labels.has(s.of)) ctx.addIssue({ code: 'custom', path: ['steps', i, 'of'], message: `no earlier call labelled ${s.of}` });
      if (s.do === 'drop-range' && s.to <= s.from) ctx.addIssue({ code: 'custom', path: ['steps', i, 'to'], message: 'must be past from' });
      if (s.do === 'check') checks.add(s.label);
    });
    for (const [mode, e] of Object.entries(f.expect)) {
      for (const l of Object.keys(e?.replies ?? {})) if (!labels.has(l)) ctx.addIssue({ code: 'custom', path: ['expect', mode, 'replies', l], message: `no call labelled ${l}` });
      for (const l of Object.keys(e?.checkpoints ?? {})) if (!checks.has(l)) ctx.addIssue({ code: 'custom', path: ['expect', mode, 'checkpoints', l], message: `no check step labelled ${l}` });
    }
    if (f.config.replyMode && Object.keys(f.expect).some((m) => m !== f.config.replyMode)) {
      ctx.addIssue({ code: 'custom', path: ['expect'], message: `config.replyMode is ${f.config.replyMode}: expectations for other modes can never run` });
    }
  });
export type Fixture = z.infer<typeof Fixture>;
export type FixtureInput = z.input<typeof Fixture>;
