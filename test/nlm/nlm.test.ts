// NLM versions 1, 3 and 4 over real sockets against the assembled server: POSIX answers, the GRANTED
// callback through the client's portmapper, _MSG/_RES, SHARE, FREE_ALL, limits, malformed calls, and
// NSM's procedures and the SM_NOTIFY that frees a rebooted client's locks.
import { randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authSys, RpcClient } from '../../rpc/client.ts';
import { GARBAGE_ARGS, PROC_UNAVAIL } from '../../rpc/constants.ts';
import { XdrReader } from '../../xdr/reader.ts';
import { XdrWriter } from '../../xdr/writer.ts';
import { parseConfig } from '../../server/config.ts';
import { startPagelife, type RunningServer } from '../../server/main.ts';
import {
  FSA_R,
  FSA_RW,
  FSM_DN,
  FSM_DW,
  NLM4_BLOCKED,
  NLM4_DENIED,
  NLM4_DENIED_NOLOCKS,
  NLM4_GRANTED,
  NLM4_STALE_FH,
  NLM_PROGRAM,
  NLMPROC,
} from '../../server/nlm/constants.ts';
import { encodeLock } from '../../server/nlm/xdr.ts';
import { NSM_PROGRAM, SMPROC, STAT_FAIL, STAT_SUCC } from '../../server/nsm/constants.ts';
import { NfsTestClient } from '../support/nfs-client.ts';
import { alockOf, ClientServices, NlmTestClient, type LockSpec } from '../support/nlm-client.ts';
import { testLog } from '../support/logger.ts';

let server: RunningServer;
let services: ClientServices;
let varDir: string;
let fh: Buffer;
let fh2: Buffer;
let port: number;

beforeAll(async () => {
  varDir = await mkdtemp(path.join(os.tmpdir(), 'pagelife-nlm-'));
  services = await ClientServices.start(testLog);
  const config = parseConfig(
    {
      varDir,
      nfsPort: 0,
      mountPort: 0,
      httpPort: 0,
      portmap: 'off',
      host: '127.0.0.1',
      pageCache: { pages: 256 },
      nlm: { clientPortmapPort: services.portmapPort, callbackTimeoutMs: 1000, grantedRetryMs: 200, grantedRetries: 2, limits: { maxLocksPerClient: 50, maxWaitersPerClient: 4 } },
      nsm: { maxMonitored: 12 },
    },
    'test',
  );
  server = await startPagelife(config, testLog);
  port = server.ports.mount;
  const nfs = await NfsTestClient.connect({ nfsPort: server.ports.nfs, mountPort: server.ports.mount });
  fh = await nfs.create('locked.txt');
  fh2 = await nfs.create('shared.txt');
  await nfs.close();
});

afterAll(async () => {
  await server?.close();
  await services?.close();
  if (varDir) await rm(varDir, { recursive: true, force: true });
});

const spec = (caller: string, svid: number, offset: bigint, length: bigint, file = () => fh): LockSpec => ({ caller, svid, oh: Buffer.from(`${caller}-${svid}`), fh: file(), offset, length });

/** Binds a random privileged port (root only), retrying when one is taken. */
async function onPrivilegedPort<T>(fn: (port: number) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(randomInt(600, 1024));
    } catch (e) {
      if ((e as { code?: string }).code !== 'EADDRINUSE' || attempt > 20) throw e;
    }
  }
}

