// Issue 12 acceptance 5: 100,000 random and mutated NLM and NSM records (half over TCP, half over UDP)
// against `pagelife serve`. Every call is answered, nothing crashes or hangs, memory stays bounded,
// and the locks of a well-behaved client (calling from another address) are intact afterwards.
// GRANTED and _RES callbacks go to a client portmapper that never answers.
import dgram from 'node:dgram';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authSys, encodeCallHeader } from '../../rpc/index.ts';
import { XdrWriter } from '../../xdr/writer.ts';
import { NLM4_DENIED, NLM4_GRANTED, NLM_PROGRAM, NLMPROC } from '../../server/nlm/constants.ts';
import { encodeLock, encodeLockargs, encodeTestargs, type nlm4_lock } from '../../server/nlm/xdr.ts';
import { NSM_PROGRAM, SMPROC } from '../../server/nsm/constants.ts';
import { NfsTestClient } from '../support/nfs-client.ts';
import { NlmTestClient, type LockSpec } from '../support/nlm-client.ts';
import { isCall, sendCalls, sendDatagrams, sendEachAlone } from '../support/record-flood.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';

const RECORDS_PER_TRANSPORT = Number(process.env.FUZZ_N ?? 50_000);
const WINDOW = 32;
const STALL_MS = 10_000;
const RSS_GROWTH_LIMIT = 96 * 1024 * 1024;

let dir: string;
let server: ServerProcess;
let blackhole: dgram.Socket;
let templates: Buffer[] = [];
let keeperLocks: LockSpec[] = [];

const rssOf = (pid: number) => fs.readFile(`/proc/${pid}/status`, 'utf8').then((s) => Number(/VmRSS:\s+(\d+) kB/.exec(s)![1]) * 1024);

