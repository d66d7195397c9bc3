// Issue 12 acceptance 1: a real Linux client mounts without `nolock` (run-guest --locking) and its
// lockd takes fcntl locks over NLM; a host-side NLM client is refused while the guest holds an
// exclusive lock, queues a blocking request, and gets it through the GRANTED callback (sent via the
// client's portmapper) when the guest releases it; the guest in turn waits for the host's lock.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NLM4_BLOCKED, NLM4_DENIED, NLM4_DENIED_GRACE_PERIOD, NLM4_GRANTED } from '../../server/nlm/constants.ts';
import { testLog } from '../support/logger.ts';
import { NfsTestClient } from '../support/nfs-client.ts';
import { ClientServices, NlmTestClient, type LockSpec } from '../support/nlm-client.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';
import { RUN_GUEST, runGuest } from './guest.ts';

const run = promisify(execFile);
/** A cthon04 checkout (its lock/tlock.c is built at test time; its code is not part of this repository). */
const CTHON04 = process.env.CTHON04;

interface ApiLock {
  file: string;
  caller: string;
  svid: number;
  exclusive: boolean;
  offset: string;
  length: string;
}

describe.runIf(process.getuid?.() === 0)('NLM with a real Linux client', () => {
  let dir: string;
  let exp: string;
  let server: ServerProcess;
  let services: ClientServices;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-e2e-lock-'));
    exp = path.join(dir, 'export');
    await fs.mkdir(exp);
    await run('gcc', ['-static', '-O2', '-o', path.join(exp, 'lockf'), path.join(path.dirname(RUN_GUEST), 'tools/lockf.c')]);
    for (const f of ['quick.lock', 'data.lock']) await fs.writeFile(path.join(exp, f), 'lock me\n');
    // The host-side client's lockd and statd, behind its own portmapper; the server calls back through it.
    services = await ClientServices.start(testLog);
    await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify({ nlm: { clientPortmapPort: services.portmapPort, grantedRetries: 1, grantedRetryMs: 1000 } }));
    server = await startServer(['--export', exp, '--var-dir', path.join(dir, 'var'), '--portmap', 'auto', '--config', path.join(dir, 'config.json')]);
  });
  afterAll(async () => {
    await server?.stop();
    await services?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  const locks = async (): Promise<{ locks: ApiLock[]; waiters: ApiLock[]; counts: { graceDenied: number } }> => (await fetch(`http://127.0.0.1:${server.ports.http}/api/locks`)).json() as never;
  async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 240_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = await f();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}:\n${server.output().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('registers NLM and NSM with the portmapper', async () => {
    expect(server.ports.portmap).toBe(111);
    const info = (await run('rpcinfo', ['-p', '127.0.0.1'])).stdout;
    for (const v of [1, 3, 4]) expect(info).toMatch(new RegExp(`100021\\s+${v}\\s+tcp\\s+${server.ports.mount}\\s+nlockmgr`));
    expect(info).toMatch(new RegExp(`100024\\s+1\\s+udp\\s+${server.ports.mount}\\s+status`));
  });

  it('the guest locks without nolock; the host is refused, blocks, is granted by callback; the guest waits for the host', async () => {
    const { ino } = await fs.stat(path.join(exp, 'data.lock'), { bigint: true });
    const onData = (l: ApiLock) => l.file.endsWith(`:${ino}`);
    const guest = runGuest('locking.sh', { nfsPort: 'auto', locking: true, timeoutS: 400 });

    // The guest holds data.lock exclusively, whole file.
    const held = await until('the guest lock', async () => (await locks()).locks.find(onData));
    expect(held).toMatchObject({ caller: 'pagelife-guest', exclusive: true, offset: '0', length: '0' });

    const nfs = await NfsTestClient.connect({ nfsPort: server.ports.nfs, mountPort: server.ports.mount });
    const fh = await nfs.lookup('data.lock');
    await nfs.close();
    const host = await NlmTestClient.connect({ port: server.ports.mount });
    const mine: LockSpec = { caller: 'host-client', svid: 4242, oh: Buffer.from('host-client-4242'), fh, offset: 0n, length: 0n };
    const t = await host.test(mine);
    expect(t.stat).toBe(NLM4_DENIED);
    expect(t.holder).toMatchObject({ exclusive: true, svid: held.svid, l_offset: 0n, l_len: 0n });
    expect((await host.lock(mine)).stat).toBe(NLM4_DENIED);
    const cookie = Buffer.from('host-waits');
    expect((await host.lock(mine, { block: true, cookie })).stat).toBe(NLM4_BLOCKED);

    // The guest releases after its hold: the server grants the host's queued lock and calls back.
    const granted = await services.until(() => services.granted().find((g) => g.cookie.equals(cookie)), 240_000);
    expect(granted.alock).toMatchObject({ caller_name: 'host-client', svid: 4242 });
    expect((await locks()).locks.find(onData)).toMatchObject({ caller: 'host-client', exclusive: true });

    // The guest is refused, then queues; the host releases and the guest gets the lock.
    await until('the guest waiter', async () => (await locks()).waiters.find((w) => onData(w) && w.caller === 'pagelife-guest'));
    expect((await host.unlock(mine)).stat).toBe(NLM4_GRANTED);
    await host.close();

    const r = await guest;
    const out = r.stdout + r.stderr;
    expect(out).toContain('locking: shared and exclusive taken and released');
    expect(out).toContain('locking: held and released');
    expect(out).toContain('locking: while the host holds it: lock failed: Resource temporarily unavailable');
    expect(out).toContain('locking: waited and locked');
    expect(out).not.toMatch(/\bnolock\b/);
    expect(r.code).toBe(0);
    expect((await locks()).locks.filter(onData)).toEqual([]);
  });

  it.runIf(CTHON04 !== undefined)('passes the Connectathon lock suite (tlocklfs, tlock64) from the guest', async () => {
    const src = path.join(CTHON04!, 'lock/tlock.c');
    await run('gcc', ['-static', '-O2', '-DLF_SUMMIT', '-o', path.join(exp, 'tlocklfs'), src, '-lm']);
    await run('gcc', ['-static', '-O2', '-DLF_SUMMIT', '-DLARGE_LOCKS', '-o', path.join(exp, 'tlock64'), src, '-lm']);
    const r = await runGuest('cthon-lock.sh', { nfsPort: 'auto', locking: true, timeoutS: 900 });
    const out = r.stdout + r.stderr;
    console.log(out.split('\n').filter((l) => /results:|cthon-lock:|FAIL/.test(l)).join('\n'));
    expect(out).toContain('cthon-lock: all passed');
    expect(out).not.toMatch(/\bFAIL/);
    expect(r.code).toBe(0);
  });
});

