import { parseArgs } from 'node:util';
import { ConfigError, parseConfig, readConfigFile, type Config } from './config.ts';
import { FixtureError, ReplayOutputError, ReplayStepError, ReplayUsageError } from './replay/errors.ts';

const USAGE = `usage:
  pagelife serve [--export DIR] [--nfs-port N] [--mount-port N] [--portmap auto|off|PORT]
                 [--http-port N] [--host ADDR] [--config FILE] [--exports-file FILE]
                 [--export-options OPTS] [--export-clients SPEC] [--var-dir DIR]
                 [--reply-mode destructor|legacy|copy] [--cache-pages N] [--pinned-write cow|wait]
                 [--loss P] [--ack-loss P] [--delay MS] [--jitter MS] [--reorder P]
                 [--duplicate P] [--device-hold MS] [--seed N] [--log-level LEVEL]
                 [--record FILE] [--wire udp:PORT] [--wire-addr ADDR/PREFIX] [--wire-mac MAC]
                 [--pcap FILE]
  Port 0 means any free port; the ports bound are printed on the ready line.
  pagelife replay FIXTURE... [--mode destructor|legacy|copy | --all-modes]
                  [--pcap FILE] [--trace FILE] [--json] [-v]`;

const SERVE_OPTIONS = {
  export: { type: 'string' },
  'nfs-port': { type: 'string' },
  'mount-port': { type: 'string' },
  portmap: { type: 'string' },
  'http-port': { type: 'string' },
  host: { type: 'string' },
  config: { type: 'string' },
  'exports-file': { type: 'string' },
  'export-options': { type: 'string' },
  'export-clients': { type: 'string' },
  'var-dir': { type: 'string' },
  'reply-mode': { type: 'string' },
  'cache-pages': { type: 'string' },
  'pinned-write': { type: 'string' },
  'log-level': { type: 'string' },
  loss: { type: 'string' },
  'ack-loss': { type: 'string' },
  delay: { type: 'string' },
  jitter: { type: 'string' },
  reorder: { type: 'string' },
  duplicate: { type: 'string' },
  'device-hold': { type: 'string' },
  seed: { type: 'string' },
  record: { type: 'string' },
  wire: { type: 'string' },
  'wire-addr': { type: 'string' },
  'wire-mac': { type: 'string' },
  pcap: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** A numeric flag stays a string if it is not a number, so the schema names the bad value. */
const num = (v: string | undefined): number | string | undefined => (v === undefined ? undefined : /^\d+(\.\d+)?$/.test(v) ? Number(v) : v);

/** Merges flags (strings) over a section of the config file. */
function section(base: unknown, flags: Record<string, string | undefined>): Record<string, unknown> {
  const out = { ...((base as Record<string, unknown> | undefined) ?? {}) };
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) out[k] = num(v);
  return out;
}

/** Builds the configuration from flags over an optional JSON file; flags win. */
export async function serveConfig(argv: string[]): Promise<Config | 'help'> {
  const { values: f } = parseArgs({ args: argv, options: SERVE_OPTIONS, strict: true, allowPositionals: false });
  if (f.help) return 'help';
  const base = f.config ? await readConfigFile(f.config) : {};
  const flags: Record<string, unknown> = {
    export: f.export,
    nfsPort: num(f['nfs-port']),
    mountPort: num(f['mount-port']),
    portmap: f.portmap === undefined || f.portmap === 'auto' || f.portmap === 'off' ? f.portmap : num(f.portmap),
    httpPort: num(f['http-port']),
    host: f.host,
    exportsFile: f['exports-file'],
    exportOptions: f['export-options'],
    exportClients: f['export-clients'],
    varDir: f['var-dir'],
    replyMode: f['reply-mode'],
    logLevel: f['log-level'],
  };
  const merged: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) merged[k] = v;
  merged.pageCache = section(base.pageCache, { pages: f['cache-pages'] });
  if (f['pinned-write'] !== undefined) (merged.pageCache as Record<string, unknown>).pinnedWrite = f['pinned-write'];
  merged.faults = section(base.faults, {
    loss: f.loss,
    ackLoss: f['ack-loss'],
    delay: f.delay,
    jitter: f.jitter,
    reorder: f.reorder,
    duplicate: f.duplicate,
    deviceHold: f['device-hold'],
    seed: f.seed,
  });
  const wire = { ...((base.wire as Record<string, unknown> | undefined) ?? {}) };
  if (f.wire !== undefined) wire.port = /^udp:\d+$/.test(f.wire) ? Number(f.wire.slice(4)) : `--wire ${f.wire} (want udp:PORT)`;
  if (f['wire-addr'] !== undefined) wire.addr = f['wire-addr'];
  if (f['wire-mac'] !== undefined) wire.mac = f['wire-mac'];
  if (f.pcap !== undefined) wire.pcap = f.pcap;
  merged.wire = wire;
  return parseConfig(merged, f.config ? `${f.config} + command line` : 'command line');
}

export async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  try {
    if (cmd === 'serve') {
      const config = await serveConfig(rest);
      if (config === 'help') {
        console.log(USAGE);
        return;
      }
      const { serve } = await import('./main.ts');
      const { values } = parseArgs({ args: rest, options: SERVE_OPTIONS, strict: true, allowPositionals: false });
      if (values.record === undefined) return serve(config);
      const { SessionRecorder } = await import('./replay/recorder.ts');
      const recorder = new SessionRecorder(values.record);
      await serve(config, { started: (s) => recorder.start(s), stopping: () => recorder.save() });
      return;
    }
    if (cmd === 'replay') {
      const { replayCommand } = await import('./replay/command.ts');
      process.exitCode = await replayCommand(rest);
      return;
    }
    console.error(USAGE);
    process.exitCode = cmd === undefined || cmd === 'help' || cmd === '--help' ? 0 : 2;
  } catch (e) {
    if (e instanceof FixtureError || e instanceof ReplayStepError || e instanceof ReplayOutputError) {
      console.error(`pagelife: ${e.message}`);
      process.exitCode = 2;
      return;
    }
    if (e instanceof ConfigError || e instanceof ReplayUsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`pagelife: ${(e as Error).message}\n${USAGE}`);
      process.exitCode = 2;
      return;
    }
    throw e;
  }
}
