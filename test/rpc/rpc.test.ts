import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { XdrWriter } from '../../xdr/writer.ts';
import {
  AUTH_BADCRED,
  AUTH_BADVERF,
  AUTH_TOOWEAK,
  Dispatcher,
  DuplicateRequestCache,
  GARBAGE_ARGS,
  PROC_UNAVAIL,
  PROG_MISMATCH,
  PROG_UNAVAIL,
  RpcClient,
  RpcTcpServer,
  RpcUdpServer,
  SUCCESS,
  SYSTEM_ERR,
  authSys,
  recordMark,
  requireAuthSys,
  type RpcProgram,
} from '../../rpc/index.ts';
import { testLog } from '../support/logger.ts';
import { RC_CSUMLEN, type DrcCall, type DrcSlot } from '../../rpc/drc.ts';

const PROG = 0x20000099;
let executions = 0;

const program: RpcProgram = {
  prog: PROG,
  name: 'test',
  versions: new Map([
    [2, [{ name: 'NULL', handler: () => new XdrWriter() }]],
    [
      4,
      [
        { name: 'NULL', handler: () => new XdrWriter() },
        { name: 'ECHO', handler: (a) => new XdrWriter().opaque(a.opaque(1024)) },
        {
          name: 'FAIL',
          handler: () => {
            throw new Error('boom');
          },
        },
        { name: 'WHOAMI', handler: (_a, ctx) => new XdrWriter().uint32(requireAuthSys(ctx.cred).uid) },
        { name: 'COUNT', nonIdempotent: true, handler: (a) => new XdrWriter().uint32(++executions).uint32(a.uint32()) },
      ],
    ],
  ]),
};

const drc = new DuplicateRequestCache({ maxEntries: 100, maxBytes: 1 << 20 });
const dispatcher = new Dispatcher({ log: testLog, drc });
dispatcher.register(program);
const tcp = new RpcTcpServer({ dispatcher, log: testLog, name: 'test', limits: { maxRecord: 4096, maxInflight: 8, maxQueuedReplyBytes: 1 << 20, idleTimeoutMs: 0, replyReserveBytes: 4096 } });
const udp = new RpcUdpServer({ dispatcher, log: testLog, name: 'test' });
let tcpPort = 0;
let udpPort = 0;

beforeAll(async () => {
  tcpPort = await tcp.listen(0, '127.0.0.1');
  udpPort = await udp.listen(0, '127.0.0.1');
});
afterAll(async () => {
  await tcp.close();
  await udp.close();
});

