import net from 'node:net';
import { setImmediate as yieldToIo } from 'node:timers/promises';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { FastifyInstance } from 'fastify';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { buildHttpApp } from '../../server/http/app.ts';
import { EventStream, type EventStreamLimits } from '../../server/http/event-stream.ts';
import { PAGE_SIZE } from '../../server/pagecache/page-cache.ts';
import type { ConnectionSnapshot } from '../../server/reply/types.ts';
import type { ChromeTrace } from '../../server/telemetry/chrome-trace.ts';
import type { TelemetryDelta, TelemetrySnapshot } from '../../server/telemetry/telemetry.ts';
import { testLog } from '../support/logger.ts';
import { checkBeginEnd } from '../telemetry/trace-check.ts';
import { DEFAULT_FAULTS, memoryFile, SyntheticWorld } from '../telemetry/synthetic.ts';
import { MemoryFaults } from './memory-faults.ts';

type StreamMessage = { type: 'snapshot'; dropped: number; state: TelemetrySnapshot } | { type: 'delta'; dropped: number; delta: TelemetryDelta };

interface Harness {
  world: SyntheticWorld;
  faults: MemoryFaults;
  stream: EventStream;
  app: FastifyInstance;
}

const open: { close(): unknown }[] = [];

afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

async function harness(limits: Partial<EventStreamLimits> = {}, pages = 64, stateMaxAgeMs = 0): Promise<Harness> {
  const world = new SyntheticWorld({ pages });
  const faults = new MemoryFaults({ ...DEFAULT_FAULTS });
  const stream = new EventStream(world.telemetry, testLog, limits, false);
  const app = await buildHttpApp({ log: testLog, telemetry: world.telemetry, faults, stream, state: () => ({ ports: { nfs: 2049 } }), stateMaxAgeMs });
  open.push(app, world.telemetry);
  return { world, faults, stream, app };
}

/** A websocket client that parses and collects messages; `socket` is its TCP socket (to pause it). */
class Client {
  readonly messages: StreamMessage[] = [];
  private waiters: (() => void)[] = [];
  socket!: net.Socket;
  readonly ws: WebSocket;

