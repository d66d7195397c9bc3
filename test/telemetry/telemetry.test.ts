import { describe, expect, it } from 'vitest';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { PAGE_SIZE } from '../../server/pagecache/page-cache.ts';
import { Histogram } from '../../server/telemetry/histogram.ts';
import { Ring } from '../../server/telemetry/ring.ts';
import { Exposition } from '../../server/telemetry/exposition.ts';
import type { CallOutcome } from '../../rpc/dispatch.ts';
import { MOUNT_PROGRAM } from '../../server/mount/constants.ts';
import { NFS_PROGRAM } from '../../server/nfs3/constants.ts';
import type { TelemetrySnapshot } from '../../server/telemetry/telemetry.ts';
import { memoryFile, SyntheticWorld } from './synthetic.ts';
import { checkBeginEnd } from './trace-check.ts';

const FILE_SIZE = 64 * PAGE_SIZE;

function call(procName: string, prog = NFS_PROGRAM, drc: CallOutcome['drc'] = 'none'): CallOutcome {
  const progName = prog === MOUNT_PROGRAM ? 'mount' : 'nfs';
  return { xid: 1, prog, progName, vers: 3, proc: 6, procName, status: 'SUCCESS', drc, transport: 'tcp', remoteAddress: '127.0.0.1', micros: 10 };
}

