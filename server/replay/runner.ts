/**
 * Replays one fixture in one reply mode: the whole server core (page cache, reply path, netstack,
 * DRC, NFS and MOUNT) on a virtual clock, in-process clients, a fresh export written from the
 * fixture. Each step runs to completion — a call is awaited (its file I/O is real), then the clock
 * runs whatever falls due at the current instant — so only the fixture moves time, and the same
 * fixture gives the same events, wire and verdict on every run.
 */
import { chmod, mkdir, mkdtemp, open, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { VirtualClock } from '../../netstack/clock.ts';
import type { TcpPair } from '../../netstack/connection.ts';
import type { NetstackEvent } from '../../netstack/events.ts';
import { PcapWriter } from '../../netstack/pcap.ts';
import type { RpcReplyOut } from '../../rpc/dispatch.ts';
import { parseConfig, type ReplyMode } from '../config.ts';
import { createCore, type ServerCore } from '../main.ts';
import { PAGE_SIZE, PageCacheFullError, type PageFrame } from '../pagecache/page-cache.ts';
import type { ReplyEvent } from '../reply/types.ts';
import type { ServerEvent, ServerEventType } from '../events.ts';
import { cacheKeyOf, fileSourceOf } from '../vfs/source.ts';
import { encodeCall, HandleResolver, readArgs, type CallSpec } from './call.ts';
import { ReplayClient } from './client.ts';
import { contentBytes } from './content.ts';
import { RunCounters, type CounterValues } from './counters.ts';
import { ReplayStepError } from './errors.ts';
import { checkExpectations, readReply, type CallRecord } from './expect.ts';
import { RunIds } from './ids.ts';
import { Canonicalizer } from './scrub.ts';
import { UdpCapture } from './udp-capture.ts';
import type { Fixture, Step } from './schema.ts';

/** `settle` advances the clock this much at a time until every connection is idle… */
export const SETTLE_QUANTUM_MS = 10;
/** …for at most this long (an RTO backed off to its ceiling, twice). */
export const SETTLE_MAX_MS = 240_000;
/** Files get this mtime (and each write-behind one second more), so a change is always a new version. */
const FILE_EPOCH_S = Date.UTC(2026, 0, 1) / 1000;
const FILE_MODE = 0o644;
const DIR_MODE = 0o755;
/** First XID of client N is N × this + 1 (unless a call names its own). */
const XID_STRIDE = 0x10000;
/** Netstack events too frequent for the step log (they are in `events`, and counted). */
const QUIET_EVENTS = new Set<string>(['skb-alloc', 'skb-free', 'skb-clone', 'skb-copy', 'frag-ref', 'frag-unref']);
/** Bus events that are not part of a run's trace (calls are in the step log; the rest is bookkeeping). */
const UNTRACED = new Set<ServerEventType>(['rpc-call', 'rpc-reply', 'page-free', 'connection-open', 'faults-change', 'faults-one-off']);

export interface ReplayOptions {
  mode: ReplyMode;
  /** Capture the simulated wire (pcapng) and the page lifetimes (Chrome trace). */
  pcap?: boolean;
  trace?: boolean;
  /** Name used in messages (the fixture's file). */
  source?: string;
}

export interface ReplayResult {
  fixture: string;
  mode: ReplyMode;
  pass: boolean;
  failures: string[];
  /** Step by step: each step, then what it caused. */
  log: string[];
  /** Every event of the run, ids renumbered (compare two runs with it). */
  events: string[];
  /** Labels of READs a client received bytes for that the file did not hold when the server answered. */
  torn: string[];
  end: CounterValues;
  virtualMs: number;
  wallMs: number;
  pcap: Buffer | null;
  trace: string | null;
}

/** A value in a log line; runs of consecutive numbers (a READ's page frames) as `a-b`. */
function fmt(v: unknown): string {
  if (!Array.isArray(v)) return String(v);
  const parts: string[] = [];
  for (let i = 0; i < v.length; ) {
    let j = i;
    while (typeof v[j] === 'number' && v[j + 1] === v[j] + 1) j++;
    parts.push(j - i >= 2 ? `${v[i]}-${v[j]}` : String(v[i]));
    if (j - i === 1) parts.push(String(v[j]));
    i = j + 1;
  }
  return `[${parts.join(',')}]`;
}

function describeStep(s: Step): string {
  switch (s.do) {
    case 'call':
      return `${s.client} ${s.transport === 'udp' ? 'udp ' : ''}${s.program === 'mount' ? 'MOUNT ' : ''}${s.proc}${s.label ? ` (${s.label})` : ''}`;
    case 'retransmit':
      return `${s.client} retransmits ${s.of}${s.connection === 'new' ? ' on a new connection' : ''}`;
    case 'faults':
      return `faults ${s.client ?? 'everywhere'} ${JSON.stringify(s.set)}`;
    case 'advance':
      return `advance ${s.ms} ms`;
    default: {
      const { do: op, ...rest } = s;
      return `${op} ${Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : fmt(v)}`).join(' ')}`;
    }
  }
}

class Run {
  readonly clock = new VirtualClock();
  readonly ids = new RunIds();
  readonly log: string[] = [];
  readonly events: string[] = [];
  readonly pairs: TcpPair[] = [];
  readonly clients = new Map<string, ReplayClient>();
  readonly calls = new Map<string, CallRecord>();
  /** The record each labelled call sent, for its retransmissions. */
  /** Each call as sent, and as the capture shows it (handles canonical, as in the replies). */
  private readonly records = new Map<string, { record: Buffer; wire: Buffer; transport: 'tcp' | 'udp' }>();
  /** Per client and xid, the label a reply is for (the latest send of that xid). */
  private readonly outstanding = new Map<string, CallRecord>();
  readonly checkpoints = new Map<string, CounterValues>();
  readonly canon = new Canonicalizer();
  counters!: RunCounters;
  core!: ServerCore;
  handles!: HandleResolver;
  private udpCapture: UdpCapture | null = null;
  /** A pcap is being written: calls are captured too. */
  private capturing = false;
  private writesBehind = 0;
  private unlabelled = 0;

  constructor(
    readonly fixture: Fixture,
    readonly opts: ReplayOptions,
    readonly exportDir: string,
  ) {}

  note(line: string): void {
    this.log.push(line);
  }

  /** The trace: netstack and reply-path events as they come, page events as page lines. */
  private onServerEvent = (e: ServerEvent): void => {
    switch (e.type) {
      case 'page-fill':
      case 'page-pin':
      case 'page-unpin':
        return this.onPage(e.type, e.frame);
      case 'page-evict':
        return this.onPage(e.type, e.frame, ` was=${this.ids.file(e.was.file)}:${e.was.index}`);
      case 'page-cow':
        return this.onPage(e.type, e.frame, ` copy=${e.replacement.pfn}`);
      case 'page-collapse':
        return this.onPage(e.type, e.frame, ` moved=${e.replacement.pfn}`);
      default:
        if (!UNTRACED.has(e.type)) this.onEvent(e as NetstackEvent | ReplyEvent);
    }
  };

  private onEvent(e: NetstackEvent | ReplyEvent): void {
    this.counters.event(e);
    const { type, t, ...rest } = e as { type: string; t: number } & Record<string, unknown>;
    const line = `${t} ${type} ${Object.entries(this.ids.record(rest)).map(([k, v]) => `${k}=${fmt(v)}`).join(' ')}`;
    this.events.push(line);
    if (!QUIET_EVENTS.has(type)) this.note(`    ${line}`);
  }

  private onPage(type: string, f: PageFrame, extra = ''): void {
    const line = `${this.clock.now()} ${type} pfn=${f.pfn} file=${this.ids.file(f.file ?? '')} index=${f.index}${extra}`;
    this.events.push(line);
    this.note(`    ${line}`);
  }

  async start(pcap: PcapWriter | null): Promise<void> {
    const f = this.fixture;
    this.udpCapture = pcap ? new UdpCapture(pcap) : null;
    this.capturing = pcap !== null;
    for (const [rel, c] of Object.entries(f.files)) {
      const abs = path.join(this.exportDir, rel);
      await mkdir(path.dirname(abs), { recursive: true, mode: DIR_MODE });
      await writeFile(abs, contentBytes(c));
      // Explicit modes and times: the umask and the clock of the machine must not show in replies.
      await chmod(abs, FILE_MODE);
      await utimes(abs, FILE_EPOCH_S, FILE_EPOCH_S);
    }
    await chmod(this.exportDir, DIR_MODE);
    const varDir = path.dirname(this.exportDir);
    // Read-ahead reads run on the host's I/O time, outside the virtual clock: a replay has none, so
    // what it shows happens at the same step in every run. Lifetimes are recorded from the first
    // step, for the trace export.
    const config = parseConfig(
      { ...f.config, pageCache: { ...f.config.pageCache, readaheadPages: 0 }, telemetry: { lifetimes: 'always' }, replyMode: this.opts.mode, faults: f.path, varDir, export: this.exportDir, portmap: 'off', logLevel: 'silent' },
      `fixture ${f.name}`,
    );
    const log = pino({ level: 'silent' });
    this.core = await createCore(config, this.clock, this.exportDir, log, pcap ? { pcap } : {});
    this.counters = new RunCounters(this.core, this.pairs);
    const exp = this.core.services.nfs.exports[0]!;
    this.handles = new HandleResolver(this.core.services.nfs.vfs, exp);
    for (const rel of Object.keys(f.files)) this.ids.nameFile(cacheKeyOf((await this.handles.node(rel)).st), rel);
    this.core.bus.on('*', this.onServerEvent);
  }

  client(name: string): ReplayClient {
    let c = this.clients.get(name);
    if (!c) {
      c = new ReplayClient(name, `10.0.1.${this.clients.size + 1}`, this.core, pino({ level: 'silent' }), this.pairs, this.udpCapture);
      this.clients.set(name, c);
    }
    return c;
  }

  private tcpPair(i: number, s: Step & { client: string }): TcpPair {
    const c = this.client(s.client);
    c.connect();
    return c.pair() ?? this.fail(i, s, 'no connection');
  }

  private fail(i: number, s: Step, why: string): never {
    throw new ReplayStepError(this.opts.source ?? this.fixture.name, i, s.do, why);
  }

  /** Sends one call record and its reply; records how the server took it. */
  private async send(i: number, s: Step, rec: CallRecord, record: Buffer, transport: 'tcp' | 'udp', wire: Buffer): Promise<string> {
    const c = this.client(rec.client);
    if (transport === 'tcp') c.connect();
    const hitsBefore = this.core.drc.stats().hits;
    if (this.capturing) c.captureCall(wire, transport);
    const r = await this.untilAnswered(this.core.dispatcher.dispatch(record, c.transport(transport)), () =>
      this.fail(i, s, `the call waited ${SETTLE_MAX_MS} ms of virtual time for pinned pages`),
    );
    if ('dropped' in r) {
      rec.sends.push({ drc: 'dropped', intact: null });
      return `dropped (${r.dropped})`;
    }
    const drc = this.core.drc.stats().hits > hitsBefore ? 'hit' : 'miss';
    const ra = readArgs(rec.spec);
    let intact: Buffer | null = null;
    if (ra) intact = await this.fileRange(ra.file, ra.offset, ra.count);
    rec.sends.push({ drc, intact });
    this.outstanding.set(`${rec.client}/${rec.spec.xid}`, rec);
    const out: RpcReplyOut = this.canon.reply(r, rec.spec.program, rec.spec.proc, (b) => this.core.pageCache.frameOf(b) !== null);
    if (transport === 'tcp') c.sendTcp(out);
    else c.sendUdp(out);
    return `xid ${rec.spec.xid} ${drc === 'hit' ? 'answered from the DRC' : 'executed'}, ${out.length} bytes of reply`;
  }

  /**
   * Awaits a call. One that waits for the network to let go of pages (a WRITE under
   * `pinnedWrite: wait`) needs virtual time to pass: the clock runs while — and only while — the
   * page cache has such a waiter, so file I/O in real time never moves it.
   */
  private async untilAnswered<T>(call: Promise<T>, stuck: () => never): Promise<T> {
    const cache = this.core.pageCache;
    const idle = cache.unpinWaiters;
    let answered = false;
    const settled = call.finally(() => (answered = true));
    for (let waited = 0; !answered; ) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (answered || cache.unpinWaiters <= idle) continue;
      if (waited >= SETTLE_MAX_MS) stuck();
      this.clock.advance(SETTLE_QUANTUM_MS);
      waited += SETTLE_QUANTUM_MS;
      this.collect();
    }
    return settled;
  }

  /** The bytes of a file range on disk now (what an intact READ reply carries). */
  private async fileRange(rel: string, offset: number, count: number): Promise<Buffer | null> {
    const h = await open(path.join(this.exportDir, rel), 'r').catch(() => null);
    if (!h) return null;
    try {
      const buf = Buffer.alloc(count);
      const { bytesRead } = await h.read(buf, 0, count, offset);
      return buf.subarray(0, bytesRead);
    } finally {
      await h.close();
    }
  }

  /** Replies arrive synchronously while the clock runs: give each to the call it answers. */
  collect(): void {
    for (const c of this.clients.values()) {
      for (const r of c.replies.splice(0)) {
        const rec = this.outstanding.get(`${c.name}/${r.xid}`);
        if (rec) {
          rec.replies.push(r.record);
          const { status, data } = readReply(rec.spec, r.record);
          this.note(`    → ${c.name} got the reply to ${rec.label} (xid ${r.xid}) at ${r.t} ms: ${status}${data ? `, ${data.length} data bytes` : ''}`);
        } else this.note(`    → ${c.name} got a reply to unknown xid ${r.xid}`);
      }
    }
  }

  /** Runs the clock to every timer due now. */
  private tick(): void {
    this.clock.advance(0);
    this.collect();
  }

  /** Every connection idle and no reply pinned. */
  quiet(): boolean {
    return this.pairs.every((p) => p.drained) && this.core.replies.inflightReplies() === 0;
  }

  settle(): boolean {
    for (let waited = 0; !this.quiet() && waited < SETTLE_MAX_MS; waited += SETTLE_QUANTUM_MS) {
      this.clock.advance(SETTLE_QUANTUM_MS);
      this.collect();
    }
    return this.quiet();
  }

  async step(i: number, s: Step): Promise<void> {
    this.note(`[${i}] ${this.clock.now()} ms: ${describeStep(s)}`);
    let outcome = '';
    switch (s.do) {
      case 'call': {
        const c = this.client(s.client);
        const xid = s.xid ?? ([...this.clients.keys()].indexOf(c.name) + 1) * XID_STRIDE + 1 + this.sentBy(c.name);
        const spec: CallSpec = { xid, program: s.program, proc: s.proc, args: s.args };
        const label = s.label ?? `#${++this.unlabelled}`;
        const rec: CallRecord = { label, client: s.client, spec, sends: [], replies: [] };
        this.calls.set(label, rec);
        let record: Buffer;
        let wire: Buffer;
        try {
          record = await encodeCall(spec, this.handles);
          wire = this.capturing ? await encodeCall(spec, { fh: async (p) => this.canon.handle(await this.handles.fh(p)) }) : record;
        } catch (e) {
          this.fail(i, s, `arguments: ${(e as Error).message}`);
        }
        this.records.set(label, { record, wire, transport: s.transport });
        outcome = await this.send(i, s, rec, record, s.transport, wire);
        break;
      }
      case 'retransmit': {
        const orig = this.records.get(s.of) ?? this.fail(i, s, `no call labelled ${s.of}`);
        const first = this.calls.get(s.of)!;
        const c = this.client(s.client);
        if (s.connection === 'new') c.disconnect();
        const label = s.label ?? `#${++this.unlabelled}`;
        const rec: CallRecord = { label, client: s.client, spec: first.spec, sends: [], replies: [] };
        this.calls.set(label, rec);
        outcome = await this.send(i, s, rec, orig.record, orig.transport, orig.wire);
        break;
      }
      case 'connect': {
        const c = this.client(s.client);
        c.consumeMode = s.consume;
        c.connect();
        outcome = `connection ${c.conn}`;
        break;
      }
      case 'disconnect':
        this.client(s.client).disconnect();
        break;
      case 'consume':
        this.client(s.client).consume();
        break;
      case 'pull':
        outcome = `${this.client(s.client).pull(s.bytes)} skbs pulled`;
        break;
      case 'drop': {
        const p = this.tcpPair(i, s);
        p.setFaults({ dropSegments: [...p.path.faults.dropSegments, ...s.segments.map((n) => p.path.dataSegments + n)] });
        break;
      }
      case 'drop-range': {
        const p = this.tcpPair(i, s);
        const base = this.client(s.client).streamStart;
        p.setFaults({ dropRanges: [...p.path.faults.dropRanges, { seq: (base + s.from) >>> 0, end: (base + s.to) >>> 0, times: s.times }] });
        break;
      }
      case 'hold': {
        const p = s.transport === 'udp' ? (this.client(s.client).udpPair() ?? this.fail(i, s, `client ${s.client} has no UDP flow yet: its first UDP call creates it`)) : this.tcpPair(i, s);
        p.holdNext(s.ms, s.count);
        break;
      }
      case 'faults':
        if (s.client === undefined) this.core.replies.setFaults(s.set);
        else {
          this.tcpPair(i, { ...s, client: s.client }).setFaults(s.set);
          this.client(s.client).udpPair()?.setFaults(s.set);
        }
        break;
      case 'write-behind': {
        const abs = path.join(this.exportDir, s.file);
        const h = await open(abs, 'r+').catch((e: Error) => this.fail(i, s, e.message));
        try {
          await h.write(contentBytes(s.content), 0, undefined, s.offset);
        } finally {
          await h.close();
        }
        const t = FILE_EPOCH_S + ++this.writesBehind;
        await utimes(abs, t, t);
        break;
      }
      case 'pressure':
        outcome = await this.pressure(i, s);
        break;
      case 'advance':
        this.clock.advance(s.ms);
        break;
      case 'settle':
        outcome = this.settle() ? 'quiet' : `not quiet after ${SETTLE_MAX_MS} ms`;
        break;
      case 'check':
        this.checkpoints.set(s.label, this.counters.now());
        outcome = Object.entries(this.checkpoints.get(s.label)!).filter(([, v]) => v !== 0).map(([k, v]) => `${k}=${v}`).join(' ');
        break;
    }
    if (outcome) this.note(`    ${outcome}`);
    this.tick();
  }

  private sentBy(client: string): number {
    let n = 0;
    for (const r of this.calls.values()) if (r.client === client) n++;
    return n;
  }

  /** A local reader reads the whole file through the page cache, page by page, until the cache is full. */
  private async pressure(i: number, s: Step & { do: 'pressure' }): Promise<string> {
    const n = await this.handles.node(s.file).catch((e: Error) => this.fail(i, s, e.message));
    this.ids.nameFile(cacheKeyOf(n.st), s.file);
    const pages = Math.ceil(Number(n.st.size) / PAGE_SIZE);
    const src = fileSourceOf(n);
    let read = 0;
    try {
      for (; read < pages; read++) {
        const [frame] = await this.core.pageCache.getPages(src, read, read);
        this.core.pageCache.unpin(frame!);
      }
    } catch (e) {
      if (!(e instanceof PageCacheFullError)) throw e;
    } finally {
      src.close();
    }
    return read < pages ? `read ${read} of ${pages} pages (the cache is full of pinned pages)` : `read ${pages} pages`;
  }

  async filesNow(): Promise<Map<string, Buffer | null>> {
    const out = new Map<string, Buffer | null>();
    for (const mode of Object.values(this.fixture.expect)) {
      for (const rel of Object.keys(mode?.files ?? {})) out.set(rel, await readFile(path.join(this.exportDir, rel)).catch(() => null));
    }
    return out;
  }
}