function call(prog: number, vers: number, proc: number, args: XdrWriter): Buffer {
  const w = encodeCallHeader(new XdrWriter(), { xid: 1, prog, vers, proc, cred: authSys({ machinename: 'fuzz' }) });
  return Buffer.concat([...w.toChunks(), ...args.toChunks()]);
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-nlm-fuzz-'));
  await fs.mkdir(path.join(dir, 'export'));
  for (const f of ['f', 'g']) await fs.writeFile(path.join(dir, 'export', f), 'x');
  // A client portmapper that swallows every callback.
  blackhole = dgram.createSocket('udp4');
  await new Promise<void>((r) => blackhole.bind(0, '127.0.0.1', () => r()));
  await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify({ nlm: { clientPortmapPort: blackhole.address().port, callbackTimeoutMs: 500, grantedRetryMs: 500, grantedRetries: 1 } }));
  // A small page cache, as the RPC fuzz uses: growth here is to show leaks in NLM/NSM, and with the
  // machine-sized default (512 MiB on a 24 GiB host) the same records read +106 to +120 MiB after
  // warm-up against +36 to +79 with 8 MiB (why is not yet known: see the README on slowloris memory).
  server = await startServer(['--export', path.join(dir, 'export'), '--var-dir', path.join(dir, 'var'), '--config', path.join(dir, 'config.json'), '--cache-pages', '2048', '--log-level', 'error']);
  const nfs = await NfsTestClient.connect({ nfsPort: server.ports.nfs, mountPort: server.ports.mount });
  const f = await nfs.lookup('f');
  const g = await nfs.lookup('g');
  await nfs.close();

  // The well-behaved client: its own address, its own name.
  keeperLocks = [
    { caller: 'keeper', svid: 1, oh: Buffer.from('k1'), fh: f, offset: 0n, length: 10n },
    { caller: 'keeper', svid: 1, oh: Buffer.from('k1'), fh: f, offset: 100n, length: 0n },
    { caller: 'keeper', svid: 2, oh: Buffer.from('k2'), fh: g, offset: 5n, length: 5n },
  ];
  const keeper = await NlmTestClient.connect({ port: server.ports.mount, localAddress: '127.0.0.2' });
  for (const l of keeperLocks) expect((await keeper.lock(l)).stat).toBe(NLM4_GRANTED);
  await keeper.close();

  const lock = (caller: string, fh: Buffer, offset: bigint, length: bigint): nlm4_lock => ({ caller_name: caller, fh, oh: Buffer.from(caller), svid: 7, l_offset: offset, l_len: length });
  const cookie = Buffer.from('fz');
  const lockargs = (v: number, block: boolean, l: nlm4_lock) => encodeLockargs(new XdrWriter(), { cookie, block, exclusive: true, alock: l, reclaim: false, state: 3 }, v);
  const share = (proc: number) => call(NLM_PROGRAM, 4, proc, new XdrWriter().opaque(cookie).string('fuzz-s').opaque(f).opaque(cookie).uint32(1).uint32(3).bool(false));
  templates = [];
  for (const v of [1, 3, 4]) {
    templates.push(
      call(NLM_PROGRAM, v, NLMPROC.NULL, new XdrWriter()),
      call(NLM_PROGRAM, v, NLMPROC.TEST, encodeTestargs(new XdrWriter(), { cookie, exclusive: true, alock: lock('fuzz-a', f, 0n, 0n) }, v)),
      call(NLM_PROGRAM, v, NLMPROC.LOCK, lockargs(v, false, lock('fuzz-a', f, 20n, 10n))),
      // Conflicts with the keeper: queued (a flood of blocked locks), never granted.
      call(NLM_PROGRAM, v, NLMPROC.LOCK, lockargs(v, true, lock('fuzz-b', f, 0n, 0n))),
      call(NLM_PROGRAM, v, NLMPROC.LOCK, lockargs(v, true, lock('fuzz-c', g, 50n, 1n))),
      call(NLM_PROGRAM, v, NLMPROC.CANCEL, encodeLock(new XdrWriter().opaque(cookie).bool(true).bool(true), lock('fuzz-b', f, 0n, 0n), v)),
      call(NLM_PROGRAM, v, NLMPROC.UNLOCK, encodeLock(new XdrWriter().opaque(cookie), lock('fuzz-a', f, 0n, 0n), v)),
      call(NLM_PROGRAM, v, NLMPROC.GRANTED, encodeTestargs(new XdrWriter(), { cookie, exclusive: true, alock: lock('fuzz-a', f, 0n, 1n) }, v)),
      call(NLM_PROGRAM, v, NLMPROC.LOCK_MSG, lockargs(v, false, lock('fuzz-d', g, 0n, 1n))),
      call(NLM_PROGRAM, v, NLMPROC.TEST_MSG, encodeTestargs(new XdrWriter(), { cookie, exclusive: false, alock: lock('fuzz-d', f, 0n, 0n) }, v)),
      call(NLM_PROGRAM, v, NLMPROC.GRANTED_RES, new XdrWriter().opaque(cookie).uint32(0)),
      call(NLM_PROGRAM, v, NLMPROC.TEST_RES, new XdrWriter().opaque(cookie).uint32(1).bool(true).int32(1).opaque(cookie).uint32(0).uint32(0)),
    );
  }
  templates.push(
    share(NLMPROC.SHARE),
    share(NLMPROC.UNSHARE),
    call(NLM_PROGRAM, 4, NLMPROC.NM_LOCK, lockargs(4, false, lock('fuzz-e', g, 0n, 2n))),
    call(NLM_PROGRAM, 4, NLMPROC.FREE_ALL, new XdrWriter().string('fuzz-a').int32(5)),
    call(NSM_PROGRAM, 1, SMPROC.NULL, new XdrWriter()),
    call(NSM_PROGRAM, 1, SMPROC.STAT, new XdrWriter().string('fuzz-a')),
    call(NSM_PROGRAM, 1, SMPROC.MON, new XdrWriter().string('fuzz-a').string('127.0.0.1').int32(100021).int32(4).int32(16).fixedOpaque(Buffer.alloc(16))),
    call(NSM_PROGRAM, 1, SMPROC.UNMON, new XdrWriter().string('fuzz-a').string('127.0.0.1').int32(100021).int32(4).int32(16)),
    call(NSM_PROGRAM, 1, SMPROC.UNMON_ALL, new XdrWriter().string('127.0.0.1').int32(100021).int32(4).int32(16)),
    call(NSM_PROGRAM, 1, SMPROC.SIMU_CRASH, new XdrWriter()),
    call(NSM_PROGRAM, 1, SMPROC.NOTIFY, new XdrWriter().string('fuzz-a').int32(9)),
  );
});

