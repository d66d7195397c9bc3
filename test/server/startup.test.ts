// `pagelife serve` as a first-time user meets it: bad input is one clear line and exit 2, numbers
// parse as written, help describes every option, and a refusing rpcbind is reported, not hidden.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPortmapProgram, Dispatcher, PortmapRegistry, RpcTcpServer } from '../../rpc/index.ts';
import type { Mapping } from '../../rpc/portmap.ts';
import { parseConfig } from '../../server/config.ts';
import { defaultCachePages } from '../../server/pagecache/sizing.ts';
import { serveConfig } from '../../server/cli.ts';
import { registerWithRpcbind } from '../../server/portmap-setup.ts';
import { testLog } from '../support/logger.ts';
import { REPO_ROOT } from '../support/server-process.ts';

const BIN = path.join(REPO_ROOT, 'bin/pagelife.js');
let dir = '';
let busy: net.Server;
let busyPort = 0;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pagelife-startup-'));
  busy = net.createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  busyPort = (busy.address() as net.AddressInfo).port;
});
afterAll(async () => {
  await new Promise((r) => busy.close(r));
  await rm(dir, { recursive: true, force: true });
});

/** Runs the CLI to completion (a start that succeeds would hang: the timeout fails the test). */
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, ...args], { timeout: 20_000 });
    return { code: 0, out: stdout, err: stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string; killed: boolean };
    if (x.killed) throw new Error(`pagelife ${args.join(' ')} did not exit:\n${x.stdout}${x.stderr}`);
    return { code: x.code, out: x.stdout, err: x.stderr };
  }
}

let runs = 0;
/** Each run its own var dir: runs in parallel must not race to create the embedded export. */
const serve = (...a: string[]) => cli(['serve', '--host', '127.0.0.1', '--nfs-port', '0', '--mount-port', '0', '--http-port', '0', '--portmap', 'off', '--var-dir', path.join(dir, `var${++runs}`), ...a]);

describe('pagelife serve: bad input is one line and exit 2', () => {
  it('names a missing export, exports file, bad option, unknown host and each busy port', async () => {
    const cases: [string[], RegExp][] = [
      [['--export', path.join(dir, 'nope')], /^pagelife: export \/export: ENOENT: no such file or directory, realpath '.*nope'$/],
      [['--exports-file', path.join(dir, 'nope.exports')], /^pagelife: exports file .*nope\.exports: cannot read it \(ENOENT\)$/],
      [['--export-options', 'rw,bogus'], /^pagelife: --export-options:1:4: unknown export option 'bogus'/],
      [['--host', 'no-such-host.invalid'], /^pagelife: cannot listen for nfs \(tcp\) on no-such-host\.invalid:0: (no such host \(ENOTFOUND\)|host name not resolvable now \(EAI_AGAIN\))$/],
      [['--nfs-port', String(busyPort)], new RegExp(`^pagelife: cannot listen for nfs \\(tcp\\) on 127\\.0\\.0\\.1:${busyPort}: address already in use \\(EADDRINUSE\\)$`)],
      [['--mount-port', String(busyPort)], /^pagelife: cannot listen for mount \(tcp\) on .*: address already in use/],
      [['--http-port', String(busyPort)], /^pagelife: cannot listen for http on .*: address already in use/],
      [['--portmap', String(busyPort)], /^pagelife: cannot listen for portmap on .*: address already in use/],
    ];
    const results = await Promise.all(cases.map(([args]) => serve(...args)));
    results.forEach((r, i) => {
      expect(r.code, r.err).toBe(2);
      const lines = r.err.trim().split('\n');
      expect(lines, r.err).toHaveLength(1);
      expect(lines[0]).toMatch(cases[i]![1]);
      expect(r.err).not.toMatch(/^\s+at /m);
    });
  });

  it('refuses unknown --config keys at every level, as the HTTP API does', async () => {
    const file = path.join(dir, 'typo.json');
    await writeFile(file, JSON.stringify({ replymode: 'legacy', faults: { los: 0.1 } }));
    const r = await serve('--config', file);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/Unrecognized key: "replymode"/);
    expect(r.err).toMatch(/faults: Unrecognized key: "los"/);
    expect(() => parseConfig({ net: { mss: 1448, msss: 1 } }, 'x')).toThrow(/net: Unrecognized key: "msss"/);
  });

  it('says unknown command and exits 2; bare help exits 0', async () => {
    const r = await cli(['bogus']);
    expect(r.code).toBe(2);
    expect(r.err.split('\n')[0]).toBe("pagelife: unknown command 'bogus'");
    expect((await cli(['--help'])).code).toBe(0);
  });
});