describe('page lifetimes', () => {
  it('records pin, transmit, drop, retransmit, ACK and destructor for a lossy READ, in order', async () => {
    const w = new SyntheticWorld();
    const f = memoryFile('a', FILE_SIZE);
    const r = await w.read({ file: f, offset: 0, count: 3 * PAGE_SIZE, drop: true, rtoMs: 200, rttMs: 4 });
    const l = w.telemetry.snapshot().lifetimes.find((x) => x.destructor === r.destructor)!;
    expect(l.pfns).toEqual(r.pfns);
    // The file's three pages were not cached: the READ filled them first (the first and latest fill kept).
    expect(l.marks.map((m) => m.kind)).toEqual(['fill', 'fill', 'transmit', 'drop', 'retransmit', 'ack', 'fire']);
    expect(l.counts.fill).toBe(3);
    const retransmit = l.marks.find((m) => m.kind === 'retransmit')!;
    expect(l.releasedAt).not.toBeNull();
    // The retransmission stretched the pin: released only after it, by the ACK that followed.
    expect(l.releasedAt!).toBeGreaterThan(retransmit.t);
    expect(l.returnedAt).toBe(l.releasedAt);
    expect(l.heldMs).toBe(l.releasedAt! - l.pinnedAt);
    expect(l.mode).toBe('destructor');
    expect(l.holders).toEqual([]);
  });

  it('lists the skbs and clones holding a pinned reply, and forgets them when freed', async () => {
    const w = new SyntheticWorld();
    const f = memoryFile('a', FILE_SIZE);
    const r = await w.read({ file: f, offset: 0, count: PAGE_SIZE, holdMs: 50, leavePinned: true });
    const detail = w.telemetry.pageDetail(r.pfns[0]!)!;
    expect(detail.state).toBe('pinned');
    expect(detail.file).toBe('a');
    expect(detail.heldBy).toHaveLength(1);
    // The write-queue original; its transmitted clone was freed after the hold.
    expect(detail.heldBy[0]!.holders).toHaveLength(1);
    expect(detail.heldBy[0]!.marks.map((m: { kind: string }) => m.kind)).toEqual(['fill', 'transmit', 'hold']);
    expect(w.telemetry.pageDetail(10_000)).toBeUndefined();
  });

  it('in legacy mode shows the pages returned at once, the stale retransmit after that, the destructor last', async () => {
    const w = new SyntheticWorld();
    w.mode = 'legacy';
    const f = memoryFile('a', FILE_SIZE);
    const r = await w.read({ file: f, offset: 0, count: PAGE_SIZE, mode: 'legacy', drop: true, stale: true });
    const s = w.telemetry.snapshot();
    const l = s.lifetimes.find((x) => x.destructor === r.destructor)!;
    expect(l.returnedAt).toBe(l.pinnedAt);
    const stale = l.marks.find((m) => m.kind === 'stale-retransmit')!;
    expect(stale.t).toBeGreaterThan(l.returnedAt!);
    expect(l.releasedAt!).toBeGreaterThan(stale.t);
    expect(l.firedAt).toBe(l.releasedAt);
    expect(s.counters.staleRetransmits).toBe(1);
    // The cache could reuse the pages at once: a zero pin.
    expect(s.pinDuration.counts[0]).toBe(1);
    const spans = w.telemetry.chromeTrace().traceEvents.filter((e) => e.ph === 'B').map((e) => e.name.split(' xid')[0]);
    expect(spans).toEqual(['pinned', 'network only']);
  });

  it('marks the page fills of a READ that missed on its lifetime, bounded; a READ of cached pages has none', async () => {
    const w = new SyntheticWorld({ limits: { maxMarksPerLifetime: 8 } });
    const f = memoryFile('a', FILE_SIZE);
    const miss = await w.read({ file: f, offset: 0, count: 16 * PAGE_SIZE });
    const hit = await w.read({ file: f, offset: 0, count: 16 * PAGE_SIZE });
    const s = w.telemetry.snapshot();
    const missed = s.lifetimes.find((x) => x.destructor === miss.destructor)!;
    // Sixteen fills counted; kept as the first and the latest, like transmits and ACKs.
    expect(missed.counts.fill).toBe(16);
    const fills = missed.marks.filter((m) => m.kind === 'fill');
    expect(fills).toHaveLength(2);
    for (const m of fills) {
      expect(m.t).toBeLessThanOrEqual(missed.pinnedAt);
      expect(m.n).toBeGreaterThanOrEqual(0);
    }
    expect(s.counters.pageFills).toBe(16);
    const cached = s.lifetimes.find((x) => x.destructor === hit.destructor)!;
    expect(cached.counts.fill).toBeUndefined();
    expect(cached.marks.some((m) => m.kind === 'fill')).toBe(false);
  });

  it('forgets a fill whose pages went back unlent (copy mode), so a later READ of them shows none', async () => {
    const w = new SyntheticWorld();
    const f = memoryFile('a', FILE_SIZE);
    // A copy-mode READ: pages filled, copied, unpinned; no reply was pinned.
    for (const frame of await w.cache.getPages(f, 0, 1)) w.cache.unpin(frame);
    const r = await w.read({ file: f, offset: 0, count: 2 * PAGE_SIZE });
    const l = w.telemetry.snapshot().lifetimes.find((x) => x.destructor === r.destructor)!;
    expect(w.telemetry.snapshot().counters.pageFills).toBe(2);
    expect(l.marks.some((m) => m.kind === 'fill')).toBe(false);
  });

  it("the stream's snapshot carries the newest lifetimes and older stale ones, bounded; /api/state's carries all", async () => {
    const w = new SyntheticWorld({ limits: { maxStreamSnapshotLifetimes: 5, maxStreamSnapshotStaleLifetimes: 1 } });
    w.mode = 'legacy';
    const f = memoryFile('a', FILE_SIZE);
    const stale = [];
    for (let i = 0; i < 2; i++) stale.push(await w.read({ file: f, offset: i * PAGE_SIZE, count: PAGE_SIZE, mode: 'legacy', drop: true, stale: true }));
    const plain = [];
    for (let i = 0; i < 12; i++) plain.push(await w.read({ file: f, offset: (i % 8) * PAGE_SIZE, count: PAGE_SIZE, mode: 'legacy' }));
    const open = await w.read({ file: f, offset: 0, count: PAGE_SIZE, mode: 'legacy', leavePinned: true });
    expect(w.telemetry.snapshot().lifetimes).toHaveLength(15);
    const s = w.telemetry.streamSnapshot();
    // The latest stale one (older than the newest five), then the newest five, the open one last.
    expect(s.lifetimes.map((l) => l.destructor)).toEqual([stale[1]!.destructor, ...plain.slice(-4).map((r) => r.destructor), open.destructor]);
    expect(s.counters).toEqual(w.telemetry.snapshot().counters);
  });

  it("/api/state's text is the snapshot's JSON, and a lifetime serialized before shows its later changes", async () => {
    const w = new SyntheticWorld();
    const f = memoryFile('a', FILE_SIZE);
    const done = await w.read({ file: f, offset: 0, count: 2 * PAGE_SIZE });
    const open = await w.read({ file: f, offset: 2 * PAGE_SIZE, count: PAGE_SIZE, leavePinned: true });
    const server = { ports: { nfs: 2049 } };
    const text = () => JSON.parse(w.telemetry.snapshotBody(server).toString()) as TelemetrySnapshot & { server: unknown };
    expect(text()).toEqual({ ...w.telemetry.snapshot(), server });
    // Both lifetimes' texts are kept now; a netstack event on the open one must show in the next text.
    w.net.emit({ type: 'segment-drop', conn: 1, t: w.t, seq: open.seq, end: open.end, reason: 'loss' });
    const after = text();
    expect(after.lifetimes.find((l) => l.destructor === open.destructor)!.marks.some((m) => m.kind === 'drop')).toBe(true);
    expect(after).toEqual({ ...w.telemetry.snapshot(), server });
    expect(after.lifetimes.map((l) => l.destructor)).toEqual([done.destructor, open.destructor]);
    // A lifetime that begins after the array's bytes were kept shows in the next text too.
    const late = await w.read({ file: f, offset: 3 * PAGE_SIZE, count: PAGE_SIZE });
    expect(text().lifetimes.map((l) => l.destructor)).toEqual([done.destructor, late.destructor, open.destructor]);
    expect(text()).toEqual({ ...w.telemetry.snapshot(), server });
  });

  it('adopts what the netstack reported before the pin was announced', async () => {
    const w = new SyntheticWorld();
    const r = await w.read({ file: memoryFile('a', FILE_SIZE), offset: 0, count: PAGE_SIZE, leavePinned: true });
    const l = w.telemetry.snapshot().lifetimes[0]!;
    expect(l.destructor).toBe(r.destructor);
    // The fill, frag-ref and the transmit came before reply-pin (as getPages and sendpage do it).
    expect(l.marks.map((m) => m.kind)).toEqual(['fill', 'transmit']);
    expect(l.holders).toEqual([1]);
    expect(w.telemetry.sizes().pending).toBe(0);
  });

  it('keeps first and latest of frequent marks, and every rare one', async () => {
    const w = new SyntheticWorld();
    const f = memoryFile('a', FILE_SIZE);
    const r = await w.read({ file: f, offset: 0, count: PAGE_SIZE, leavePinned: true });
    for (let i = 0; i < 10; i++) {
      w.t++;
      w.net.emit({ type: 'segment-transmit', conn: 1, t: w.t, seq: r.end + i * 10, end: r.end + i * 10 + 10, skb: 900 + i, destructors: [r.destructor] });
    }
    const l = w.telemetry.snapshot().lifetimes.find((x) => x.destructor === r.destructor)!;
    expect(l.counts.transmit).toBe(11);
    expect(l.marks.filter((m) => m.kind === 'transmit').map((m) => m.skb)).toEqual([2, 909]);
  });
});

