/**
 * `pagelife serve --record FILE`: watches a live session and, when the server stops, writes it as
 * a fixture — the export's files as they were at start, every call (by client address, with its
 * XID, file handles turned back into paths), the segments the path lost (as drop ranges of each
 * connection's stream, so the replay loses the same bytes however its timing differs), fault
 * changes and one-off holds made through the HTTP API, the time between calls, and what the
 * session showed (statuses, retransmissions, drops, stale bytes) as
 * the expectations of the mode it ran in.
 */
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { NetstackEvent } from '../../netstack/events.ts';
import { seqDiff } from '../../netstack/tcp/seq.ts';
import type { RpcReplyOut, TransportInfo } from '../../rpc/dispatch.ts';
import { decodeCall } from '../../rpc/message.ts';
import { REPLY_MODES } from '../config.ts';
import type { RunningServer } from '../main.ts';
import { NFSPROC3 } from '../nfs3/constants.ts';
import { contentOf, type Content } from './content.ts';
import { readReply } from './expect.ts';
import { PROGRAMS, procName, type ProgramName } from './procedures.ts';
import { FIXTURE_VERSION, type ArgItem, type FixtureInput, type Step } from './schema.ts';

/** Files larger than this (in all) are not snapshotted: the fixture would not be a fixture any more. */
export const RECORD_MAX_FILE_BYTES = 64 << 20;
/** Calls recorded at most; later ones are counted and left out (the fixture says so). */
export const RECORD_MAX_CALLS = 100_000;

/** NFS procedures whose arguments hold a second file handle after the first (RFC 1813 §3.3.14, §3.3.15). */
const SECOND_FH: Record<number, 'after-name' | 'next'> = { [NFSPROC3.RENAME]: 'after-name', [NFSPROC3.LINK]: 'next' };
const XDR_UNIT = 4;

interface RecordedCall {
  t: number;
  client: string;
  /** TCP connection (remote port), or 'udp'. */
  conn: string;
  step: Step & { do: 'call' | 'retransmit' };
  key: string;
  label: string;
}

interface Drop {
  conn: number;
  from: number;
  to: number;
}

export class SessionRecorder {
  private readonly files: Record<string, Content> = {};
  private readonly calls: RecordedCall[] = [];
  private readonly statuses = new Map<string, string>();
  private readonly clients = new Map<string, string>();
  /** Reply-path connection id → [client, remote port] and its stream start. */
  private readonly conns = new Map<number, { client: string; port: string; start: number }>();
  private readonly drops: Drop[] = [];
  private readonly seen = new Map<string, string>();
  /** Fault changes and one-off holds made while serving (the HTTP fault API), with their times. */
  private readonly pathSteps: { t: number; step: Step }[] = [];
  /** TCP connections by remote address: reply-path id and where the stream starts (connection-open). */
  private readonly opened = new Map<string, { id: number; start: number }>();
  /** Labels of calls still executing, by the dispatcher's call number. */
  private readonly labels = new Map<number, string>();
  /** File handles being turned back into paths; the fixture waits for them. */
  private readonly pending: Promise<void>[] = [];
  private leftOut = 0;
  private retransmits = 0;
  private staleRetransmits = 0;
  private destructorsFired = 0;
  private evictions = 0;
  private server: RunningServer | null = null;

  constructor(readonly file: string) {}

  /** Snapshots the export and starts watching (serve's started hook): a plain subscriber of the server's bus. */
  async start(server: RunningServer): Promise<void> {
    this.server = server;
    await this.snapshot(server.services.nfs.exports[0]!.dir);
    const { bus } = server;
    bus.on('segment-drop', (e) => this.onDrop(e));
    bus.on('segment-retransmit', () => this.retransmits++);
    bus.on('stale-retransmit', () => this.staleRetransmits++);
    bus.on('reply-release', () => this.destructorsFired++);
    bus.on('page-evict', () => this.evictions++);
    bus.on('faults-change', (e) => this.onFaults(e.set));
    bus.on('faults-one-off', (e) => this.onOneOff(e));
    bus.on('connection-open', (e) => this.opened.set(e.remote, { id: e.conn, start: e.streamStart }));
    bus.on('rpc-call', (e) => {
      const label = this.onCall(e.record, e.transport);
      if (label) this.labels.set(e.call, label);
    });
    bus.on('rpc-reply', (e) => {
      const label = this.labels.get(e.call);
      this.labels.delete(e.call);
      if (label && e.reply) this.onReply(label, e.reply);
    });
  }

  private async snapshot(root: string): Promise<void> {
    let total = 0;
    const walk = async (rel: string): Promise<void> => {
      for (const d of await readdir(path.join(root, rel), { withFileTypes: true })) {
        const r = rel === '' ? d.name : `${rel}/${d.name}`;
        if (d.isDirectory()) await walk(r);
        else if (d.isFile()) {
          const size = (await stat(path.join(root, r))).size;
          if (total + size > RECORD_MAX_FILE_BYTES) continue;
          total += size;
          this.files[r] = contentOf(await readFile(path.join(root, r)));
        }
      }
    };
    await walk('');
  }