// Acceptance 3, on the raw wire (`--wire`, run-guest --wire-udp) so that the server's own calls reach
// the guest: kill -9 while the guest holds a lock; the restarted server (same var dir, same wire port)
// is in grace, its SM_NOTIFY reaches the guest's statd through the guest's rpcbind, the guest's lockd
// reclaims, and another owner (a host-side NLM client) is refused for grace, then granted after it.
describe.runIf(process.getuid?.() === 0)('NLM across a kill -9 of the server, with the guest on the wire', () => {
  const GRACE_MS = 15_000;
  let dir: string;
  let exp: string;
  let server: ServerProcess | undefined;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-e2e-lock-wire-'));
    exp = path.join(dir, 'export');
    await fs.mkdir(exp);
    await run('gcc', ['-static', '-O2', '-o', path.join(exp, 'lockf'), path.join(path.dirname(RUN_GUEST), 'tools/lockf.c')]);
    for (const f of ['held.lock', 'other.lock']) await fs.writeFile(path.join(exp, f), 'x\n');
    await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify({ nsm: { graceMs: GRACE_MS, notifyIntervalMs: 1000, notifyRetries: 60 }, nlm: { callbackTimeoutMs: 2000 } }));
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  const serve = (wire: string) => startServer(['--export', exp, '--var-dir', path.join(dir, 'var'), '--wire', wire, '--config', path.join(dir, 'config.json')]);
  const locks = async (s: ServerProcess) => (await fetch(`http://127.0.0.1:${s.ports.http}/api/locks`)).json() as Promise<{ grace: { active: boolean; remainingMs: number }; locks: ApiLock[]; counts: { graceDenied: number } }>;
  async function until<T>(what: string, s: ServerProcess, f: () => Promise<T | undefined>, ms = 240_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = await f();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}:\n${s.output().slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('the guest reclaims after SM_NOTIFY over the wire; another owner is refused in grace and granted after', async () => {
    const { ino: heldIno } = await fs.stat(path.join(exp, 'held.lock'), { bigint: true });
    const onHeld = (l: ApiLock) => l.file.endsWith(`:${heldIno}`);
    const first = await serve('udp:0');
    server = first;
    const wirePort = first.ports.wire!;
    const guest = runGuest('locking-restart.sh', { nfsPort: 'auto', locking: true, wireUdp: wirePort, timeoutS: 400, opts: 'lookupcache=none,actimeo=1' });
    const held = await until('the guest lock on held.lock', first, async () => (await locks(first)).locks.find(onHeld));
    expect(held).toMatchObject({ caller: 'pagelife-guest', exclusive: true });

    await first.stop('SIGKILL');
    const second = await serve(`udp:${wirePort}`);
    server = second;
    const restartedAt = Date.now();
    expect(second.ports.wire).toBe(wirePort);
    expect((await locks(second)).locks).toEqual([]);

    // The reclaim: the guest's lock is back, under the guest's name, while the server is in grace.
    const reclaimed = await until('the reclaimed lock', second, async () => {
      const l = await locks(second);
      const mine = l.locks.find(onHeld);
      return mine ? { mine, grace: l.grace } : undefined;
    }, 90_000);
    const reclaimMs = Date.now() - restartedAt;
    expect(reclaimed.mine).toMatchObject({ caller: 'pagelife-guest', exclusive: true, svid: held.svid, offset: '0', length: '0' });
    expect(reclaimed.grace.active).toBe(true);
    expect(second.output()).toMatch(/"client":"10\.0\.3\.15".*nsm: SM_NOTIFY delivered/);
    await fs.writeFile(path.join(exp, 'restarted'), '');

    // Another owner, through the host-socket listener: refused for grace, then granted after it.
    const nfs = await NfsTestClient.connect({ nfsPort: second.ports.nfs, mountPort: second.ports.mount });
    const otherFh = await nfs.lookup('other.lock');
    const heldFh = await nfs.lookup('held.lock');
    await nfs.close();
    const host = await NlmTestClient.connect({ port: second.ports.mount });
    const owner = (fh: Buffer): LockSpec => ({ caller: 'host-client', svid: 77, oh: Buffer.from('host-client-77'), fh, offset: 0n, length: 0n });
    expect((await host.lock(owner(otherFh))).stat).toBe(NLM4_DENIED_GRACE_PERIOD);
    const { grace } = await locks(second);
    expect(grace.active).toBe(true);
    await new Promise((r) => setTimeout(r, grace.remainingMs + 100));
    expect((await locks(second)).grace.active).toBe(false);
    expect((await host.lock(owner(otherFh))).stat).toBe(NLM4_GRANTED);
    // The reclaimed lock is a real one: it still refuses other owners after grace.
    expect((await host.lock(owner(heldFh))).stat).toBe(NLM4_DENIED);
    expect((await host.unlock(owner(otherFh))).stat).toBe(NLM4_GRANTED);
    await host.close();
    console.log(`locking-restart: reclaimed ${reclaimMs} ms after the restart; grace ${GRACE_MS} ms; graceDenied ${(await locks(second)).counts.graceDenied}`);

    await fs.writeFile(path.join(exp, 'release'), '');
    const r = await guest;
    const out = r.stdout + r.stderr;
    expect(out).toContain('locking-restart: the server restarted');
    expect(out).toContain('locking-restart: held.lock holder said: locked');
    expect(r.code).toBe(0);
    expect((await locks(second)).locks.filter(onHeld)).toEqual([]);
  });
});