describe('page grid', () => {
  it('shows free, clean, pinned, copy-on-write and orphaned frames', async () => {
    const w = new SyntheticWorld({ pages: 16 });
    const f = memoryFile('a', FILE_SIZE);
    await w.read({ file: f, offset: 0, count: PAGE_SIZE });
    const pinned = await w.read({ file: f, offset: PAGE_SIZE, count: PAGE_SIZE, leavePinned: true });
    w.write(f, PAGE_SIZE, Buffer.from('new bytes'));
    const orphaned = await w.read({ file: f, offset: 2 * PAGE_SIZE, count: PAGE_SIZE, orphan: true });
    const s = w.telemetry.snapshot();
    const grid = s.pageCache.grid;
    expect(grid).toHaveLength(16);
    expect(grid[0]).toBe(s.pageCache.codes.clean);
    // The pinned frame was written: it is now a detached copy-on-write original, its copy is dirty.
    expect(grid[pinned.pfns[0]!]).toBe(s.pageCache.codes.cow);
    expect(grid).toContain(s.pageCache.codes.dirty);
    expect(grid[orphaned.pfns[0]!]).toBe(s.pageCache.codes.orphan);
    expect(grid[15]).toBe(s.pageCache.codes.free);
    expect(s.counters.cow).toBe(1);
    expect(s.counters.pinOrphans).toBe(1);
  });

  it('sends changed cells in a delta, or the whole grid past the bound', async () => {
    const w = new SyntheticWorld({ pages: 32, limits: { maxCellChangesPerDelta: 4 } });
    const f = memoryFile('a', FILE_SIZE);
    w.telemetry.delta();
    const r = await w.read({ file: f, offset: 0, count: 2 * PAGE_SIZE, leavePinned: true });
    const d1 = w.telemetry.delta();
    expect(d1.cells).toEqual(r.pfns.map((pfn) => [pfn, 'p']));
    expect(d1.lifetimes.map((l) => l.destructor)).toEqual([r.destructor]);
    await w.read({ file: f, offset: 4 * PAGE_SIZE, count: 8 * PAGE_SIZE });
    const d2 = w.telemetry.delta();
    expect(d2.cells).toBeUndefined();
    expect(d2.grid).toHaveLength(32);
    expect(d2.seq).toBe(d1.seq + 1);
    expect(w.telemetry.delta().cells).toEqual([]);
  });
});