/** Retries an assertion until it passes (the deadline only turns a hang into a failure). */
async function eventually(check: () => Promise<void>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function locksApi(): Promise<{ counts: { locks: number; waiters: number }; locks: { caller: string; offset: string; length: string; exclusive: boolean }[] }> {
  const r = await fetch(`http://127.0.0.1:${server.ports.http}/api/locks`);
  return (await r.json()) as never;
}

describe('NLM over TCP and UDP', () => {
  it('answers NULL in versions 1, 3 and 4 on both transports', async () => {
    for (const transport of ['tcp', 'udp'] as const) {
      const c = await RpcClient.connect({ host: '127.0.0.1', port, transport, timeoutMs: 3000 });
      for (const v of [1, 3, 4]) expect((await c.call(NLM_PROGRAM, v, NLMPROC.NULL)).remaining).toBe(0);
      await c.close();
    }
  });

  it('refuses a conflicting lock, reports the holder with 64-bit range, queues a blocking one and grants it by GRANTED callback', async () => {
    const a = await NlmTestClient.connect({ port });
    const b = await NlmTestClient.connect({ port, transport: 'udp' });
    const high = (1n << 40n) + 3n;
    const held = spec('host-a', 7, high, 100n);
    expect((await a.lock(held)).stat).toBe(NLM4_GRANTED);
    const want = spec('host-b', 9, high + 50n, 0n);
    const t = await b.test(want, false);
    expect(t.stat).toBe(NLM4_DENIED);
    expect(t.holder).toEqual({ exclusive: true, svid: 7, oh: held.oh, l_offset: high, l_len: 100n });
    expect((await b.lock(want)).stat).toBe(NLM4_DENIED);
    const cookie = Buffer.from('wait-for-it');
    expect((await b.lock(want, { block: true, cookie })).stat).toBe(NLM4_BLOCKED);
    expect((await locksApi()).counts).toMatchObject({ locks: 1, waiters: 1 });
    const before = services.granted().length;
    expect((await a.unlock({ ...held, offset: 0n, length: 0n })).stat).toBe(NLM4_GRANTED);
    const g = await services.until(() => services.granted()[before]);
    expect(g.cookie).toEqual(cookie);
    expect(g.alock).toMatchObject({ caller_name: 'host-b', svid: 9, l_offset: high + 50n, l_len: 0n });
    const api = await locksApi();
    expect(api.locks).toEqual([expect.objectContaining({ caller: 'host-b', offset: String(high + 50n), length: '0', exclusive: true })]);
    // The client re-sends its LOCK (as Linux does every 30 s): already held, so GRANTED.
    expect((await b.lock(want, { block: true })).stat).toBe(NLM4_GRANTED);
    expect((await b.unlock(want)).stat).toBe(NLM4_GRANTED);
    await a.close();
    await b.close();
  });

  it('releases a granted lock the client refuses in its GRANTED answer, and a blocked one it cancels', async () => {
    const a = await NlmTestClient.connect({ port });
    const held = spec('host-c', 1, 0n, 10n, () => fh2);
    expect((await a.lock(held)).stat).toBe(NLM4_GRANTED);
    const want = spec('host-d', 2, 5n, 1n, () => fh2);
    expect((await a.cancel(want)).stat).toBe(NLM4_DENIED);
    expect((await a.lock(want, { block: true })).stat).toBe(NLM4_BLOCKED);
    expect((await a.cancel(want)).stat).toBe(NLM4_GRANTED);
    expect((await locksApi()).counts.waiters).toBe(0);
    services.grantedAnswer = NLM4_DENIED;
    try {
      expect((await a.lock(want, { block: true })).stat).toBe(NLM4_BLOCKED);
      const before = services.granted().length;
      expect((await a.unlock(held)).stat).toBe(NLM4_GRANTED);
      await services.until(() => services.granted().length > before);
      await eventually(async () => expect((await locksApi()).counts.locks).toBe(0));
    } finally {
      services.grantedAnswer = NLM4_GRANTED;
    }
    expect((await a.test(spec('host-e', 1, 0n, 0n, () => fh2))).stat).toBe(NLM4_GRANTED);
    await a.close();
  });

  it('speaks 32-bit offsets in versions 1 and 3 and splits, merges and downgrades an owner\'s own locks', async () => {
    for (const vers of [1, 3]) {
      const c = await NlmTestClient.connect({ port, vers });
      const o = spec(`v${vers}`, 1, 0n, 100n);
      expect((await c.lock(o)).stat).toBe(NLM4_GRANTED);
      expect((await c.unlock({ ...o, offset: 40n, length: 20n })).stat).toBe(NLM4_GRANTED);
      expect((await c.lock({ ...o, offset: 90n, length: 0n }, { exclusive: false })).stat).toBe(NLM4_GRANTED);
      const other = await NlmTestClient.connect({ port, vers });
      expect((await other.test(spec('x', 1, 45n, 10n))).stat).toBe(NLM4_GRANTED);
      const t = await other.test(spec('x', 1, 50n, 0n), false);
      expect(t.holder).toMatchObject({ svid: 1, l_offset: 60n, l_len: 30n, exclusive: true });
      // A shared lock by another owner coexists with the shared tail.
      expect((await other.lock(spec('x', 1, 95n, 5n), { exclusive: false })).stat).toBe(NLM4_GRANTED);
      expect((await other.unlock(spec('x', 1, 0n, 0n))).stat).toBe(NLM4_GRANTED);
      expect((await c.unlock({ ...o, offset: 0n, length: 0n })).stat).toBe(NLM4_GRANTED);
      await c.close();
      await other.close();
    }
  });

  it('answers STALE_FH (version 4) or DENIED_NOLOCKS (version 1) for a handle it did not make', async () => {
    const bad = { ...spec('s', 1, 0n, 1n), fh: Buffer.alloc(44, 7) };
    const v4 = await NlmTestClient.connect({ port });
    expect((await v4.lock(bad)).stat).toBe(NLM4_STALE_FH);
    expect((await v4.test(bad)).stat).toBe(NLM4_STALE_FH);
    const v1 = await NlmTestClient.connect({ port, vers: 1 });
    expect((await v1.lock(bad)).stat).toBe(NLM4_DENIED_NOLOCKS);
    await v4.close();
    await v1.close();
  });

  it('sends the results of _MSG calls to the client\'s _RES procedures', async () => {
    const c = await NlmTestClient.connect({ port, transport: 'udp' });
    const cookie = Buffer.from('msg-cookie');
    const before = services.results(NLMPROC.LOCK_RES).length;
    const args = new XdrWriter().opaque(cookie).bool(false).bool(true);
    encodeLock(args, alockOf(spec('m', 1, 0n, 1n)), 4).bool(false).int32(1);
    // The _MSG call itself is answered void.
    expect((await c.rpc.call(NLM_PROGRAM, 4, NLMPROC.LOCK_MSG, args)).remaining).toBe(0);
    const res = await services.until(() => services.results(NLMPROC.LOCK_RES)[before]);
    expect(res).toEqual({ cookie, stat: NLM4_GRANTED });
    const w = new XdrWriter().opaque(Buffer.from('t')).bool(true);
    encodeLock(w, alockOf(spec('n', 1, 0n, 1n)), 4);
    await c.rpc.call(NLM_PROGRAM, 4, NLMPROC.TEST_MSG, w);
    const tr = await services.until(() => services.testResults().find((r) => r.cookie.toString() === 't'));
    expect(tr).toMatchObject({ stat: NLM4_DENIED, holder: { svid: 1, l_offset: 0n, l_len: 1n } });
    expect((await c.unlock(spec('m', 1, 0n, 0n))).stat).toBe(NLM4_GRANTED);
    await c.close();
  });

  it('holds DOS share reservations (SHARE/UNSHARE) and frees a client with FREE_ALL', async () => {
    const c = await RpcClient.connect({ host: '127.0.0.1', port, transport: 'tcp' });
    const share = (proc: number, caller: string, mode: number, access: number) =>
      c.call(NLM_PROGRAM, 4, proc, new XdrWriter().opaque(Buffer.from('c')).string(caller).opaque(fh2).opaque(Buffer.from(caller)).uint32(mode).uint32(access).bool(false)).then((r) => {
        r.opaque(1024);
        return r.uint32();
      });
    expect(await share(NLMPROC.SHARE, 'sh-a', FSM_DW, FSA_R)).toBe(NLM4_GRANTED);
    expect(await share(NLMPROC.SHARE, 'sh-b', FSM_DN, FSA_RW)).toBe(NLM4_DENIED);
    expect(await share(NLMPROC.SHARE, 'sh-b', FSM_DN, FSA_R)).toBe(NLM4_GRANTED);
    expect(await share(NLMPROC.UNSHARE, 'sh-a', FSM_DW, FSA_R)).toBe(NLM4_GRANTED);
    expect(await share(NLMPROC.SHARE, 'sh-c', FSM_DN, FSA_RW)).toBe(NLM4_GRANTED);
    // FREE_ALL: every lock of the named client goes.
    const n = await NlmTestClient.connect({ port });
    for (let i = 0; i < 5; i++) expect((await n.lock(spec('gone', i, BigInt(i * 10), 5n), { proc: NLMPROC.NM_LOCK })).stat).toBe(NLM4_GRANTED);
    expect((await locksApi()).locks.filter((l) => l.caller === 'gone')).toHaveLength(5);
    await c.call(NLM_PROGRAM, 4, NLMPROC.FREE_ALL, new XdrWriter().string('gone').int32(3));
    expect((await locksApi()).locks.filter((l) => l.caller === 'gone')).toHaveLength(0);
    await n.close();
    await c.close();
  });

  it('refuses locks and blocked requests past the per-client limits, and other clients are unaffected', async () => {
    const c = await NlmTestClient.connect({ port });
    const stats: number[] = [];
    for (let i = 0; i < 60; i++) stats.push((await c.lock(spec('greedy', 1, BigInt(i * 2), 1n))).stat);
    expect(stats.filter((s) => s === NLM4_GRANTED)).toHaveLength(50);
    expect(stats.slice(50).every((s) => s === NLM4_DENIED_NOLOCKS)).toBe(true);
    const blocked: number[] = [];
    for (let i = 0; i < 6; i++) blocked.push((await c.lock(spec('greedy-w', i, 0n, 1n), { block: true })).stat);
    expect(blocked.filter((s) => s === NLM4_BLOCKED)).toHaveLength(4);
    expect(blocked.slice(4)).toEqual([NLM4_DENIED_NOLOCKS, NLM4_DENIED_NOLOCKS]);
    expect((await c.lock(spec('modest', 1, 1n, 1n))).stat).toBe(NLM4_GRANTED);
    await c.rpc.call(NLM_PROGRAM, 4, NLMPROC.FREE_ALL, new XdrWriter().string('greedy').int32(3));
    await c.rpc.call(NLM_PROGRAM, 4, NLMPROC.FREE_ALL, new XdrWriter().string('greedy-w').int32(3));
    await c.rpc.call(NLM_PROGRAM, 4, NLMPROC.FREE_ALL, new XdrWriter().string('modest').int32(3));
    const metrics = await (await fetch(`http://127.0.0.1:${server.ports.http}/metrics`)).text();
    expect(metrics).toMatch(/^pagelife_nlm_locks \d+$/m);
    expect(metrics).toMatch(/^pagelife_nlm_blocked_locks 0$/m);
    await c.close();
  });

  it('answers malformed calls with GARBAGE_ARGS and unknown procedures with PROC_UNAVAIL', async () => {
    const c = await RpcClient.connect({ host: '127.0.0.1', port, transport: 'tcp' });
    const stat = async (prog: number, vers: number, proc: number, args: Buffer) => {
      const { reply } = await c.callRaw(prog, vers, proc, args, { cred: authSys() });
      return reply.kind === 'accepted' ? reply.stat : -1;
    };
    const truncated = new XdrWriter().opaque(Buffer.from('c')).toBuffer();
    for (const proc of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 20, 21, 22, 23]) expect(await stat(NLM_PROGRAM, 4, proc, truncated)).toBe(GARBAGE_ARGS);
    const badMode = new XdrWriter().opaque(Buffer.from('c')).string('x').opaque(fh).opaque(Buffer.from('o')).uint32(9).uint32(0).bool(false).toBuffer();
    expect(await stat(NLM_PROGRAM, 4, NLMPROC.SHARE, badMode)).toBe(GARBAGE_ARGS);
    const hugeName = new XdrWriter().uint32(0).uint32(0).uint32(0).uint32(100_000).toBuffer();
    expect(await stat(NLM_PROGRAM, 4, NLMPROC.LOCK, hugeName)).toBe(GARBAGE_ARGS);
    for (const proc of [1, 2, 3, 4, 6]) expect(await stat(NSM_PROGRAM, 1, proc, Buffer.from([0, 0, 0]))).toBe(GARBAGE_ARGS);
    expect(await stat(NLM_PROGRAM, 4, 17, Buffer.alloc(0))).toBe(PROC_UNAVAIL);
    expect(await stat(NLM_PROGRAM, 1, NLMPROC.SHARE, Buffer.alloc(0))).toBe(PROC_UNAVAIL);
    await c.close();
  });
});

