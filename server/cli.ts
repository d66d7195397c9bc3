import { parseArgs } from 'node:util';
import { ConfigError, ConfigSchema, parseConfig, readConfigFile, type Config } from './config.ts';
import { ExportsParseError } from './exports/errors.ts';
import { StartupError } from './startup-error.ts';
import { ExportConfigError } from './vfs/export.ts';
import { FixtureError, ReplayOutputError, ReplayStepError, ReplayUsageError } from './replay/errors.ts';

const USAGE = `usage:
  pagelife serve [OPTIONS]       serve NFSv3 (pagelife serve --help lists the options)
  pagelife replay FIXTURE... [--mode destructor|legacy|copy | --all-modes]
                  [--pcap FILE] [--trace FILE] [--json] [-v]
  pagelife demo [--seconds S (15)] [--http-port N (8080)] [--mode MODE]...
                 the bug and the fix with libnfs nfs-cat, about a minute, no root`;

/** `serve --help`: each flag, what it sets, and its default (read from the schema, the one source). */
function serveHelp(): string {
  const d = ConfigSchema.parse({});
  const rows: [string, string, unknown][] = [
    ['--export DIR', 'host directory served as /export', `embedded default export in ${d.varDir}/export`],
    ['--nfs-port N', 'NFS port, TCP and UDP (0: any free port)', d.nfsPort],
    ['--mount-port N', 'MOUNT port, TCP and UDP (0: any free port)', d.mountPort],
    ['--portmap auto|off|PORT', 'auto: own portmapper on 111, else the system rpcbind, else none', d.portmap],
    ['--http-port N', 'dashboard and HTTP API port', d.httpPort],
    ['--host ADDR', 'address the NFS, MOUNT and portmapper listeners bind', d.host],
    ['--http-host ADDR', 'address the HTTP side binds; beyond loopback its controls need the token', d.httpHost],
    ['--config FILE', 'JSON with the fields of server/config.ts; flags win', 'none'],
    ['--exports-file FILE', 'more exports, exports(5) syntax', 'none'],
    ['--export-options OPTS', 'options of /export, exports(5) syntax', d.exportOptions],
    ['--export-clients SPEC', 'clients allowed to mount /export', d.exportClients],
    ['--allow-devices', 'let MKNOD create block and character devices', d.allowDevices],
    ['--var-dir DIR', 'embedded export and server state', d.varDir],
    ['--reply-mode MODE', 'destructor (the fix), legacy (the bug), copy (the baseline)', d.replyMode],
    ['--cache-pages N', 'page cache frames of 4 KiB (default: 1/16 of memory, 64-512 MiB)', d.pageCache.pages],
    ['--pinned-write cow|wait', 'a write to a pinned page: copy it, or wait for its destructor', d.pageCache.pinnedWrite],
    ['--loss P', 'probability a data segment is lost on the simulated path', d.faults.loss],
    ['--ack-loss P', 'probability an ACK is lost', d.faults.ackLoss],
    ['--delay MS', 'one-way delay added to the simulated path', d.faults.delay],
    ['--jitter MS', 'random extra delay, up to MS', d.faults.jitter],
    ['--reorder P', 'probability a segment is reordered', d.faults.reorder],
    ['--duplicate P', 'probability a segment is duplicated', d.faults.duplicate],
    ['--device-hold MS', 'time each skb waits in the device queue', d.faults.deviceHold],
    ['--busy-poll US', 'µs the event loop keeps polling after a reply instead of sleeping (0: off)', d.net.busyPollUs],
    ['--seed N', 'seed of the fault generator', d.faults.seed],
    ['--log-level LEVEL', 'pino level: fatal error warn info debug trace silent', d.logLevel],
    ['--record FILE', 'write the session as a replay fixture when the server stops', 'off'],
    ['--wire udp:PORT', "pagelife's own Ethernet/IPv4/TCP stack on a raw wire: one UDP datagram per frame (0: any port)", 'off'],
    ['--wire-addr ADDR/PREFIX', 'our IPv4 address on the wire', d.wire.addr],
    ['--wire-mac MAC', 'our MAC address on the wire', d.wire.mac],
    ['--pcap FILE', 'pcapng of every wire frame in and out', 'off'],
    ['-h, --help', 'this help', ''],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  const lines = rows.map(([flag, what, def]) => `  ${flag.padEnd(w)}  ${what}${def === '' ? '' : ` (default: ${String(def)})`}`);
  return `usage: pagelife serve [OPTIONS]\n${lines.join('\n')}\nNumbers may be written as 0.05, .05 or 1.5e1.`;
}

const SERVE_OPTIONS = {
  export: { type: 'string' },
  'nfs-port': { type: 'string' },
  'mount-port': { type: 'string' },
  portmap: { type: 'string' },
  'http-port': { type: 'string' },
  'http-host': { type: 'string' },
  host: { type: 'string' },
  config: { type: 'string' },
  'exports-file': { type: 'string' },
  'export-options': { type: 'string' },
  'export-clients': { type: 'string' },
  'var-dir': { type: 'string' },
  'allow-devices': { type: 'boolean' },
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
  'busy-poll': { type: 'string' },
  seed: { type: 'string' },
  record: { type: 'string' },
  wire: { type: 'string' },
  'wire-addr': { type: 'string' },
  'wire-mac': { type: 'string' },
  pcap: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** A numeric flag (`5`, `.05`, `1.5e1`) stays a string if it is not a number, so the schema names the bad value. */
const num = (v: string | undefined): number | string | undefined => (v === undefined ? undefined : v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v);

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
    httpHost: f['http-host'],
    host: f.host,
    exportsFile: f['exports-file'],
    exportOptions: f['export-options'],
    exportClients: f['export-clients'],
    varDir: f['var-dir'],
    allowDevices: f['allow-devices'],
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
  merged.net = section(base.net, { busyPollUs: f['busy-poll'] });
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
        console.log(serveHelp());
        return;
      }
      const { serve } = await import('./main.ts');
      const { values } = parseArgs({ args: rest, options: SERVE_OPTIONS, strict: true, allowPositionals: false });
      if (values.record === undefined) return await serve(config);
      const { SessionRecorder } = await import('./replay/recorder.ts');
      const recorder = new SessionRecorder(values.record);
      await serve(config, { started: (s) => recorder.start(s), stopping: () => recorder.save() });
      return;
    }
    if (cmd === 'demo') {
      const { demoCommand } = await import('./demo/command.ts');
      process.exitCode = await demoCommand(rest);
      return;
    }
    if (cmd === 'replay') {
      const { replayCommand } = await import('./replay/command.ts');
      process.exitCode = await replayCommand(rest);
      return;
    }
    const help = cmd === undefined || cmd === 'help' || cmd === '--help' || cmd === '-h';
    console.error(help ? USAGE : `pagelife: unknown command '${cmd}'\n${USAGE}`);
    process.exitCode = help ? 0 : 2;
  } catch (e) {
    if (e instanceof FixtureError || e instanceof ReplayStepError || e instanceof ReplayOutputError || e instanceof StartupError || e instanceof ExportConfigError || e instanceof ExportsParseError) {
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