describe('counters and histogram', () => {
  it('counts calls by procedure, pins, retransmits, stale retransmits, orphans and destructor fires', async () => {
    const w = new SyntheticWorld();
    const f = memoryFile('a', FILE_SIZE);
    w.telemetry.recordCall(call('READ'));
    w.telemetry.recordCall(call('READ'));
    w.telemetry.recordCall(call('MNT', 100005));
    w.telemetry.recordCall(call('WRITE', 100003, 'hit'));
    await w.read({ file: f, offset: 0, count: PAGE_SIZE, drop: true });
    await w.read({ file: f, offset: 0, count: PAGE_SIZE });
    w.net.emit({ type: 'orphan', conn: 1, t: w.t, skb: 1, destructor: 1, bytes: 100 });
    const c = w.telemetry.snapshot().counters;
    expect(c.calls).toEqual({ 'nfs.READ': 2, 'mount.MNT': 1, 'nfs.WRITE': 1 });
    expect(c).toMatchObject({ drcHits: 1, replyPins: 2, replyReleases: 2, transmits: 2, retransmits: 1, drops: 1, rtos: 1, acks: 2, destructorFires: 2, netOrphans: 1, staleRetransmits: 0 });
    expect(c.pagePins).toBe(2);
    expect(c.pageFills).toBe(1);
  });

  it('buckets pin durations', async () => {
    const w = new SyntheticWorld();
    const f = memoryFile('a', FILE_SIZE);
    await w.read({ file: f, offset: 0, count: PAGE_SIZE, rttMs: 0.3 });
    await w.read({ file: f, offset: 0, count: PAGE_SIZE, rttMs: 3 });
    await w.read({ file: f, offset: 0, count: PAGE_SIZE, drop: true, rtoMs: 400 });
    const h = w.telemetry.snapshot().pinDuration;
    expect(h.count).toBe(3);
    expect(h.counts[h.bounds.indexOf(0.5)]).toBe(1);
    expect(h.counts[h.bounds.indexOf(5)]).toBe(1);
    expect(h.counts[h.bounds.indexOf(500)]).toBe(1);
    expect(h.sum).toBeCloseTo(0.3 + 3 + 402.5, 5);
  });

  it('caps procedure series; the rest count as other', () => {
    const w = new SyntheticWorld({ limits: { maxProcedureSeries: 2 } });
    for (const p of ['A', 'B', 'C', 'D']) w.telemetry.recordCall(call(p));
    expect(w.telemetry.snapshot().counters.calls).toEqual({ 'nfs.A': 1, 'nfs.B': 1, 'nfs.other': 2 });
  });
});