function isTorn(c: CallRecord): boolean {
  const intact = c.sends.find((s) => s.intact)?.intact ?? null;
  return intact !== null && c.replies.some((r) => {
    const data = readReply(c.spec, r).data;
    return data !== null && !data.equals(intact);
  });
}

/** Replays `fixture` in `opts.mode`; the verdict comes from this run only. */
export async function replay(fixture: Fixture, opts: ReplayOptions): Promise<ReplayResult> {
  const started = performance.now();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pagelife-replay-'));
  const exportDir = path.join(dir, 'export');
  await mkdir(exportDir);
  const pcap = opts.pcap ? new PcapWriter() : null;
  const run = new Run(fixture, opts, exportDir);
  try {
    await run.start(pcap);
    for (const [i, s] of fixture.steps.entries()) await run.step(i, s);
    const settled = run.settle();
    run.note(`[end] ${run.clock.now()} ms: ${settled ? 'quiet' : 'still busy'}`);
    const end = run.counters.now();
    const want = fixture.expect[opts.mode];
    const failures = want ? checkExpectations(want, { calls: run.calls, checkpoints: run.checkpoints, end, files: await run.filesNow() }) : [];
    if (!settled) failures.push(`end: not quiet after ${SETTLE_MAX_MS} ms of settling (a held consumer, or a peer that never acknowledges)`);
    if (!want) failures.push(`no expectations for mode ${opts.mode}`);
    const trace = opts.trace ? `${JSON.stringify(run.ids.trace(run.core.telemetry.chromeTrace()))}\n` : null;
    const virtualMs = run.clock.now();
    // Closing resets each connection: what is still queued is freed and its pages go back to the cache.
    run.core.replies.close();
    run.core.telemetry.close();
    return {
      fixture: fixture.name,
      mode: opts.mode,
      pass: failures.length === 0,
      failures,
      log: run.log,
      events: run.events,
      torn: [...run.calls.values()].filter(isTorn).map((c) => c.label),
      end,
      virtualMs,
      wallMs: performance.now() - started,
      pcap: pcap ? pcap.toBuffer() : null,
      trace,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