for (const transport of ['tcp', 'udp'] as const) {
  describe(`RPC replies over ${transport}`, () => {
    let c: RpcClient;
    beforeAll(async () => {
      c = await RpcClient.connect({ host: '127.0.0.1', port: transport === 'tcp' ? tcpPort : udpPort, transport, timeoutMs: 3000 });
    });
    afterAll(() => c.close());

    it('SUCCESS with results', async () => {
      const r = await c.call(PROG, 4, 1, new XdrWriter().opaque(Buffer.from('hello')));
      expect(r.opaque(100).toString()).toBe('hello');
    });
    it('PROG_UNAVAIL', async () => {
      const { reply } = await c.callRaw(PROG + 1, 4, 0, Buffer.alloc(0));
      expect(reply).toMatchObject({ kind: 'accepted', stat: PROG_UNAVAIL });
    });
    it('PROG_MISMATCH with the lowest and highest versions', async () => {
      const { reply } = await c.callRaw(PROG, 3, 0, Buffer.alloc(0));
      expect(reply).toMatchObject({ kind: 'accepted', stat: PROG_MISMATCH, mismatch: { low: 2, high: 4 } });
    });
    it('PROC_UNAVAIL', async () => {
      const { reply } = await c.callRaw(PROG, 4, 77, Buffer.alloc(0));
      expect(reply).toMatchObject({ kind: 'accepted', stat: PROC_UNAVAIL });
    });
    it('GARBAGE_ARGS for undecodable arguments', async () => {
      const { reply } = await c.callRaw(PROG, 4, 1, new XdrWriter().uint32(5000));
      expect(reply).toMatchObject({ kind: 'accepted', stat: GARBAGE_ARGS });
    });
    it('SYSTEM_ERR when the procedure fails', async () => {
      const { reply } = await c.callRaw(PROG, 4, 2, Buffer.alloc(0));
      expect(reply).toMatchObject({ kind: 'accepted', stat: SYSTEM_ERR });
    });
    it('AUTH_TOOWEAK when a procedure needs AUTH_SYS; AUTH_SYS identity reaches it', async () => {
      const { reply } = await c.callRaw(PROG, 4, 3, Buffer.alloc(0));
      expect(reply).toMatchObject({ kind: 'auth-error', stat: AUTH_TOOWEAK });
      const r = await c.call(PROG, 4, 3, Buffer.alloc(0), { cred: authSys({ uid: 1234 }) });
      expect(r.uint32()).toBe(1234);
    });
    it('AUTH_BADCRED for an unknown flavour, a malformed AUTH_SYS body, and AUTH_SYS past its limits', async () => {
      const bad = [
        { flavor: 6, body: Buffer.alloc(8) },
        { flavor: 1, body: Buffer.alloc(6) },
        authSys({ machinename: 'm'.repeat(256) }),
        authSys({ gids: Array.from({ length: 17 }, (_, i) => i) }),
      ];
      for (const cred of bad) {
        const { reply } = await c.callRaw(PROG, 4, 0, Buffer.alloc(0), { cred });
        expect(reply).toMatchObject({ kind: 'auth-error', stat: AUTH_BADCRED });
      }
      const ok = await c.callRaw(PROG, 4, 0, Buffer.alloc(0), { cred: authSys({ machinename: 'm'.repeat(255), gids: Array.from({ length: 16 }, (_, i) => i) }) });
      expect(ok.reply).toMatchObject({ kind: 'accepted', stat: SUCCESS });
    });
  });
}

/** Raw call bytes (no record mark) with fields chosen by the test. */
function rawCall(f: { xid: number; rpcvers?: number; verfFlavor?: number; credLen?: number }): Buffer {
  const w = new XdrWriter().uint32(f.xid).uint32(0).uint32(f.rpcvers ?? 2).uint32(PROG).uint32(4).uint32(0);
  w.uint32(0).opaque(Buffer.alloc(f.credLen ?? 0));
  w.uint32(f.verfFlavor ?? 0).opaque(Buffer.alloc(0));
  return w.toBuffer();
}

async function rawExchange(payload: Buffer): Promise<{ data: Buffer; closed: boolean }> {
  const s = net.connect(tcpPort, '127.0.0.1');
  const chunks: Buffer[] = [];
  s.on('data', (d) => chunks.push(d));
  s.write(payload);
  const closed = await new Promise<boolean>((resolve) => {
    s.on('close', () => resolve(true));
    setTimeout(() => resolve(false), 300);
  });
  s.destroy();
  return { data: Buffer.concat(chunks), closed };
}

describe('RPC message header', () => {
  it('RPC_MISMATCH (2..2) for rpcvers other than 2', async () => {
    const call = rawCall({ xid: 77, rpcvers: 3 });
    const { data } = await rawExchange(Buffer.concat([recordMark(call.length), call]));
    // mark, xid, REPLY, MSG_DENIED, RPC_MISMATCH, low, high
    expect([...Array(7).keys()].map((i) => data.readUInt32BE(i * 4))).toEqual([0x80000018, 77, 1, 1, 0, 2, 2]);
  });
  it('AUTH_BADVERF for a verifier that is not AUTH_NONE; GARBAGE_ARGS for a credential body over 400 bytes', async () => {
    const call = rawCall({ xid: 78, verfFlavor: 1 });
    const { data } = await rawExchange(Buffer.concat([recordMark(call.length), call]));
    expect([1, 2, 3, 4].map((i) => data.readUInt32BE(i * 4))).toEqual([78, 1, 1, 1]);
    expect(data.readUInt32BE(20)).toBe(AUTH_BADVERF);
    const big = rawCall({ xid: 79, credLen: 404 });
    const r2 = await rawExchange(Buffer.concat([recordMark(big.length), big]));
    // accepted (0), verifier AUTH_NONE, GARBAGE_ARGS
    expect([1, 2, 3, 4, 5, 6].map((i) => r2.data.readUInt32BE(i * 4))).toEqual([79, 1, 0, 0, 0, GARBAGE_ARGS]);
  });
});