describe('recording lifetimes only while watched', () => {
  const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

  it('counts every READ exactly while recording nothing, and records from the first read of the state on', async () => {
    const w = new SyntheticWorld({ recording: { lifetimes: 'watched', lingerMs: 60_000 } });
    const f = memoryFile('a', FILE_SIZE);
    expect(w.telemetry.recording).toBe(false);
    await w.read({ file: f, offset: 0, count: 2 * PAGE_SIZE, drop: true, rtoMs: 200 });
    await w.read({ file: f, offset: 0, count: 2 * PAGE_SIZE, rttMs: 3 });
    const before = w.telemetry.snapshot();
    // Each destructor is learned twice (the netstack's fire, the reply's release) and counted once.
    expect(before.counters).toMatchObject({ replyPins: 2, replyReleases: 2, destructorFires: 2, pagePins: 4, transmits: 2, retransmits: 1, acks: 2 });
    expect(before.pinDuration.count).toBe(2);
    expect(before.lifetimes).toEqual([]);
    expect(w.telemetry.recording).toBe(true);
    const r = await w.read({ file: f, offset: 0, count: PAGE_SIZE, holdMs: 5, leavePinned: true });
    const l = w.telemetry.pageDetail(r.pfns[0]!)!.heldBy[0]!;
    expect(l.destructor).toBe(r.destructor);
    expect(l.marks.map((m) => m.kind)).toEqual(['transmit', 'hold']);
    expect(l.holders).toHaveLength(1);
    expect(w.telemetry.snapshot().counters).toMatchObject({ replyPins: 3, destructorFires: 2 });
    w.telemetry.close();
  });

  it('stops lingerMs after the last read: open lifetimes close as evicted, counting goes on', async () => {
    const w = new SyntheticWorld({ recording: { lifetimes: 'watched', lingerMs: 20 } });
    const f = memoryFile('a', FILE_SIZE);
    w.telemetry.snapshot();
    const pinned = await w.read({ file: f, offset: 0, count: PAGE_SIZE, leavePinned: true });
    expect(w.telemetry.snapshot().openLifetimes).toBe(1);
    await sleep(80);
    expect(w.telemetry.recording).toBe(false);
    await w.read({ file: f, offset: 4 * PAGE_SIZE, count: PAGE_SIZE });
    const s = w.telemetry.snapshot();
    const l = s.lifetimes.find((x) => x.destructor === pinned.destructor)!;
    expect(l.evicted).toBe(true);
    expect(l.releasedAt).toBeNull();
    expect(s.lifetimes).toHaveLength(1);
    expect(s.openLifetimes).toBe(0);
    expect(s.counters).toMatchObject({ replyPins: 2, replyReleases: 1, destructorFires: 1 });
    w.telemetry.close();
  });

  it('records from the start when always', async () => {
    const w = new SyntheticWorld({ recording: { lifetimes: 'always', lingerMs: 20 } });
    const f = memoryFile('a', FILE_SIZE);
    const r = await w.read({ file: f, offset: 0, count: PAGE_SIZE });
    await sleep(50);
    expect(w.telemetry.recording).toBe(true);
    expect(w.telemetry.snapshot().lifetimes.map((l) => l.destructor)).toEqual([r.destructor]);
    w.telemetry.close();
  });
});