describe('pagelife serve: numbers and help', () => {
  it('accepts numbers as people write them (.05, 1.5e1) and still names a bad one', async () => {
    const c = await serveConfig(['--loss', '.05', '--delay', '1.5e1', '--cache-pages', '2e3', '--ack-loss', '0.5']);
    expect(c).not.toBe('help');
    if (c === 'help') return;
    expect(c.faults).toMatchObject({ loss: 0.05, delay: 15, ackLoss: 0.5 });
    expect(c.pageCache.pages).toBe(2000);
    await expect(serveConfig(['--loss', '5%'])).rejects.toThrow(/faults\.loss: Invalid input: expected number, received string/);
    await expect(serveConfig(['--cache-pages', '1.5'])).rejects.toThrow(/pageCache\.pages/);
    const polled = await serveConfig(['--busy-poll', '0']);
    expect(polled !== 'help' && polled.net.busyPollUs).toBe(0);
    await expect(serveConfig(['--busy-poll', '1e6'])).rejects.toThrow(/net\.busyPollUs/);
  });

  it('--help describes every option with its default', async () => {
    const r = await cli(['serve', '--help']);
    expect(r.code).toBe(0);
    const flags = [...r.out.matchAll(/^ {2}(--[a-z-]+)/gm)].map((m) => m[1]);
    expect(flags).toEqual(expect.arrayContaining(['--export', '--nfs-port', '--reply-mode', '--loss', '--delay', '--record', '--allow-devices']));
    expect(r.out).toMatch(/^ {2}--nfs-port N +NFS port.*\(default: 2049\)$/m);
    expect(r.out).toMatch(/^ {2}--reply-mode MODE +.*\(default: destructor\)$/m);
    expect(r.out).toMatch(new RegExp(`^ {2}--cache-pages N +.*\\(default: ${defaultCachePages()}\\)$`, 'm'));
    for (const line of r.out.split('\n').filter((l) => l.startsWith('  --'))) expect(line).toMatch(/^ {2}--\S+( \S+)? +\S.{8,}/);
  });
});

/** A portmapper whose every change is refused, as rpcbind answers when another server owns the entries. */
class HeldRegistry extends PortmapRegistry {
  override set(_m: Mapping): boolean {
    return false;
  }
  override unset(): boolean {
    return false;
  }
}

describe('registration with a system rpcbind', () => {
  async function rpcbind(registry: PortmapRegistry) {
    const dispatcher = new Dispatcher({ log: testLog });
    dispatcher.register(createPortmapProgram(registry));
    const tcp = new RpcTcpServer({ dispatcher, log: testLog, name: 'rpcbind' });
    return { tcp, port: await tcp.listen(0, '127.0.0.1') };
  }
  const services = [{ prog: 100003, vers: [3], tcpPort: 2049, udpPort: 2049 }];

  it('reports each refused SET and falls back to no portmapper instead of claiming one', async () => {
    const held = await rpcbind(new HeldRegistry());
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(s) });
    expect(await registerWithRpcbind(services, log, held.port)).toBeNull();
    await held.tcp.close();
    const err = lines.map((l) => JSON.parse(l) as { level: number; msg: string; refused?: string[] }).find((l) => l.level === 50);
    expect(err?.refused).toEqual(['100003/3/tcp', '100003/3/udp']);
    expect(err?.msg).toMatch(/refused 2 registration\(s\).*running without a portmapper/);
    expect(lines.join('')).not.toMatch(/registered with the system rpcbind/);
  });

  it('registers with one that accepts, and unregisters on close', async () => {
    const registry = new PortmapRegistry();
    const ok = await rpcbind(registry);
    const h = await registerWithRpcbind(services, testLog, ok.port);
    expect(h).toMatchObject({ kind: 'system', port: ok.port });
    expect(registry.all().map((m) => `${m.prog}/${m.netid}/${m.port}`)).toEqual(['100003/tcp/2049', '100003/udp/2049']);
    await h!.close();
    expect(registry.all()).toHaveLength(0);
    await ok.tcp.close();
  });
});