describe('record marking', () => {
  it('reassembles multi-fragment records with zero-length fragments, split anywhere', async () => {
    const call = rawCall({ xid: 90 });
    const frag = (b: Buffer, last: boolean) => {
      const h = Buffer.alloc(4);
      h.writeUInt32BE(((last ? 0x80000000 : 0) | b.length) >>> 0);
      return Buffer.concat([h, b]);
    };
    const stream = Buffer.concat([frag(Buffer.alloc(0), false), frag(call.subarray(0, 5), false), frag(Buffer.alloc(0), false), frag(call.subarray(5), true)]);
    const s = net.connect(tcpPort, '127.0.0.1');
    const got: Buffer[] = [];
    s.on('data', (d) => got.push(d));
    await new Promise((r) => s.once('connect', r));
    for (let i = 0; i < stream.length; i += 3) {
      s.write(stream.subarray(i, i + 3));
      await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, 100));
    s.destroy();
    const data = Buffer.concat(got);
    expect(data.readUInt32BE(4)).toBe(90);
    expect(data.readUInt32BE(24)).toBe(SUCCESS);
  });
  it('closes the connection on an over-limit record before buffering it', async () => {
    const h = Buffer.alloc(4);
    h.writeUInt32BE((0x80000000 | 5000) >>> 0);
    const { closed, data } = await rawExchange(Buffer.concat([h, Buffer.alloc(100)]));
    expect(closed).toBe(true);
    expect(data.length).toBe(0);
  });
  it('closes the connection on a record that is not a call', async () => {
    const reply = new XdrWriter().uint32(1).uint32(1).uint32(0).toBuffer();
    const { closed } = await rawExchange(Buffer.concat([recordMark(reply.length), reply]));
    expect(closed).toBe(true);
  });
});