describe('exports', () => {
  it('writes Prometheus text a third-party parser reads back with the same facts', async () => {
    const w = new SyntheticWorld();
    const f = memoryFile('a', FILE_SIZE);
    w.telemetry.recordCall(call('READ'));
    await w.read({ file: f, offset: 0, count: PAGE_SIZE, drop: true, rtoMs: 300 });
    w.conns = [{ id: 1, remote: '127.0.0.1:"9"', transport: 'tcp', bytesInFlight: 10, cwnd: 14480, ssthresh: 65535, srttMs: 1, rtoMs: 200, retransmits: 1, staleRetransmits: 0, dupAcksIn: 3, pinnedReplies: 0 }];
    const families = parsePrometheusTextFormat(w.telemetry.prometheus());
    const byName = new Map(families.map((fam) => [fam.name, fam]));
    expect(byName.get('pagelife_rpc_calls_total')).toMatchObject({ type: 'COUNTER', metrics: [{ labels: { prog: 'nfs', proc: 'READ' }, value: '1' }] });
    expect(byName.get('pagelife_tcp_segments_retransmitted_total')!.metrics[0]).toMatchObject({ value: '1' });
    const h = byName.get('pagelife_reply_pin_duration_seconds')!;
    expect(h.type).toBe('HISTOGRAM');
    const m = h.metrics[0] as { buckets: Record<string, string>; count: string; sum: string };
    expect(m.count).toBe('1');
    expect(Number(m.sum)).toBeCloseTo(0.3025, 6);
    expect(m.buckets['0.25']).toBe('0');
    expect(m.buckets['0.5']).toBe('1');
    expect(byName.get('pagelife_connection_cwnd_bytes')!.metrics[0]).toMatchObject({ labels: { conn: '1', remote: '127.0.0.1:"9"' }, value: '14480' });
    expect(byName.get('pagelife_connection_dup_acks_received_total')).toMatchObject({ type: 'COUNTER', metrics: [{ labels: { conn: '1', remote: '127.0.0.1:"9"' }, value: '3' }] });
  });

  it('rejects a family written twice and bad names', () => {
    const x = new Exposition().counter('a_total', 'a', [{ value: 1 }]);
    expect(() => x.counter('a_total', 'a', [])).toThrow(/twice/);
    expect(() => new Exposition().gauge('9bad', 'x', [])).toThrow(/metric name/);
  });

  it('writes a Chrome trace with matching begin/end per lane, overlapping pins on separate lanes', async () => {
    const w = new SyntheticWorld();
    const f = memoryFile('a', FILE_SIZE);
    const open = await w.read({ file: f, offset: 0, count: PAGE_SIZE, leavePinned: true });
    await w.read({ file: f, offset: PAGE_SIZE, count: PAGE_SIZE, drop: true });
    await w.read({ file: f, offset: 2 * PAGE_SIZE, count: PAGE_SIZE, conn: 2 });
    await w.read({ file: f, offset: 3 * PAGE_SIZE, count: PAGE_SIZE, conn: 2 });
    const trace = w.telemetry.chromeTrace();
    expect(checkBeginEnd(trace)).toBe(4);
    const begins = trace.traceEvents.filter((e) => e.ph === 'B');
    // Connection 1: the open pin and the lossy one overlap, so they sit on two lanes.
    expect(new Set(begins.filter((e) => e.pid === 1).map((e) => e.tid)).size).toBe(2);
    // Connection 2: one after the other, one lane.
    expect(new Set(begins.filter((e) => e.pid === 2).map((e) => e.tid)).size).toBe(1);
    expect(begins.find((e) => e.args?.destructor === open.destructor)!.args!.open).toBe(true);
    const instants = trace.traceEvents.filter((e) => e.ph === 'i').map((e) => e.name);
    expect(instants).toEqual(expect.arrayContaining(['transmit', 'drop', 'retransmit', 'ack']));
  });
});

