import dgram from 'node:dgram';
import net from 'node:net';
import pino, { type Logger } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { XdrWriter } from '../../xdr/writer.ts';
import { Dispatcher, RecordDecoder, RpcClient, RpcTcpServer, RpcUdpServer, encodeCallHeader, recordMark, type RpcProgram } from '../../rpc/index.ts';
import { AUTH_NONE } from '../../rpc/program.ts';
import { StreamBudget, type StreamBudgetLimits } from '../../rpc/stream-budget.ts';
import type { StreamLimits } from '../../rpc/tcp-connection.ts';
import { testLog } from '../support/logger.ts';
import { waitFor } from '../support/wait.ts';

const PROG = 0x20000077;
const BIG_REPLY = 256 * 1024;
let executed = 0;
/** HOLD calls wait on this until a test opens it. */
let gate: Promise<void> = Promise.resolve();

const program: RpcProgram = {
  prog: PROG,
  name: 'overload',
  versions: new Map([
    [
      1,
      [
        { name: 'NULL', handler: () => new XdrWriter() },
        {
          name: 'BIG',
          handler: () => {
            executed++;
            return new XdrWriter().opaque(Buffer.alloc(BIG_REPLY, 0x5a));
          },
        },
        {
          name: 'HOLD',
          handler: async () => {
            await gate;
            return new XdrWriter();
          },
        },
      ],
    ],
  ]),
};

const dispatcher = new Dispatcher({ log: testLog });
dispatcher.register(program);

const open: { server: RpcTcpServer; budget: StreamBudget; sockets: net.Socket[] }[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) {
    for (const s of o.sockets) s.destroy();
    await o.server.close();
    o.budget.close();
  }
});

async function start(limits: Partial<StreamLimits>, budgetLimits: Partial<StreamBudgetLimits> = {}, turnClock?: () => number, log: Logger = testLog) {
  const budget = new StreamBudget({ maxBufferedTotal: 64 << 20, bufferedPressureTotal: 32 << 20, maxQueuedReplyBytesTotal: 128 << 20, recordTimeoutMs: 30_000, inputPressureAgeMs: 5_000, maxConnections: 100, turnSliceMs: 4, ...budgetLimits }, log, Date.now, turnClock);
  const server = new RpcTcpServer({
    dispatcher,
    log: testLog,
    name: 'overload',
    budget,
    limits: { maxRecord: 1 << 20, maxInflight: 8, maxQueuedReplyBytes: 1 << 20, idleTimeoutMs: 0, replyReserveBytes: BIG_REPLY, ...limits },
  });
  const port = await server.listen(0, '127.0.0.1');
  const o = { server, budget, sockets: [] as net.Socket[] };
  open.push(o);
  const connect = async (): Promise<net.Socket> => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.on('error', () => undefined);
    o.sockets.push(s);
    await new Promise<void>((resolve) => s.once('connect', resolve));
    await waitFor(() => budget.stats().connections === o.sockets.filter((x) => !x.destroyed).length, 'the server to accept');
    return s;
  };
  return { server, budget, port, connect };
}

function callBody(xid: number, proc: number, padding = 0): Buffer {
  return Buffer.concat([...encodeCallHeader(new XdrWriter(), { xid, prog: PROG, vers: 1, proc, cred: { flavor: AUTH_NONE, body: Buffer.alloc(0) } }).toChunks(), Buffer.alloc(padding)]);
}

function call(xid: number, proc: number): Buffer {
  const body = callBody(xid, proc);
  return Buffer.concat([recordMark(body.length), body]);
}