describe('duplicate request cache', () => {
  it('answers a retransmission (same xid, same or new connection) from the cache, executing once', async () => {
    const a = await RpcClient.connect({ host: '127.0.0.1', port: tcpPort, transport: 'tcp' });
    const xid = a.allocXid();
    const before = executions;
    const args = new XdrWriter().uint32(42).toBuffer();
    const first = await a.callRaw(PROG, 4, 4, args, { xid });
    const again = await a.callRaw(PROG, 4, 4, args, { xid });
    await a.close();
    const b = await RpcClient.connect({ host: '127.0.0.1', port: tcpPort, transport: 'tcp' });
    const third = await b.callRaw(PROG, 4, 4, args, { xid });
    const other = await b.callRaw(PROG, 4, 4, new XdrWriter().uint32(43).toBuffer(), { xid });
    await b.close();
    expect(again.raw.equals(first.raw)).toBe(true);
    expect(third.raw.equals(first.raw)).toBe(true);
    expect(other.raw.equals(first.raw)).toBe(false);
    expect(executions - before).toBe(2);
    const stats = drc.stats();
    expect(stats.hits).toBeGreaterThanOrEqual(2);
  });
  it('keys on the credential and the first RC_CSUMLEN argument bytes themselves, and the length of the rest', () => {
    const c = new DuplicateRequestCache({ maxEntries: 100, maxBytes: 1 << 20 });
    const base: DrcCall = { remoteAddress: '10.0.0.1', xid: 7, prog: 100003, vers: 3, proc: 7, cred: Buffer.from('ab'), args: Buffer.alloc(RC_CSUMLEN + 44, 1), argsLength: 300 };
    const first = c.begin(base);
    if (first.kind !== 'miss') throw new Error(`expected a miss, got ${first.kind}`);
    c.complete(first.slot, Buffer.from('reply'));
    const found = (call: DrcCall): string => {
      const r = c.begin(call);
      if (r.kind === 'miss') c.abandon(r.slot);
      return r.kind;
    };
    expect(found({ ...base, args: Buffer.from(base.args) })).toBe('hit');
    // A byte moved from the credential to the arguments is another call.
    expect(found({ ...base, cred: Buffer.from('a'), args: Buffer.concat([Buffer.from('b'), base.args]) })).toBe('miss');
    // Bytes past RC_CSUMLEN are covered by the length only, as in knfsd.
    const later = Buffer.from(base.args);
    later[RC_CSUMLEN + 1] = 2;
    expect(found({ ...base, args: later })).toBe('hit');
    const early = Buffer.from(base.args);
    early[RC_CSUMLEN - 1] = 2;
    expect(found({ ...base, args: early })).toBe('miss');
    expect(found({ ...base, argsLength: 301 })).toBe('miss');
    for (const other of [{ remoteAddress: '10.0.0.2' }, { xid: 8 }, { prog: 100005 }, { vers: 2 }, { proc: 8 }, { cred: Buffer.from('ac') }]) {
      expect(found({ ...base, ...other })).toBe('miss');
    }
    // The misses above were abandoned: only the first call is left.
    expect(c.stats()).toMatchObject({ entries: 1, hits: 2 });
  });
  /** A call told apart from the others by its arguments only: every name shares one xid (one chain). */
  const named = (name: string): DrcCall => ({ remoteAddress: '10.0.0.1', xid: 1, prog: 100003, vers: 3, proc: 7, cred: Buffer.from('cred'), args: Buffer.from(name), argsLength: name.length });
  const begun = (c: DuplicateRequestCache, name: string): DrcSlot => {
    const r = c.begin(named(name));
    if (r.kind !== 'miss') throw new Error(`${name}: expected a miss, got ${r.kind}`);
    return r.slot;
  };
  it('evicts beyond its entry limit', () => {
    const small = new DuplicateRequestCache({ maxEntries: 3, maxBytes: 1 << 20 });
    for (let i = 0; i < 10; i++) small.complete(begun(small, `k${i}`), Buffer.alloc(10));
    expect(small.stats()).toMatchObject({ entries: 3, evictions: 7, bytes: 30 });
    expect(small.begin(named('k9')).kind).toBe('hit');
    expect(small.begin(named('k0')).kind).toBe('miss');
  });
  it('evicts the least recently used completed entry: a hit refreshes it, a call still executing stays', () => {
    const c = new DuplicateRequestCache({ maxEntries: 3, maxBytes: 1 << 20 });
    const executing = begun(c, 'executing');
    for (const k of ['b', 'c']) c.complete(begun(c, k), Buffer.alloc(4));
    expect(c.begin(named('b')).kind).toBe('hit');
    c.complete(begun(c, 'd'), Buffer.alloc(4));
    expect(c.stats()).toMatchObject({ entries: 3, evictions: 1, bytes: 8 });
    expect(c.begin(named('executing')).kind).toBe('in-progress');
    expect(c.begin(named('b')).kind).toBe('hit');
    expect(c.begin(named('d')).kind).toBe('hit');
    c.abandon(executing);
    expect(c.stats().entries).toBe(2);
    expect(c.begin(named('c')).kind).toBe('miss');
    expect(c.begin(named('executing')).kind).toBe('miss');
  });
  it('finds each of the calls that share an xid, and drops any of them from the chain', () => {
    const c = new DuplicateRequestCache({ maxEntries: 100, maxBytes: 1 << 20 });
    const slots = ['x', 'y', 'z'].map((k) => begun(c, k));
    c.complete(slots[0]!, Buffer.from('X'));
    c.complete(slots[2]!, Buffer.from('Z'));
    // The middle of the chain goes: the ends are still found.
    c.abandon(slots[1]!);
    const hit = (k: string): string => {
      const r = c.begin(named(k));
      return r.kind === 'hit' ? r.reply.toString() : r.kind;
    };
    expect(hit('x')).toBe('X');
    expect(hit('z')).toBe('Z');
    expect(hit('y')).toBe('miss');
    expect(c.stats().entries).toBe(3);
  });
});