  private clientOf(address: string): string {
    let c = this.clients.get(address);
    if (!c) this.clients.set(address, (c = `c${this.clients.size + 1}`));
    return c;
  }

  /**
   * A call record as a fixture step, labelled as it arrives; its handles become paths as soon as
   * they resolve (started before the call executes), the rest stays as it came.
   */
  private onCall(record: Buffer, t: TransportInfo): string | null {
    const d = decodeCall(record);
    if (d.kind !== 'call') return null;
    if (this.calls.length >= RECORD_MAX_CALLS) {
      this.leftOut++;
      return null;
    }
    const program: ProgramName | null = d.call.prog === PROGRAMS.nfs.prog ? 'nfs' : d.call.prog === PROGRAMS.mount.prog ? 'mount' : null;
    const proc = program && d.call.vers === PROGRAMS[program].vers ? procName(program, d.call.proc) : undefined;
    if (!program || !proc) return null;
    const client = this.clientOf(t.remoteAddress);
    const conn = t.transport === 'udp' ? 'udp' : String(t.remotePort);
    this.noteConnection(client, t);
    const key = `${client}|${record.toString('base64')}`;
    const now = this.now();
    const label = `call${this.calls.length + 1}`;
    const earlier = this.seen.get(key);
    if (earlier) {
      const prev = [...this.calls].reverse().find((c) => c.client === client && c.conn !== 'udp');
      const step: Step = { do: 'retransmit', client, of: earlier, label, connection: prev && prev.conn !== conn ? 'new' : 'same' };
      this.calls.push({ t: now, client, conn, step, key, label });
      return label;
    }
    this.seen.set(key, label);
    const step: Step & { do: 'call' } = { do: 'call', client, label, program, proc, args: [], xid: d.call.xid, transport: t.transport === 'udp' ? 'udp' : 'tcp' };
    this.calls.push({ t: now, client, conn, step, key, label });
    this.pending.push(
      this.argsOf(program, d.call.proc, record.subarray(d.call.argsOffset)).then((args) => {
        step.args = args;
      }),
    );
    return label;
  }

  /** The reply-path connection a TCP call came on, and where its stream starts (before its first reply). */
  private noteConnection(client: string, t: TransportInfo): void {
    if (t.transport !== 'tcp') return;
    const open = this.opened.get(`${t.remoteAddress}:${t.remotePort}`);
    if (!open || this.conns.has(open.id)) return;
    this.conns.set(open.id, { client, port: String(t.remotePort), start: open.start });
  }

  private async fhPath(fh: Buffer): Promise<string | null> {
    try {
      return (await this.server!.services.nfs.vfs.resolve(fh)).rel;
    } catch {
      return null;
    }
  }

  /** nfs_fh3 at the start of `args`: its path and the bytes after it, or null if it names nothing here. */
  private async leadingFh(args: Buffer): Promise<{ fh: string; rest: Buffer } | null> {
    if (args.length < XDR_UNIT) return null;
    const len = args.readUInt32BE(0);
    const end = XDR_UNIT + len + ((XDR_UNIT - (len % XDR_UNIT)) % XDR_UNIT);
    if (end > args.length) return null;
    const rel = await this.fhPath(args.subarray(XDR_UNIT, XDR_UNIT + len));
    return rel === null ? null : { fh: rel, rest: args.subarray(end) };
  }

  private async argsOf(program: ProgramName, proc: number, args: Buffer): Promise<ArgItem[]> {
    const raw = (b: Buffer): ArgItem[] => (b.length > 0 ? [{ fixed: { base64: b.toString('base64') } }] : []);
    if (program !== 'nfs' || proc === NFSPROC3.NULL) return raw(args);
    const first = await this.leadingFh(args);
    if (!first) return raw(args);
    const out: ArgItem[] = [{ fh: first.fh }];
    let rest = first.rest;
    const second = SECOND_FH[proc];
    if (second === 'after-name' && rest.length >= XDR_UNIT) {
      const n = rest.readUInt32BE(0);
      const nameEnd = XDR_UNIT + n + ((XDR_UNIT - (n % XDR_UNIT)) % XDR_UNIT);
      out.push(...raw(rest.subarray(0, nameEnd)));
      rest = rest.subarray(nameEnd);
    }
    if (second) {
      const fh2 = await this.leadingFh(rest);
      if (fh2) {
        out.push({ fh: fh2.fh });
        rest = fh2.rest;
      }
    }
    return [...out, ...raw(rest)];
  }

  private onReply(label: string, r: RpcReplyOut): void {
    const call = this.calls.find((c) => c.label === label);
    if (!call || call.step.do !== 'call') return;
    const s = call.step;
    const flat = Buffer.concat(r.chunks, r.length);
    this.statuses.set(label, readReply({ xid: s.xid ?? 0, program: s.program ?? 'nfs', proc: s.proc, args: [] }, flat).status);
  }

  private now(): number {
    return Math.round(this.server!.replies.clock.now());
  }

