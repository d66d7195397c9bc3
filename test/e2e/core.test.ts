// Issue 2 acceptance 1–3: a real Linux kernel client, libnfs, nfs-common and tshark against `pagelife serve`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startServer, type ServerProcess } from '../support/server-process.ts';
import { runGuest } from './guest.ts';
import { countFrames, startCapture, type Capture } from './tshark.ts';

const run = promisify(execFile);
const MANY = 2000;
const SIZES: Record<string, number> = {
  'empty.bin': 0,
  'one.bin': 1,
  'small.bin': 4096,
  'odd.bin': 123_457,
  'mid.bin': 1 << 20,
  'big.bin': 64 << 20,
};

let dir: string;
let server: ServerProcess;
let capture: Capture;
let pcap: string;
const md5 = new Map<string, string>();

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-e2e-'));
  const exp = path.join(dir, 'export');
  await fs.mkdir(path.join(exp, 'many'), { recursive: true });
  await fs.mkdir(path.join(exp, 'sub'));
  for (const [name, size] of Object.entries(SIZES)) {
    const data = randomBytes(size);
    await fs.writeFile(path.join(exp, name), data);
    md5.set(name, createHash('md5').update(data).digest('hex'));
  }
  for (let i = 0; i < MANY; i++) await fs.writeFile(path.join(exp, 'many', `entry-${String(i).padStart(4, '0')}`), `${i}\n`);
  await fs.writeFile(path.join(exp, 'sub', 'nested.txt'), 'nested file');
  await fs.writeFile(path.join(exp, 'hello.txt'), 'hello from pagelife');
  await fs.writeFile(path.join(exp, 'mode640.txt'), 'x', { mode: 0o640 });
  await fs.chmod(path.join(exp, 'mode640.txt'), 0o640);
  await fs.symlink('small.bin', path.join(exp, 'link-to-small'));
  server = await startServer(['--export', exp]);
  pcap = path.join(dir, 'core.pcapng');
  capture = await startCapture(pcap, [server.ports.nfs, server.ports.mount]);
});

afterAll(async () => {
  await capture?.stop().catch(() => undefined);
  await server?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('real Linux kernel client (QEMU guest)', () => {
  it('mounts with vers=3,proto=tcp and reads listings, files 0 B–64 MiB, symlinks, attributes, df', async () => {
    const expect_ = [...md5].map(([n, h]) => `${n}:${h}`).join(' ');
    const r = await runGuest('read-core.sh', {
      nfsPort: server.ports.nfs,
      mountPort: server.ports.mount,
      env: { EXPECT: expect_, MANY },
    });
    expect(r.stdout + r.stderr).toContain('read-core: ok');
    expect(r.code).toBe(0);
  });
});

describe('independent userspace clients', () => {
  it('libnfs nfs-ls lists the export and nfs-cat reads a file byte for byte', async () => {
    const q = `version=3&nfsport=${server.ports.nfs}&mountport=${server.ports.mount}`;
    const ls = await run('nfs-ls', [`nfs://127.0.0.1/export/?${q}`]);
    for (const name of Object.keys(SIZES)) expect(ls.stdout).toContain(name);
    const cat = await run('nfs-cat', [`nfs://127.0.0.1/export/mid.bin?${q}`], { encoding: 'buffer', maxBuffer: 8 << 20 });
    expect(createHash('md5').update(cat.stdout).digest('hex')).toBe(md5.get('mid.bin'));
    const many = await run('nfs-ls', [`nfs://127.0.0.1/export/many/?${q}`], { maxBuffer: 8 << 20 });
    expect(many.stdout.split('\n').filter((l) => l.includes('entry-')).length).toBe(MANY);
  });

  it('tshark dissects the captured RPC/NFS traffic without malformed packets', async () => {
    await capture.stop();
    const c = await countFrames(pcap, [server.ports.nfs, server.ports.mount], {
      nfs: 'nfs',
      mount: 'mount',
      read: 'nfs.procedure_v3 == 6',
      malformed: '_ws.malformed || _ws.expert.severity == error',
    });
    expect(c.nfs).toBeGreaterThan(100);
    expect(c.mount).toBeGreaterThan(0);
    expect(c.read).toBeGreaterThan(10);
    expect(c.malformed).toBe(0);
  });
});

// Port 111 needs root and no system rpcbind: the server then runs its own portmapper there.
describe.runIf(process.getuid?.() === 0)('portmapper on port 111', () => {
  let pm: ServerProcess;
  beforeAll(async () => {
    pm = await startServer(['--export', path.join(dir, 'export'), '--portmap', 'auto']);
  });
  afterAll(async () => pm?.stop());

  it('binds 111 and answers rpcinfo -p and showmount -e', async () => {
    expect(pm.ports.portmap).toBe(111);
    const info = await run('rpcinfo', ['-p', '127.0.0.1']);
    expect(info.stdout).toMatch(new RegExp(`100003\\s+3\\s+tcp\\s+${pm.ports.nfs}\\s+nfs`));
    expect(info.stdout).toMatch(new RegExp(`100005\\s+3\\s+udp\\s+${pm.ports.mount}\\s+mountd`));
    const show = await run('showmount', ['-e', '127.0.0.1']);
    expect(show.stdout).toMatch(/^\/export\s/m);
  });

  it('the guest mounts with no port options at all', async () => {
    const r = await runGuest('mount-only.sh', { nfsPort: 'auto' });
    expect(r.stdout + r.stderr).toContain('mount-only: ok');
    expect(r.code).toBe(0);
  });

  it('the guest mounts with MOUNT over UDP', async () => {
    const r = await runGuest('mount-only.sh', { nfsPort: 'auto', opts: 'mountproto=udp' });
    expect(r.stdout + r.stderr).toContain('mount-only: ok');
    expect(r.code).toBe(0);
  });
});