afterAll(async () => {
  await server?.stop();
  blackhole?.close();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** A template mutated (bytes flipped, cut, extended) or plain random bytes; the xid is set by the sender. */
function records(n: number, seed: number): Buffer[] {
  const mutated = fc.tuple(fc.nat({ max: templates.length - 1 }), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { maxLength: 6 }), fc.option(fc.nat()), fc.uint8Array({ maxLength: 64 }));
  const random = fc.uint8Array({ minLength: 0, maxLength: 600 }).map((a) => Buffer.from(a));
  const arb = fc.oneof(
    {
      weight: 6,
      arbitrary: mutated.map(([t, flips, cut, tail]) => {
        const b = Buffer.from(templates[t]!);
        for (const [pos, v] of flips) b[4 + (pos % Math.max(1, b.length - 4))] = v;
        const cutAt = cut === null ? b.length : 4 + (cut % Math.max(1, b.length - 3));
        return Buffer.concat([b.subarray(0, cutAt), Buffer.from(tail)]);
      }),
    },
    { weight: 1, arbitrary: random },
  );
  return fc.sample(arb, { numRuns: n, seed }).map((r, i) => {
    const b = Buffer.from(r);
    if (b.length >= 4) b.writeUInt32BE(i + 1, 0);
    return b;
  });
}

async function expectKeeperIntact(): Promise<void> {
  const api = (await (await fetch(`http://127.0.0.1:${server.ports.http}/api/locks`)).json()) as { locks: { caller: string; offset: string; length: string }[] };
  const mine = api.locks.filter((l) => l.caller === 'keeper').map((l) => `${l.offset}+${l.length}`).sort();
  expect(mine).toEqual(keeperLocks.map((l) => `${l.offset}+${l.length}`).sort());
  const probe = await NlmTestClient.connect({ port: server.ports.mount, localAddress: '127.0.0.3' });
  for (const l of keeperLocks) {
    const t = await probe.test({ ...l, caller: 'probe', svid: 99, oh: Buffer.from('probe') }, false);
    expect(t.stat).toBe(NLM4_DENIED);
    expect(t.holder?.oh).toEqual(l.oh);
  }
  await probe.close();
}

/** Sends the calls on one connection (WINDOW outstanding, each must be answered), and each non-call on its own connection (each must be closed). */
async function tcpRound(recs: Buffer[]): Promise<{ calls: number; others: number }> {
  const calls = recs.filter(isCall);
  expect(await sendCalls(server.ports.mount, calls, { window: WINDOW, stallMs: STALL_MS })).toBe(calls.length);
  // The rest (too short for a header, or not msg_type CALL): each closes its own connection.
  const others = recs.filter((r) => !isCall(r));
  expect(await sendEachAlone(server.ports.mount, others, { stallMs: STALL_MS })).toBe(others.length);
  return { calls: calls.length, others: others.length };
}

describe('NLM/NSM bad input (100,000 records)', () => {
  it('TCP: every call answered, every non-call closes its connection; keeper intact', async () => {
    const recs = records(RECORDS_PER_TRANSPORT, 12);
    // The first tenth warms the heap and the connection paths up; growth is measured over the rest.
    const warm = await tcpRound(recs.slice(0, RECORDS_PER_TRANSPORT / 10));
    const rss0 = await rssOf(server.proc.pid!);
    const rest = await tcpRound(recs.slice(RECORDS_PER_TRANSPORT / 10));
    const rss1 = await rssOf(server.proc.pid!);
    const api = (await (await fetch(`http://127.0.0.1:${server.ports.http}/api/locks`)).json()) as { counts: Record<string, number> };
    console.log(`nlm fuzz tcp: ${warm.calls + rest.calls} calls answered, ${warm.others + rest.others} non-calls closed their connection, rss +${((rss1 - rss0) / 2 ** 20).toFixed(1)} MiB after warm-up, ${JSON.stringify(api.counts)}`);
    expect(server.proc.exitCode).toBeNull();
    expect(rss1 - rss0).toBeLessThan(RSS_GROWTH_LIMIT);
    await expectKeeperIntact();
  });

  it('UDP: every call datagram answered; keeper intact', async () => {
    const recs = records(RECORDS_PER_TRANSPORT, 21);
    const rss0 = await rssOf(server.proc.pid!);
    const { answered, expected } = await sendDatagrams(server.ports.mount, recs, { window: WINDOW, stallMs: 2000 });
    const rss1 = await rssOf(server.proc.pid!);
    console.log(`nlm fuzz udp: ${answered}/${expected} calls answered, rss +${((rss1 - rss0) / 2 ** 20).toFixed(1)} MiB`);
    expect(server.proc.exitCode).toBeNull();
    expect(answered).toBe(expected);
    expect(rss1 - rss0).toBeLessThan(RSS_GROWTH_LIMIT);
    await expectKeeperIntact();
  });
});