  /** Loss is left out: the segments it takes are recorded as drops. The seed is the fixture's. */
  private onFaults(partial: Parameters<RunningServer['replies']['setFaults']>[0]): void {
    const { loss: _loss, seed: _seed, ...set } = partial;
    if (Object.keys(set).length > 0) this.pathSteps.push({ t: this.now(), step: { do: 'faults', set } });
  }

  /** A one-off hold, on one connection or all; one-off drops show up as drops. */
  private onOneOff(o: { conn: number | null; holdNextMs: number }): void {
    if (!o.holdNextMs) return;
    const clients = new Set<string>();
    for (const [id, c] of this.conns) if (o.conn === null || o.conn === id) clients.add(c.client);
    for (const client of clients) this.pathSteps.push({ t: this.now(), step: { do: 'hold', client, ms: o.holdNextMs, count: 1, transport: 'tcp' } });
  }

  private onDrop(e: Extract<NetstackEvent, { type: 'segment-drop' }>): void {
    const c = this.conns.get(e.conn);
    if (!c || e.reason === 'window') return;
    this.drops.push({ conn: e.conn, from: seqDiff(e.seq, c.start), to: seqDiff(e.end, c.start) });
  }

  /** The session as a fixture (JSON text). */
  fixture(): string {
    const server = this.server!;
    const { config } = server;
    const steps: Step[] = [];
    let last = 0;
    const lastConn = new Map<string, string>();
    const dropsPlaced = new Set<number>();
    // Path steps go before calls of the same millisecond: the change came first or at once.
    const timeline = [...this.pathSteps.map((p) => ({ t: p.t, path: p.step })), ...this.calls.map((c) => ({ t: c.t, call: c }))].sort((a, b) => a.t - b.t);
    for (const entry of timeline) {
      if (entry.t > last) steps.push({ do: 'advance', ms: entry.t - last });
      last = Math.max(last, entry.t);
      if ('path' in entry) {
        steps.push(entry.path);
        continue;
      }
      const c = entry.call;
      const before = lastConn.get(c.client);
      if (c.conn !== 'udp' && before !== undefined && before !== c.conn && c.step.do === 'call') steps.push({ do: 'disconnect', client: c.client });
      if (c.conn !== 'udp') lastConn.set(c.client, c.conn);
      for (const [id, conn] of this.conns) {
        if (dropsPlaced.has(id) || conn.client !== c.client || conn.port !== c.conn) continue;
        dropsPlaced.add(id);
        steps.push(...this.dropSteps(id, c.client));
      }
      steps.push(c.step);
    }
    steps.push({ do: 'settle' });
    const replies: Record<string, { status: string }> = {};
    for (const [label, status] of this.statuses) replies[label] = { status };
    const f: FixtureInput = {
      $schema: 'https://pagelife.invalid/fixtures/schema-v1.json',
      version: FIXTURE_VERSION,
      name: path.basename(this.file, '.json').replace(/[^A-Za-z0-9_.-]/g, '-') || 'recorded',
      description: `Recorded by pagelife serve --record (${config.replyMode} mode)${this.leftOut ? `; ${this.leftOut} calls past ${RECORD_MAX_CALLS} left out` : ''}. Random losses are scripted as drop ranges; other random faults replay from the seed.`,
      config: { pageCache: config.pageCache, net: config.net, pinBudget: config.pinBudget, drc: config.drc },
      path: { ...config.faults, loss: 0 },
      files: this.files,
      steps,
      expect: {
        // Modes not run live are held to what holds in any mode (the statuses) and to what their
        // design guarantees (no stale retransmission but in legacy), so `replay --all-modes` runs.
        ...Object.fromEntries(REPLY_MODES.map((m) => [m, m === 'legacy' ? { replies } : { replies, end: { staleRetransmits: 0 } }])),
        [config.replyMode]: {
          replies,
          end: {
            drops: this.drops.length,
            // Every lost segment is sent again; how many more go out (a spurious RTO, go-back-N after
            // one) depends on real timing the replay's virtual clock does not reproduce.
            retransmits: { min: Math.min(this.drops.length, this.retransmits) },
            staleRetransmits: this.staleRetransmits,
            destructorsFired: this.destructorsFired,
            evictions: this.evictions,
          },
        },
      },
    };
    return `${JSON.stringify(f, null, 2)}\n`;
  }

  /** One connection's lost segments as drop ranges (a range lost k times: times k). */
  private dropSteps(conn: number, client: string): Step[] {
    const ranges = new Map<string, Step & { do: 'drop-range' }>();
    for (const d of this.drops) {
      if (d.conn !== conn) continue;
      const k = `${d.from}-${d.to}`;
      const r = ranges.get(k);
      if (r) r.times++;
      else ranges.set(k, { do: 'drop-range', client, from: d.from, to: Math.max(d.to, d.from + 1), times: 1 });
    }
    return [...ranges.values()];
  }

  async save(): Promise<void> {
    await Promise.all(this.pending);
    if (this.server) await writeFile(this.file, this.fixture());
  }
}
