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
import { NLM4_BLOCKED, NLM4_DENIED, NLM4_GRANTED } from '../../server/nlm/constants.ts';
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

  // Last: it kills the server. The guest's own statd cannot be reached from the host (QEMU user
  // networking), so its lockd is never told to reclaim; the SM_NOTIFY meant for it lands at the
  // host-side statd behind the configured client portmapper, and grace is shown with a new lock.
  it('after kill -9 and a restart: SM_NOTIFY for the guest, and its new lock refused in grace, granted after', async () => {
    const GRACE_MS = 8000;
    await fs.writeFile(path.join(dir, 'restart.json'), JSON.stringify({ nlm: { clientPortmapPort: services.portmapPort }, nsm: { graceMs: GRACE_MS } }));
    for (const f of ['held.lock', 'other.lock']) await fs.writeFile(path.join(exp, f), 'x\n');
    const { ino: heldIno } = await fs.stat(path.join(exp, 'held.lock'), { bigint: true });
    const { ino: otherIno } = await fs.stat(path.join(exp, 'other.lock'), { bigint: true });
    const guest = runGuest('locking-restart.sh', { nfsPort: 'auto', locking: true, timeoutS: 400, opts: 'lookupcache=none,actimeo=1' });
    await until('the guest lock on held.lock', async () => (await locks()).locks.find((l) => l.file.endsWith(`:${heldIno}`)));
    const { nfs, mount } = server.ports;
    await server.stop('SIGKILL');
    const notified = services.notifies.length;
    server = await startServer(['--export', exp, '--var-dir', path.join(dir, 'var'), '--portmap', 'auto', '--nfs-port', String(nfs), '--mount-port', String(mount), '--config', path.join(dir, 'restart.json')]);
    const restartedAt = Date.now();
    const notify = await services.until(() => services.notifies[notified], 30_000);
    expect(notify.monName).toBe('127.0.0.1');
    const api = (await (await fetch(`http://127.0.0.1:${server.ports.http}/api/locks`)).json()) as { grace: { active: boolean }; locks: ApiLock[] };
    expect(api.grace.active).toBe(true);
    expect(api.locks).toEqual([]);
    await fs.writeFile(path.join(exp, 'restarted'), '');

    // The guest's LOCK on other.lock is refused while in grace (its lockd retries), then granted.
    await until('a lock refused for grace', async () => ((await locks()).counts.graceDenied > 0 ? true : undefined));
    const got = await until('the guest lock on other.lock', async () => (await locks()).locks.find((l) => l.file.endsWith(`:${otherIno}`)));
    const grantedAfterMs = Date.now() - restartedAt;
    console.log(`locking-restart: guest lock granted ${grantedAfterMs} ms after the restart (grace ${GRACE_MS} ms)`);
    expect(got.caller).toBe('pagelife-guest');
    expect(grantedAfterMs).toBeGreaterThanOrEqual(GRACE_MS);
    const r = await guest;
    const out = r.stdout + r.stderr;
    expect(out).toContain('locking-restart: the server restarted');
    expect(out).toContain('locking-restart: new lock granted');
    expect(r.code).toBe(0);
  });
});