describe('NSM', () => {
  const myId = (w: XdrWriter) => w.string('127.0.0.1').int32(NLM_PROGRAM).int32(4).int32(16);

  it('reports its state to anyone and refuses SM_MON from an unprivileged port', async () => {
    const c = await RpcClient.connect({ host: '127.0.0.1', port, transport: 'udp' });
    const st = await c.call(NSM_PROGRAM, 1, SMPROC.STAT, new XdrWriter().string('anyone'));
    expect(st.uint32()).toBe(STAT_SUCC);
    expect(st.int32() % 2).toBe(1);
    const mon = await c.call(NSM_PROGRAM, 1, SMPROC.MON, myId(new XdrWriter().string('peer-y')).fixedOpaque(Buffer.alloc(16)));
    expect(mon.uint32()).toBe(STAT_FAIL);
    await c.close();
  });

  it.runIf(process.getuid?.() === 0)('monitors for the local lock manager (privileged port) and calls it back on SM_NOTIFY', async () => {
    const c = await onPrivilegedPort((localPort) => RpcClient.connect({ host: '127.0.0.1', port, transport: 'udp', localPort }));
    const priv = Buffer.alloc(16, 0xab);
    const mon = await c.call(NSM_PROGRAM, 1, SMPROC.MON, myId(new XdrWriter().string('peer-x')).fixedOpaque(priv));
    expect(mon.uint32()).toBe(STAT_SUCC);
    // The registrant (here the test client's lockd, procedure 16 as Linux lockd has it) gets sm_status.
    await c.call(NSM_PROGRAM, 1, SMPROC.NOTIFY, new XdrWriter().string('peer-x').int32(5));
    const cb = await services.until(() => services.callbacks.find((x) => x.proc === 16));
    const r = new XdrReader(cb.args);
    expect([r.string(1024), r.int32(), r.fixedOpaque(16)]).toEqual(['peer-x', 5, priv]);
    await c.call(NSM_PROGRAM, 1, SMPROC.UNMON, myId(new XdrWriter().string('peer-x')));
    const before = services.callbacks.length;
    await c.call(NSM_PROGRAM, 1, SMPROC.NOTIFY, new XdrWriter().string('peer-x').int32(7));
    await new Promise((res) => setTimeout(res, 300));
    expect(services.callbacks.length).toBe(before);
    await c.close();
  });

  it('monitors a bounded number of clients, making room from those that hold nothing any more', async () => {
    const c = await NlmTestClient.connect({ port });
    const stats: number[] = [];
    for (let i = 0; i < 20; i++) stats.push((await c.lock(spec(`mon-${i}`, 1, BigInt(1000 + i), 1n))).stat);
    const granted = stats.filter((s) => s === NLM4_GRANTED).length;
    expect(granted).toBeGreaterThan(0);
    expect(granted).toBeLessThanOrEqual(12);
    expect(stats.slice(granted).every((s) => s === NLM4_DENIED_NOLOCKS)).toBe(true);
    for (let i = 0; i < granted; i++) expect((await c.unlock(spec(`mon-${i}`, 1, 0n, 0n))).stat).toBe(NLM4_GRANTED);
    expect((await c.lock(spec('mon-new', 1, 5000n, 1n))).stat).toBe(NLM4_GRANTED);
    expect((await c.unlock(spec('mon-new', 1, 0n, 0n))).stat).toBe(NLM4_GRANTED);
    await c.close();
  });

  it('frees the locks of a client whose statd says it rebooted', async () => {
    const a = await NlmTestClient.connect({ port });
    expect((await a.lock(spec('rebooter', 1, 0n, 0n))).stat).toBe(NLM4_GRANTED);
    const api = (await (await fetch(`http://127.0.0.1:${server.ports.http}/api/locks`)).json()) as { monitored: { monName: string }[] };
    expect(api.monitored.map((m) => m.monName)).toContain('rebooter');
    await a.rpc.call(NSM_PROGRAM, 1, SMPROC.NOTIFY, new XdrWriter().string('rebooter').int32(7));
    expect((await a.test(spec('other', 1, 0n, 0n))).stat).toBe(NLM4_GRANTED);
    await a.close();
  });
});
