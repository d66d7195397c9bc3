/** `pagelife replay FIXTURE... [--mode M | --all-modes] [--pcap FILE] [--trace FILE] [--json] [-v]` */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPLY_MODES, type ReplyMode } from '../config.ts';
import { ReplayOutputError, ReplayUsageError } from './errors.ts';
import { loadFixtureOrSchema } from './load.ts';
import { replay, type ReplayResult } from './runner.ts';
import type { Fixture } from './schema.ts';

export const REPLAY_USAGE = `usage:
  pagelife replay FIXTURE... [--mode destructor|legacy|copy | --all-modes]
                  [--pcap FILE] [--trace FILE] [--json] [-v]
  Replays each fixture on a virtual clock and prints a verdict per fixture and mode; exits 1 if
  any expectation fails. With several runs, FILE gets .<fixture>.<mode> before its extension.`;

const OPTIONS = {
  mode: { type: 'string' },
  'all-modes': { type: 'boolean' },
  pcap: { type: 'string' },
  trace: { type: 'string' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Modes to run a fixture in: its own if its config fixes one, else the chosen ones. */
function modesFor(f: Fixture, chosen: readonly ReplyMode[]): ReplyMode[] {
  return f.config.replyMode ? [f.config.replyMode] : [...chosen];
}

/** FILE, or FILE with `.<fixture>.<mode>` before the extension when there is more than one run. */
function outputName(file: string, many: boolean, r: ReplayResult): string {
  if (!many) return file;
  const ext = path.extname(file);
  return `${file.slice(0, file.length - ext.length)}.${r.fixture}.${r.mode}${ext}`;
}

function verdictLine(r: ReplayResult, file: string): string {
  const head = `${r.pass ? 'PASS' : 'FAIL'} ${r.fixture} [${r.mode}]  ${r.virtualMs} ms virtual, ${r.wallMs.toFixed(0)} ms  (${file})`;
  return [head, ...r.failures.map((f) => `    ✗ ${f}`)].join('\n');
}

async function save(file: string, data: Buffer | string): Promise<void> {
  await writeFile(file, data).catch((e: Error) => {
    throw new ReplayOutputError(file, e.message);
  });
}

/** Runs the command; resolves to the exit code. */
export async function replayCommand(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const { values: o, positionals: files } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  if (o.help) {
    out(`${REPLAY_USAGE}\n`);
    return 0;
  }
  if (files.length === 0) throw new ReplayUsageError('no fixture given');
  if (o.mode !== undefined && o['all-modes']) throw new ReplayUsageError('--mode and --all-modes exclude each other');
  if (o.mode !== undefined && !(REPLY_MODES as readonly string[]).includes(o.mode)) throw new ReplayUsageError(`--mode ${o.mode}: one of ${REPLY_MODES.join(', ')}`);
  const chosen: readonly ReplyMode[] = o['all-modes'] ? REPLY_MODES : [(o.mode as ReplyMode | undefined) ?? 'destructor'];
  const fixtures: [string, Fixture][] = [];
  for (const file of files) {
    const f = await loadFixtureOrSchema(file);
    if (f) fixtures.push([file, f]);
    else if (!o.json) out(`skip ${file}: the fixture format's JSON Schema, not a fixture\n`);
  }
  const runs = fixtures.flatMap(([file, f]) => modesFor(f, chosen).map((mode) => ({ file, f, mode })));
  const many = runs.length > 1;
  const results: (ReplayResult & { file: string })[] = [];
  for (const { file, f, mode } of runs) {
    const r = await replay(f, { mode, pcap: o.pcap !== undefined, trace: o.trace !== undefined, source: file });
    if (o.pcap !== undefined && r.pcap) await save(outputName(o.pcap, many, r), r.pcap);
    if (o.trace !== undefined && r.trace) await save(outputName(o.trace, many, r), r.trace);
    if (!o.json) {
      if (o.verbose) out(`${r.log.join('\n')}\n`);
      out(`${verdictLine(r, file)}\n`);
    }
    results.push({ ...r, file });
  }
  if (o.json) {
    const rows = results.map(({ pcap: _p, trace: _t, events: _e, log, ...r }) => ({ ...r, ...(o.verbose ? { log } : {}) }));
    out(`${JSON.stringify(rows, null, 2)}\n`);
  } else if (many) {
    const failed = results.filter((r) => !r.pass).length;
    out(`${results.length - failed} of ${results.length} runs passed\n`);
  }
  return results.every((r) => r.pass) ? 0 : 1;
}

