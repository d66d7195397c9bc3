// Issue 2 acceptance 5: 100,000+ random and mutated records over TCP and UDP against `pagelife serve`.
// The server must answer each well-formed call (or close a TCP connection it cannot parse), never
// crash or hang, and keep its memory bounded.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { XdrWriter } from '../../xdr/writer.ts';
import { RpcClient, authSys, encodeCallHeader } from '../../rpc/index.ts';
import { isCall, sendCalls as sendCallsOn, sendDatagrams, sendEachAlone } from '../support/record-flood.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';

const RECORDS_PER_TRANSPORT = Number(process.env.FUZZ_N ?? 50_000);
const WINDOW = 32;
const STALL_MS = 5000;
/** Resident memory may grow by at most this much over the run (the page cache is preallocated). */
const RSS_GROWTH_LIMIT = 96 * 1024 * 1024;

let dir: string;
let server: ServerProcess;
let templates: Buffer[] = [];

function rssOf(pid: number): Promise<number> {
  return fs.readFile(`/proc/${pid}/status`, 'utf8').then((s) => Number(/VmRSS:\s+(\d+) kB/.exec(s)![1]) * 1024);
}

function call(xid: number, prog: number, vers: number, proc: number, args: XdrWriter): Buffer {
  const w = encodeCallHeader(new XdrWriter(), { xid, prog, vers, proc, cred: authSys({ uid: 1000, gid: 1000 }) });
  return Buffer.concat([...w.toChunks(), ...args.toChunks()]);
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-fuzz-'));
  await fs.mkdir(path.join(dir, 'd'));
  await fs.writeFile(path.join(dir, 'f'), Buffer.alloc(20000, 7));
  server = await startServer(['--export', dir, '--cache-pages', '2048', '--log-level', 'error']);
  const mnt = await RpcClient.connect({ host: '127.0.0.1', port: server.ports.mount, transport: 'tcp' });
  const res = await mnt.call(100005, 3, 1, new XdrWriter().string('/export'), { cred: authSys() });
  expect(res.uint32()).toBe(0);
  const fh = res.opaque(64);
  await mnt.close();
  const name = (n: string) => new XdrWriter().opaque(fh).string(n);
  templates = [
    call(1, 100003, 3, 0, new XdrWriter()),
    call(1, 100003, 3, 1, new XdrWriter().opaque(fh)),
    call(1, 100003, 3, 3, name('f')),
    call(1, 100003, 3, 4, new XdrWriter().opaque(fh).uint32(0x3f)),
    call(1, 100003, 3, 6, new XdrWriter().opaque(fh).uint64(0n).uint32(4096)),
    call(1, 100003, 3, 16, new XdrWriter().opaque(fh).uint64(0n).fixedOpaque(Buffer.alloc(8)).uint32(4096)),
    call(1, 100003, 3, 17, new XdrWriter().opaque(fh).uint64(0n).fixedOpaque(Buffer.alloc(8)).uint32(1024).uint32(8192)),
    call(1, 100003, 3, 19, new XdrWriter().opaque(fh)),
    call(1, 100005, 3, 1, new XdrWriter().string('/export')),
    call(1, 100005, 3, 5, new XdrWriter()),
    call(1, 100000, 2, 3, new XdrWriter().uint32(100003).uint32(3).uint32(6).uint32(0)),
  ];
});

afterAll(async () => {
  await server?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** A record: a template mutated (bytes flipped, cut, extended) or plain random bytes; a fresh xid. */
function records(n: number, seed: number): Buffer[] {
  const mutated = fc.tuple(fc.nat({ max: templates.length - 1 }), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { maxLength: 6 }), fc.option(fc.nat()), fc.uint8Array({ maxLength: 64 }));
  const random = fc.uint8Array({ minLength: 0, maxLength: 600 }).map((a) => Buffer.from(a));
  const arb = fc.oneof(
    { weight: 4, arbitrary: mutated.map(([t, flips, cut, tail]) => {
      const b = Buffer.from(templates[t]!);
      // Keep most xids intact (offset 0..3) so answers can be matched; mutations land after them.
      for (const [pos, v] of flips) b[4 + (pos % Math.max(1, b.length - 4))] = v;
      const cutAt = cut === null ? b.length : 4 + (cut % Math.max(1, b.length - 3));
      return Buffer.concat([b.subarray(0, cutAt), Buffer.from(tail)]);
    }) },
    { weight: 1, arbitrary: random },
  );
  return fc.sample(arb, { numRuns: n, seed });
}

/** Copies of the records, each starting with a distinct xid (those too short keep what they are). */
const withXids = (recs: Uint8Array[]) =>
  recs.map((r, i) => {
    const b = Buffer.from(r);
    if (b.length >= 4) b.writeUInt32BE(i + 1, 0);
    return b;
  });
/** Calls pipelined on one connection; the server must not close it. */
const sendCalls = (calls: Buffer[]) => sendCallsOn(server.ports.nfs, calls, { window: WINDOW, stallMs: STALL_MS });
/** Records that are not calls, each on its own connection; how many connections the server closed. */
const sendOthers = (others: Buffer[]) => sendEachAlone(server.ports.nfs, others, { stallMs: STALL_MS });

describe('bad input (100,000 records)', () => {
  it('TCP: every call is answered, every non-call closes its connection; memory stays bounded', async () => {
    const recs = withXids(records(RECORDS_PER_TRANSPORT, 42));
    const calls = recs.filter(isCall);
    const others = recs.filter((r) => !isCall(r));
    // The first tenth warms the server up (JIT, heap sizing, the page cache's first frames); memory
    // growth is measured over the rest (as `npm run bench fuzz` measures after its first 100,000).
    const warm = Math.floor(calls.length / 10);
    const warmOthers = Math.floor(others.length / 10);
    expect(await sendCalls(calls.slice(0, warm))).toBe(warm);
    expect(await sendOthers(others.slice(0, warmOthers))).toBe(warmOthers);
    const rss0 = await rssOf(server.proc.pid!);
    expect(await sendCalls(calls.slice(warm))).toBe(calls.length - warm);
    // Non-calls (too short for a header, or not msg_type CALL): each closes its own connection.
    expect(await sendOthers(others.slice(warmOthers))).toBe(others.length - warmOthers);

    const rss1 = await rssOf(server.proc.pid!);
    console.log(`fuzz tcp: ${calls.length} calls answered, ${others.length} non-calls closed, rss +${((rss1 - rss0) / 2 ** 20).toFixed(1)} MiB`);
    expect(server.proc.exitCode).toBeNull();
    expect(rss1 - rss0).toBeLessThan(RSS_GROWTH_LIMIT);
    const c = await RpcClient.connect({ host: '127.0.0.1', port: server.ports.nfs, transport: 'tcp' });
    await c.call(100003, 3, 0);
    await c.close();
  });

  it('UDP: every call datagram is answered; memory stays bounded', async () => {
    const recs = records(RECORDS_PER_TRANSPORT, 7);
    const rss0 = await rssOf(server.proc.pid!);
    const { answered, expected } = await sendDatagrams(server.ports.nfs, withXids(recs), { window: WINDOW, stallMs: 2000 });
    const rss1 = await rssOf(server.proc.pid!);
    expect(server.proc.exitCode).toBeNull();
    expect(answered).toBe(expected);
    expect(rss1 - rss0).toBeLessThan(RSS_GROWTH_LIMIT);
  });
});