describe('bounds', () => {
  it('stays bounded under 100k events, including pins never released and skbs never freed', async () => {
    const limits = { maxOpenLifetimes: 64, maxRecentLifetimes: 128, maxTrackedSkbs: 256, maxSegmentsPerConn: 128, maxTrackedConns: 8, maxMarksPerLifetime: 16 };
    const w = new SyntheticWorld({ pages: 256, limits });
    const f = memoryFile('a', 256 * PAGE_SIZE);
    let events = 0;
    const count = () => events++;
    w.net.on('*', count);
    w.reply.on('*', count);
    for (let i = 0; events < 100_000; i++) {
      const conn = 1 + (i % 20);
      if (i % 10 === 0) {
        // Leaked by an imaginary bug: pinned for ever, its skbs never freed, its segments never ACKed.
        const r = await w.read({ conn, file: f, offset: (i % 128) * PAGE_SIZE, count: PAGE_SIZE, leavePinned: true });
        for (let k = 0; k < 20; k++) w.net.emit({ type: 'segment-retransmit', conn, t: w.t, seq: r.seq, end: r.end, skb: 1e6 + i * 20 + k, destructors: [r.destructor], reason: 'rto' });
        for (let k = 0; k < 20; k++) w.net.emit({ type: 'frag-ref', conn, t: w.t, skb: 2e6 + i * 20 + k, page: 0, destructor: r.destructor });
      } else {
        await w.read({ conn, file: f, offset: (i % 200) * PAGE_SIZE, count: 2 * PAGE_SIZE, drop: i % 3 === 0 });
      }
      // A destructor whose pin is never announced: its early marks wait, bounded, then are forgotten.
      w.net.emit({ type: 'segment-hold', conn, t: w.t, seq: 0, end: 1, skb: 3e6 + i, ms: 1 });
      w.net.emit({ type: 'frag-ref', conn, t: w.t, skb: 3e6 + i, page: 0, destructor: 1e7 + i });
      w.net.emit({ type: 'segment-transmit', conn, t: w.t, seq: 0, end: 1, skb: 3e6 + i, destructors: [1e7 + i] });
      if (i % 100 === 0) w.telemetry.delta();
      if (i % 500 === 0) w.telemetry.snapshotBody({});
    }
    const sizes = w.telemetry.sizes();
    expect(sizes.texts).toBeLessThanOrEqual(sizes.open! + sizes.recent!);
    expect(sizes.open).toBeLessThanOrEqual(limits.maxOpenLifetimes);
    expect(sizes.recent).toBeLessThanOrEqual(limits.maxRecentLifetimes);
    expect(sizes.skbs).toBeLessThanOrEqual(limits.maxTrackedSkbs);
    expect(sizes.holders).toBeLessThanOrEqual(limits.maxTrackedSkbs);
    expect(sizes.pending).toBe(w.telemetry.limits.maxPendingDestructors);
    expect(sizes.conns).toBeLessThanOrEqual(limits.maxTrackedConns);
    expect(sizes.segments).toBeLessThanOrEqual(limits.maxTrackedConns * limits.maxSegmentsPerConn);
    const s = w.telemetry.snapshot();
    expect(s.lifetimesEvicted).toBeGreaterThan(0);
    expect(s.lifetimes.length).toBeLessThanOrEqual(limits.maxOpenLifetimes + limits.maxRecentLifetimes);
    for (const l of s.lifetimes) {
      expect(l.marks.length).toBeLessThanOrEqual(limits.maxMarksPerLifetime);
      expect(l.holders.length).toBeLessThanOrEqual(w.telemetry.limits.maxHoldersPerLifetime);
    }
    expect(w.telemetry.delta().lifetimes.length).toBeLessThanOrEqual(w.telemetry.limits.maxLifetimesPerDelta);
    // A bounded structure has a bounded serialized size; 128 + 64 lifetimes of ≤ 16 marks fit well within 1 MiB.
    expect(JSON.stringify(s).length).toBeLessThan(1 << 20);
  });

  it('stops listening on close', async () => {
    const w = new SyntheticWorld();
    w.telemetry.close();
    expect(w.net.wants('segment-transmit')).toBe(false);
    expect(w.reply.wants('reply-pin')).toBe(false);
    await w.read({ file: memoryFile('a', FILE_SIZE), offset: 0, count: PAGE_SIZE });
    expect(w.telemetry.snapshot().counters.replyPins).toBe(0);
  });
});

describe('building blocks', () => {
  it('ring drops the oldest', () => {
    const r = new Ring<number>(3);
    for (let i = 1; i <= 5; i++) r.push(i);
    expect([...r]).toEqual([3, 4, 5]);
    expect(() => new Ring(0)).toThrow(RangeError);
  });

  it('histogram needs increasing bounds', () => {
    expect(() => new Histogram([1, 1])).toThrow(RangeError);
    const h = new Histogram([1, 2]);
    h.observe(5);
    expect(h.snapshot().counts).toEqual([0, 0, 1]);
  });
});