  constructor(url: string) {
    this.ws = new WebSocket(url, {
      createConnection: (opts: unknown) => {
        this.socket = net.connect(opts as net.NetConnectOpts);
        return this.socket;
      },
    });
    this.ws.on('message', (data) => {
      this.messages.push(JSON.parse(String(data)) as StreamMessage);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async open(app: FastifyInstance): Promise<Client> {
    const { port } = app.server.address() as net.AddressInfo;
    const c = new Client(`ws://127.0.0.1:${port}/api/events`);
    open.push({ close: () => c.ws.terminate() });
    await new Promise<void>((resolve, reject) => {
      c.ws.once('open', () => resolve());
      c.ws.once('error', reject);
    });
    return c;
  }

  /** Resolves once `count` messages have arrived in all. */
  async received(count: number): Promise<StreamMessage[]> {
    while (this.messages.length < count) await new Promise<void>((r) => this.waiters.push(r));
    return this.messages;
  }
}

function connections(n: number): ConnectionSnapshot[] {
  return Array.from({ length: n }, (_, i) => ({
    id: i + 1,
    remote: `127.0.0.1:${700 + i}`,
    transport: 'tcp' as const,
    bytesInFlight: 1000 * i,
    cwnd: 14480,
    ssthresh: 65535,
    srttMs: 0.5,
    rtoMs: 200,
    retransmits: i,
    staleRetransmits: 0,
    dupAcksIn: 2 * i,
    pinnedReplies: 1,
  }));
}

describe('dashboard files', () => {
  it('serves the page, its module and stylesheet, and nothing else from the asset route', async () => {
    const { app } = await harness();
    const page = await app.inject('/');
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain('/assets/dashboard.js');
    const js = await app.inject('/assets/dashboard.js');
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
    expect(js.body.length).toBeGreaterThan(0);
    expect((await app.inject('/assets/dashboard.css')).headers['content-type']).toMatch(/^text\/css/);
    expect((await app.inject('/assets/..%2Fapp.ts')).statusCode).toBe(400);
  });
});

describe('GET /api/state and /api/pages/:pfn', () => {
  it('returns the telemetry snapshot with the server part', async () => {
    const { app, world } = await harness();
    const f = memoryFile('a', 16 * PAGE_SIZE);
    const r = await world.read({ file: f, offset: 0, count: 2 * PAGE_SIZE, leavePinned: true });
    world.telemetry.recordCall({ xid: 1, prog: 100003, progName: 'nfs', vers: 3, proc: 6, procName: 'READ', status: 'SUCCESS', drc: 'none', transport: 'tcp', remoteAddress: '127.0.0.1', micros: 5 });
    const res = await app.inject('/api/state');
    expect(res.statusCode).toBe(200);
    const s = res.json() as TelemetrySnapshot & { server: unknown };
    expect(s.server).toEqual({ ports: { nfs: 2049 } });
    expect(s.counters.calls).toEqual({ 'nfs.READ': 1 });
    expect(s.pageCache.grid[r.pfns[0]!]).toBe('p');
    expect(s.lifetimes.map((l) => l.destructor)).toEqual([r.destructor]);
    expect(s.mode).toBe('destructor');
    expect(s.faults).toEqual(DEFAULT_FAULTS);
  });

  it('builds the snapshot once per stateMaxAgeMs and answers every request within it with the same bytes', async () => {
    const call = { xid: 1, prog: 100003, progName: 'nfs', vers: 3, proc: 0, procName: 'NULL', status: 'SUCCESS', drc: 'none', transport: 'tcp', remoteAddress: '127.0.0.1', micros: 5 } as const;
    const calls = (r: { json(): unknown }) => (r.json() as TelemetrySnapshot).counters.calls['nfs.NULL'] ?? 0;
    const cached = await harness({}, 64, 60_000);
    const first = await cached.app.inject('/api/state');
    expect(first.headers['server-timing']).toMatch(/^build;dur=[\d.]+$/);
    cached.world.telemetry.recordCall(call);
    const second = await cached.app.inject('/api/state');
    expect(second.body).toBe(first.body);
    expect(second.headers['server-timing']).toMatch(/^build;dur=0, age;dur=[\d.]+$/);
    expect(calls(second)).toBe(0);
    const fresh = await harness({}, 64, 0);
    await fresh.app.inject('/api/state');
    fresh.world.telemetry.recordCall(call);
    expect(calls(await fresh.app.inject('/api/state'))).toBe(1);
  });

  it('gives one frame’s detail, 404 for a frame that does not exist, 400 for a bad pfn', async () => {
    const { app, world } = await harness();
    const r = await world.read({ file: memoryFile('a', 16 * PAGE_SIZE), offset: PAGE_SIZE, count: PAGE_SIZE, leavePinned: true });
    const d = await app.inject(`/api/pages/${r.pfns[0]}`);
    expect(d.json()).toMatchObject({ pfn: r.pfns[0], state: 'pinned', file: 'a', index: 1, offset: PAGE_SIZE, pins: 1 });
    expect((await app.inject('/api/pages/64')).statusCode).toBe(404);
    const bad = await app.inject('/api/pages/-1');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/pfn/);
  });
});

describe('fault API', () => {
  it('sets validated fault settings and one-off faults through the FaultApi', async () => {
    const { app, faults } = await harness();
    const set = await app.inject({ method: 'POST', url: '/api/faults', payload: { loss: 0.25, deviceHold: 40 } });
    expect(set.statusCode).toBe(200);
    expect(set.json()).toEqual({ ...DEFAULT_FAULTS, loss: 0.25, deviceHold: 40 });
    expect((await app.inject('/api/faults')).json()).toMatchObject({ loss: 0.25 });
    expect((await app.inject({ method: 'POST', url: '/api/faults/one-off', payload: { dropNext: 3, conn: 1 } })).statusCode).toBe(200);
    expect(faults.oneOffs).toEqual([{ dropNext: 3, conn: 1 }]);
  });

  it('answers 400 to out-of-range, unknown or empty settings and to faults the reply path rejects', async () => {
    const { app, faults } = await harness();
    for (const payload of [{ loss: 1.5 }, { bogus: 1 }, {}, { delay: -1 }, { loss: '0.1' }]) {
      const res = await app.inject({ method: 'POST', url: '/api/faults', payload });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
    }
    expect((await app.inject({ method: 'POST', url: '/api/faults/one-off', payload: { conn: 1 } })).statusCode).toBe(400);
    const rejected = await app.inject({ method: 'POST', url: '/api/faults/one-off', payload: { conn: 9, dropNext: 1 } });
    expect(rejected.statusCode).toBe(400);
    expect(rejected.json().message).toMatch(/no connection 9/);
    expect(faults.get()).toEqual(DEFAULT_FAULTS);
  });
});

describe('GET /metrics', () => {
  it('is Prometheus text that a third-party parser reads, every family typed and described', async () => {
    const { app, world } = await harness();
    world.conns = connections(2);
    world.telemetry.recordCall({ xid: 1, prog: 100003, progName: 'nfs', vers: 3, proc: 6, procName: 'READ', status: 'SUCCESS', drc: 'none', transport: 'tcp', remoteAddress: '127.0.0.1', micros: 5 });
    await world.read({ file: memoryFile('a', 16 * PAGE_SIZE), offset: 0, count: PAGE_SIZE, drop: true });
    const res = await app.inject('/metrics');
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const families = parsePrometheusTextFormat(res.body);
    const names = families.map((f) => f.name);
    expect(new Set(names).size).toBe(names.length);
    for (const f of families) expect(f.help.length, f.name).toBeGreaterThan(0);
    const byName = new Map(families.map((f) => [f.name, f]));
    expect(byName.get('pagelife_tcp_segments_retransmitted_total')).toMatchObject({ type: 'COUNTER', metrics: [{ value: '1' }] });
    expect(byName.get('pagelife_reply_pin_duration_seconds')).toMatchObject({ type: 'HISTOGRAM', metrics: [{ count: '1' }] });
    expect(byName.get('pagelife_connection_bytes_in_flight')!.metrics).toHaveLength(2);
    expect(byName.get('pagelife_dashboard_clients')).toMatchObject({ type: 'GAUGE', metrics: [{ value: '0' }] });
    // The text itself: one HELP and one TYPE line per family, before its samples.
    for (const name of names) {
      const help = res.body.indexOf(`# HELP ${name} `);
      const type = res.body.indexOf(`# TYPE ${name} `);
      expect(help, name).toBeGreaterThanOrEqual(0);
      expect(type, name).toBeGreaterThan(help);
      expect(res.body.indexOf(`\n${name}`), name).toBeGreaterThan(type);
    }
  });
});

describe('GET /api/trace', () => {
  it('is Trace Event Format JSON with matching begin/end pairs', async () => {
    const { app, world } = await harness();
    const f = memoryFile('a', 16 * PAGE_SIZE);
    await world.read({ file: f, offset: 0, count: PAGE_SIZE, leavePinned: true });
    await world.read({ file: f, offset: PAGE_SIZE, count: PAGE_SIZE, drop: true });
    await world.read({ file: f, offset: 0, count: PAGE_SIZE, conn: 2, holdMs: 30 });
    const res = await app.inject('/api/trace');
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const trace = JSON.parse(res.body) as ChromeTrace;
    expect(checkBeginEnd(trace)).toBe(3);
    expect(trace.traceEvents.filter((e) => e.ph === 'i').map((e) => e.name)).toEqual(expect.arrayContaining(['retransmit', 'drop', 'hold', 'ack']));
  });
});

describe('websocket /api/events', () => {
  it('sends a snapshot on connect, then one aggregated delta per tick', async () => {
    const { app, world, stream } = await harness();
    await app.listen({ port: 0, host: '127.0.0.1' });
    const f = memoryFile('a', 16 * PAGE_SIZE);
    await world.read({ file: f, offset: 0, count: PAGE_SIZE });
    const c = await Client.open(app);
    const first = (await c.received(1))[0]!;
    expect(first).toMatchObject({ type: 'snapshot', dropped: 0 });
    if (first.type !== 'snapshot') throw new Error('expected a snapshot');
    expect(first.state.lifetimes).toHaveLength(1);
    const reads = [];
    for (let i = 0; i < 5; i++) reads.push(await world.read({ file: f, offset: i * PAGE_SIZE, count: PAGE_SIZE, drop: i === 2 }));
    stream.tick();
    const second = (await c.received(2))[1]!;
    if (second.type !== 'delta') throw new Error('expected a delta');
    // Five READs between two ticks: one message carrying all of them.
    expect(second.delta.lifetimes.map((l) => l.destructor)).toEqual(expect.arrayContaining(reads.map((r) => r.destructor)));
    expect(second.delta.counters.retransmits).toBe(1);
    expect(second.delta.cells!.length).toBeGreaterThan(0);
    c.ws.send(JSON.stringify({ type: 'resync' }));
    const [, , third] = await c.received(3);
    expect(third!.type).toBe('snapshot');
  });

  it('keeps a stalled client within its queue and socket bounds while 10,000 READs run, and resyncs it after', async () => {
    const limits = { maxQueuedBatches: 16, maxQueuedBytes: 256 << 10, maxSocketBufferedBytes: 64 << 10 };
    const { app, world, stream } = await harness(limits, 1024);
    world.conns = connections(64);
    await app.listen({ port: 0, host: '127.0.0.1' });
    const stalled = await Client.open(app);
    const live = await Client.open(app);
    await stalled.received(1);
    await live.received(1);
    stalled.socket.pause();

    v8.setFlagsFromString('--expose_gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    const f = memoryFile('a', 1024 * PAGE_SIZE);
    let maxQueued = 0;
    let maxQueuedBytes = 0;
    let maxSocketBuffered = 0;
    const GROUPS = 10_000;
    const GROUPS_PER_TICK = 5;
    for (let i = 0; i < GROUPS; i++) {
      await world.read({ conn: 1 + (i % 64), file: f, offset: (i % 1000) * PAGE_SIZE, count: 2 * PAGE_SIZE, drop: i % 7 === 0, holdMs: i % 11 === 0 ? 5 : 0 });
      if (i % GROUPS_PER_TICK === GROUPS_PER_TICK - 1) {
        stream.tick();
        const s = stream.stats();
        maxQueued = Math.max(maxQueued, s.maxQueued);
        maxQueuedBytes = Math.max(maxQueuedBytes, s.maxQueuedBytes);
        maxSocketBuffered = Math.max(maxSocketBuffered, s.maxSocketBuffered);
        await yieldToIo();
      }
    }
    gc();
    const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
    const stats = stream.stats();
    expect(stats.deltas).toBe(GROUPS / GROUPS_PER_TICK);
    expect(stats.dropped).toBeGreaterThan(0);
    expect(maxQueued).toBeLessThanOrEqual(limits.maxQueuedBatches);
    expect(maxQueuedBytes).toBeLessThanOrEqual(limits.maxQueuedBytes);
    // The socket's unsent bytes: the bound plus at most one message sent while under it.
    const largestMessage = 1 << 20;
    expect(maxSocketBuffered).toBeLessThanOrEqual(limits.maxSocketBufferedBytes + largestMessage);
    // Generous: bounded telemetry, two clients' bounded queues and socket buffers, GC slack.
    expect(heapGrowth).toBeLessThan(64 << 20);

    // The live client was never held back by the stalled one.
    stream.tick();
    const liveMessages = await live.received(1 + stats.deltas + 1);
    expect(liveMessages.every((m) => m.dropped === 0)).toBe(true);

    stalled.socket.resume();
    stream.tick();
    while (!stalled.messages.some((m) => m.type === 'snapshot' && m.dropped > 0)) {
      await stalled.received(stalled.messages.length + 1);
      stream.tick();
    }
    const resync = stalled.messages.find((m) => m.type === 'snapshot' && m.dropped > 0)!;
    expect(resync.dropped).toBeGreaterThan(0);
    if (resync.type === 'snapshot') expect(resync.state.counters.replyPins).toBe(GROUPS);
  });

  it('refuses clients past the bound', async () => {
    const { app, stream } = await harness({ maxClients: 1 });
    await app.listen({ port: 0, host: '127.0.0.1' });
    await (await Client.open(app)).received(1);
    const second = await Client.open(app);
    const code = await new Promise<number>((resolve) => second.ws.once('close', (c) => resolve(c)));
    expect(code).toBe(1013);
    expect(stream.stats()).toMatchObject({ clients: 1, refused: 1 });
  });
});