const closedBy = (s: net.Socket) => new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));
const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('stream connections under overload', () => {
  it('stop reading a client that does not read its replies, then answer every call once it does', async () => {
    const { budget, connect } = await start({ maxInflight: 8, maxQueuedReplyBytes: 1 << 20 });
    const s = await connect();
    s.pause();
    const calls = 2000;
    executed = 0;
    s.write(Buffer.concat(Array.from({ length: calls }, (_, i) => call(i + 1, 1))));
    // The server executes until the kernel's buffers and its own reply limit are full, then stops.
    await waitFor(() => budget.stats().pausedConnections === 1 && executed > 0, 'the connection to pause');
    let before = -1;
    while (before !== executed) {
      before = executed;
      await settle(300);
    }
    const stats = budget.stats();
    expect(executed).toBeLessThan(calls);
    // Replies held: within the queue limit plus one reply (calls reserve a reply's size while executing).
    expect(stats.queuedReplyBytes).toBeLessThanOrEqual((1 << 20) + BIG_REPLY + 1024);
    expect(stats.inflight).toBe(0);
    // Read everything: every call is answered, in order, once.
    const dec = new RecordDecoder(1 << 20);
    const xids: number[] = [];
    s.on('data', (c: Buffer) => {
      for (const r of dec.push(c)) xids.push(r.readUInt32BE(0));
    });
    s.resume();
    await waitFor(() => xids.length === calls, 'every reply');
    expect(xids).toEqual(Array.from({ length: calls }, (_, i) => i + 1));
    expect(executed).toBe(calls);
    await waitFor(() => budget.stats().queuedReplyBytes === 0 && budget.stats().pausedConnections === 0, 'the queue to drain');
  });

  it('past a turn’s slice, stop reading and starting calls until the next turn, then answer every call in order', async () => {
    // A clock that moves 1 ms each time it is read: every turn's slice (2 ms) is spent after two calls.
    let t = 0;
    const { budget, connect } = await start({ maxInflight: 64, maxQueuedReplyBytes: 1 << 20 }, { turnSliceMs: 2 }, () => t++);
    const s = await connect();
    const dec = new RecordDecoder(1 << 20);
    const xids: number[] = [];
    s.on('data', (c: Buffer) => {
      for (const r of dec.push(c)) xids.push(r.readUInt32BE(0));
    });
    const calls = 300;
    s.write(Buffer.concat(Array.from({ length: calls }, (_, i) => call(i + 1, 0))));
    await waitFor(() => xids.length === calls, 'every reply');
    expect(xids).toEqual(Array.from({ length: calls }, (_, i) => i + 1));
    const st = budget.stats();
    // At most a few calls per turn: the 300 took many turns, none counted as backpressure.
    expect(st.turnYields).toBeGreaterThanOrEqual(calls / 4);
    expect(st.pauses).toBe(0);
  });

  it('keep a client that reads answered while another does not read at all', async () => {
    const { connect, port } = await start({ maxInflight: 4, maxQueuedReplyBytes: 512 * 1024 });
    const stalled = await connect();
    stalled.pause();
    stalled.write(Buffer.concat(Array.from({ length: 500 }, (_, i) => call(i + 1, 1))));
    const c = await RpcClient.connect({ host: '127.0.0.1', port, transport: 'tcp', timeoutMs: 5000 });
    try {
      for (let i = 0; i < 50; i++) expect((await c.call(PROG, 1, 1, Buffer.alloc(0))).opaque(BIG_REPLY).length).toBe(BIG_REPLY);
    } finally {
      c.close();
    }
  });

  it('past the total reply limit, stop reading the connections holding their share of it, and answer all once they read', async () => {
    const total = 1 << 20;
    const { budget, connect } = await start({ maxInflight: 8, maxQueuedReplyBytes: 1 << 20 }, { maxQueuedReplyBytesTotal: total });
    const calls = 200;
    const stalled = await Promise.all(Array.from({ length: 4 }, () => connect()));
    for (const s of stalled) {
      s.pause();
      s.write(Buffer.concat(Array.from({ length: calls }, (_, i) => call(i + 1, 1))));
    }
    await waitFor(() => budget.stats().pausedConnections === 4, 'all four to pause');
    await settle(300);
    // Each holds at most its share (total / connections holding replies) plus one reserved reply,
    // well under the 4 MiB their own limits would allow.
    const shares = 1 + 1 / 2 + 1 / 3 + 1 / 4;
    expect(budget.stats().queuedReplyBytes).toBeLessThanOrEqual(total * shares + 4 * (BIG_REPLY + 1024));
    const got = stalled.map(() => 0);
    stalled.forEach((s, k) => {
      const dec = new RecordDecoder(1 << 20);
      s.on('data', (c: Buffer) => (got[k]! += dec.push(c).length));
      s.resume();
    });
    await waitFor(() => got.every((n) => n === calls), 'every reply on every connection');
  });

  it('close the connections holding the largest partial records once all of them together pass the input budget', async () => {
    const { budget, connect } = await start({}, { maxBufferedTotal: 1 << 20 });
    const sizes = [100_000, 300_000, 500_000, 200_000];
    const conns: net.Socket[] = [];
    for (const n of sizes) {
      const s = await connect();
      const mark = Buffer.alloc(4);
      mark.writeUInt32BE((0x8000_0000 | 900_000) >>> 0);
      s.write(Buffer.concat([mark, Buffer.alloc(n)]));
      conns.push(s);
      await waitFor(() => budget.stats().bufferedBytes >= n || s.destroyed, 'the partial record to arrive');
    }
    // 100 + 300 + 500 kB fit in 1 MiB; the fourth takes the total past it and the 500 kB holder goes.
    await closedBy(conns[2]!);
    await settle(100);
    expect(conns.map((s) => s.destroyed)).toEqual([false, false, true, false]);
    const st = budget.stats();
    expect(st.closed['input-budget']).toBe(1);
    expect(st.bufferedBytes).toBeLessThanOrEqual(1 << 20);
    expect(st.connections).toBe(3);
  });

  it('under input pressure, stop reading the holders of partial records instead of closing them, answer a client whose records complete, and make room for a younger record by closing the oldest waiting holders', async () => {
    // What happened, in order: the server's closes for input pressure (its log), and the late record's answer.
    const events: string[] = [];
    const closes: { remote: string; held: number; ageMs: number }[] = [];
    const log = pino({ level: 'warn' }, {
      write: (line: string) => {
        const l = JSON.parse(line) as { msg: string; remote: string; held: number; ageMs: number };
        if (!/input pressure/.test(l.msg)) return;
        closes.push(l);
        events.push(`closed ${l.remote}`);
      },
    });
    const { budget, connect, port } = await start({}, { maxBufferedTotal: 4 << 20, bufferedPressureTotal: 1 << 20, recordTimeoutMs: 60_000, inputPressureAgeMs: 2000 }, undefined, log);
    const partial = (s: net.Socket, length: number, sent: number) => {
      const mark = Buffer.alloc(4);
      mark.writeUInt32BE((0x8000_0000 | length) >>> 0);
      s.write(Buffer.concat([mark, Buffer.alloc(sent)]));
    };
    // 8 × 800 kB of records that never complete: 6.4 MB, past the 4 MiB hard limit had all been
    // read. Started one after another, so their records' ages are in this order.
    const holders = await Promise.all(Array.from({ length: 8 }, () => connect()));
    const order = holders.map((h) => `closed 127.0.0.1:${h.localPort}`);
    for (const [i, s] of holders.entries()) {
      partial(s, 900_000, 800_000);
      await waitFor(() => budget.stats().bufferedBytes > 0, `holder ${i}'s record to start`);
      await settle(50);
    }
    // Each holder past the pressure point is read to its share and waits (the first may have been read whole).
    await waitFor(() => budget.stats().inputWaitingConnections >= 7, 'the holders to wait');
    let st = budget.stats();
    expect(st.closed['input-budget']).toBe(0);
    expect(st.bufferedBytes).toBeLessThan(4 << 20);
    const c = await RpcClient.connect({ host: '127.0.0.1', port, transport: 'tcp', timeoutMs: 5000 });
    try {
      await c.call(PROG, 1, 0, Buffer.alloc(0));
    } finally {
      c.close();
    }
    // Past the age limit with no younger record waiting, the holders keep waiting: none is closed.
    await waitFor(() => budget.stats().oldestInputWaitMs > 2500, 'the holders to pass the age limit');
    st = budget.stats();
    expect(st.connections).toBe(8);
    expect(st.closed['input-pressure']).toBe(0);
    // A whole record arriving now waits for room, and the oldest holders are closed to make it,
    // long before their record time limit (60 s).
    const late = await connect();
    const dec = new RecordDecoder(1 << 20);
    late.on('data', (b: Buffer) => events.push(...dec.push(b).map((r) => `late answered ${r.readUInt32BE(0)}`)));
    const body = callBody(42, 0, 800_000);
    late.write(Buffer.concat([recordMark(body.length), body]));
    await waitFor(() => events.some((e) => e.startsWith('late answered')), 'the late record to be answered');
    const closedBefore = events.slice(0, events.indexOf('late answered 42'));
    // Oldest first: the holders closed before the answer are the first ones started, in order, each
    // logged with what it held and its record's age.
    expect(closedBefore.length).toBeGreaterThan(0);
    expect(closedBefore).toEqual(order.slice(0, closedBefore.length));
    for (const c of closes) {
      expect(c.held).toBeGreaterThan(0);
      expect(c.ageMs).toBeGreaterThanOrEqual(2000);
    }
    st = budget.stats();
    expect(st.closed).toMatchObject({ 'input-budget': 0, 'record-timeout': 0, 'input-pressure': closes.length });
    expect(late.destroyed).toBe(false);
    expect(st.inputWaits).toBeGreaterThanOrEqual(9);
  });

  it('hold a partial record sent a byte at a time in memory proportional to it', async () => {
    const { budget, connect } = await start({});
    const s = await connect();
    s.setNoDelay(true);
    const mark = Buffer.alloc(4);
    mark.writeUInt32BE((0x8000_0000 | 500_000) >>> 0);
    s.write(mark);
    const sent = 100_000;
    for (let i = 0; i < sent; i += 100) {
      for (let k = 0; k < 100; k++) s.write(Buffer.of(k));
      await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => budget.stats().bufferedBytes >= sent, 'the bytes to arrive');
    expect(budget.stats().bufferedBytes).toBeLessThanOrEqual(2 * sent + 8192);
  });

  it('past the connection limit, close the connection idle longest to make room', async () => {
    const { budget, connect, port } = await start({}, { maxConnections: 3 });
    const talker = await connect();
    const quiet = await connect();
    await settle(20);
    // The first connection talks, so the second is the one idle longest.
    talker.write(call(1, 0));
    await settle(20);
    const third = await connect();
    const fourth = net.connect({ port, host: '127.0.0.1' });
    fourth.on('error', () => undefined);
    await closedBy(quiet);
    await waitFor(() => budget.stats().connections === 3, 'the fourth to be accepted');
    expect([talker.destroyed, third.destroyed, fourth.destroyed]).toEqual([false, false, false]);
    expect(budget.stats().closed['connection-limit']).toBe(1);
    fourth.destroy();
  });

  it('close a connection whose record does not complete in time, and one that stays idle', async () => {
    const { budget, connect } = await start({ idleTimeoutMs: 400 }, { recordTimeoutMs: 300 });
    const slow = await connect();
    const idle = await connect();
    const mark = Buffer.alloc(4);
    mark.writeUInt32BE((0x8000_0000 | 1000) >>> 0);
    slow.write(mark);
    // One byte every 100 ms keeps it from being idle, not from being late.
    const drip = setInterval(() => slow.write(Buffer.of(1)), 100);
    try {
      await Promise.all([closedBy(slow), closedBy(idle)]);
    } finally {
      clearInterval(drip);
    }
    expect(budget.stats().closed).toMatchObject({ 'record-timeout': 1, idle: 1 });
  });

  it('over UDP, drop datagrams whose bytes would pass the input held by executing calls, and take them again once those finish', async () => {
    let open!: () => void;
    gate = new Promise((r) => (open = r));
    const server = new RpcUdpServer({ dispatcher, log: testLog, name: 'overload-udp', maxInflight: 100, maxBufferedBytes: 3000 });
    const port = await server.listen(0, '127.0.0.1');
    const client = dgram.createSocket('udp4');
    const replies: number[] = [];
    client.on('message', (m) => replies.push(m.readUInt32BE(0)));
    try {
      // Four datagrams of ~940 bytes: three fit in 3000 bytes, the fourth is dropped.
      for (let xid = 1; xid <= 4; xid++) {
        client.send(callBody(xid, 2, 900), port, '127.0.0.1');
        await waitFor(() => server.inflight + server.droppedBytesLimit === xid, 'the datagram to be taken or dropped');
      }
      expect([server.inflight, server.droppedBytesLimit, server.dropped]).toEqual([3, 1, 0]);
      expect(server.bufferedBytes).toBeLessThanOrEqual(3000);
      open();
      await waitFor(() => replies.length === 3, 'the held calls to be answered');
      expect(server.bufferedBytes).toBe(0);
      client.send(callBody(5, 2, 900), port, '127.0.0.1');
      await waitFor(() => replies.length === 4, 'a datagram taken again');
      expect(replies.sort()).toEqual([1, 2, 3, 5]);
    } finally {
      open();
      client.close();
      await server.close();
    }
  });
});
