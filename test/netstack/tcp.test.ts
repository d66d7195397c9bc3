import { describe, expect, it, vi } from 'vitest';
import {
  DrainError,
  FragDestructor,
  RealClock,
  TCP_INIT_CWND,
  TCP_MSS_DEFAULT,
  TCP_RTO_MAX,
  TCP_RTO_MIN,
  TcpError,
  TcpPair,
  type Page,
  type PathFaults,
} from '../../netstack/index.ts';
import { harness, patternPage, timedDestructor, useSkbRegistry } from './helpers.ts';

const registry = useSkbRegistry();

const MSS = TCP_MSS_DEFAULT;

/** A consumer that holds every delivery until told to consume (then releases all, and later ones at once). */
function consumer(opts: Parameters<typeof harness>[0]) {
  const held: (() => void)[] = [];
  let auto = false;
  const h = harness({ ...opts, onDeliver: (_c, done) => (auto ? done() : held.push(done)) });
  return {
    h,
    consumeFromNowOn() {
      auto = true;
      for (const done of held.splice(0)) done();
    },
  };
}

describe('defaults', () => {
  it('are exported as named constants', () => {
    expect([TCP_RTO_MIN, TCP_RTO_MAX, TCP_INIT_CWND, TCP_MSS_DEFAULT]).toEqual([200, 120_000, 10, 1448]);
  });
});

describe('stale check: first copies kept once a byte can cross twice', () => {
  it('a fault-free path sends every byte once, so there is nothing a first copy would be compared with', async () => {
    const h = harness({ firstCopies: 'with-faults', mss: 1000, gsoSegs: 4 });
    const page = patternPage(64 * 1024, 7);
    const d = new FragDestructor(() => {});
    for (let off = 0; off < page.buf.length; off += 4096) h.pair.sendpage(page, off, 4096, d);
    d.unref();
    await h.pair.drain();
    expect(h.bytes().equals(page.buf)).toBe(true);
    expect(h.pair.stats()).toMatchObject({ retransmits: 0, duplicates: 0, staleRetransmits: 0 });
    expect(h.pair.receiver.uncheckedRepeats).toBe(0);
  });

  it('a fault set after the start turns the check on: the bug is caught as with first copies kept always', async () => {
    const h = harness({ firstCopies: 'with-faults', rtoInitial: 100, rtoMin: 50 });
    const page = patternPage(4096, 3);
    h.pair.sendpage(page, 0, 1000, new FragDestructor(() => {}));
    await h.pair.drain();
    h.pair.setFaults({ delay: 10 });
    h.pair.holdNext(500);
    const at = h.pair.sender.writeSeq;
    h.pair.sendpage(page, 1000, 1000, null); // legacy: reused when ACKed, while a clone is held
    h.bus.on('ack', (e) => {
      if (!e.dup && e.ack === at + 1000) page.buf.fill(0xee, 1000, 2000);
    });
    await h.pair.drain();
    expect(h.pair.stats().staleRetransmits).toBe(1);
    expect(h.of('stale-retransmit')[0]).toMatchObject({ seq: at, end: at + 1000 });
    expect(h.pair.receiver.uncheckedRepeats).toBe(0);
  });

  it('a repeat that comes with no fault set is counted as unchecked, and starts the keeping', async () => {
    const h = harness({ firstCopies: 'with-faults' });
    const page = patternPage(4096, 9);
    const send = async (off: number) => {
      const seq = h.pair.sender.writeSeq;
      h.pair.sendpage(page, off, 1000, new FragDestructor(() => {}));
      await h.pair.drain();
      return seq;
    };
    const repeat = (seq: number) => h.pair.receiver.receive({ seq, len: 1000, flags: 0, payload: [Buffer.alloc(1000, 0x55)], skb: null });
    repeat(await send(0));
    expect(h.pair.receiver.uncheckedRepeats).toBe(1);
    expect(h.pair.stats().staleRetransmits).toBe(0); // nothing kept to compare the first one with
    repeat(await send(1000));
    expect(h.pair.receiver.uncheckedRepeats).toBe(1);
    expect(h.pair.stats().staleRetransmits).toBe(1);
  });
});

describe('TCP sender: destructor timing', () => {
  it('a sendpage destructor fires when the ACK frees the original, not when sendpage returns', async () => {
    const h = harness({ faults: { delay: 10 } });
    const page = patternPage(4096, 1);
    const d = timedDestructor(h.clock);
    h.pair.sendpage(page, 0, 1000, d);
    d.unref();
    expect(d.fires).toEqual([]);
    h.clock.advance(19);
    expect(d.fires).toEqual([]); // the clone is gone (TX completion at 0), the original waits for the ACK
    await h.pair.drain();
    expect(d.fires).toEqual([20]);
    expect(h.of('destructor-fire')).toEqual([{ type: 'destructor-fire', conn: 1, t: 20, destructor: d.id }]);
    expect(h.bytes().equals(page.buf.subarray(0, 1000))).toBe(true);
    expect(h.pair.stats().pinnedDestructors).toBe(0);
  });

  it('each transmission is a clone; with the previous clone still held, a pskb copy — and the destructor waits for the held clone', async () => {
    const h = harness({ faults: { delay: 10 }, rtoInitial: 100, rtoMin: 50 });
    const page = patternPage(4096, 2);
    const d = timedDestructor(h.clock);
    h.pair.holdNext(500);
    h.pair.sendpage(page, 0, 1000, d);
    d.unref();
    await h.pair.drain();
    expect(h.of('segment-hold')).toHaveLength(1);
    expect(h.of('skb-clone')).toHaveLength(1); // the first transmission
    expect(h.of('skb-copy').map((e) => e.kind)).toEqual(['pskb']); // the RTO retransmission at 100
    expect(h.of('rto').map((e) => e.t)).toEqual([100]);
    // ACK of the retransmission at 120 frees the original; the held clone still points at the frags until 500.
    expect(h.of('ack').filter((e) => !e.dup)[0]!.t).toBe(120);
    expect(d.fires).toEqual([500]);
    expect(h.pair.stats().staleRetransmits).toBe(0);
    expect(h.pair.stats().duplicates).toBe(1);
  });

  it('the bug, on the wire: without a destructor a page reused after the ACK shows up in the held clone (stale-retransmit)', async () => {
    const h = harness({ faults: { delay: 10 }, rtoInitial: 100, rtoMin: 50 });
    const page = patternPage(4096, 3);
    const original = Buffer.from(page.buf.subarray(0, 1000));
    h.pair.holdNext(500);
    h.pair.sendpage(page, 0, 1000, null); // legacy: only a page reference, "done" when ACKed
    // The reply is complete at the ACK; the owner reuses its page at once.
    h.bus.on('ack', (e) => {
      if (!e.dup && e.ack === h.pair.sender.writeSeq) page.buf.fill(0xee, 0, 1000);
    });
    await h.pair.drain();
    expect(h.bytes().equals(original)).toBe(true);
    const stale = h.of('stale-retransmit');
    expect(stale).toHaveLength(1);
    expect(stale[0]).toMatchObject({ conn: 1, t: 510, seq: h.pair.sender.writeSeq - 1000, end: h.pair.sender.writeSeq });
    expect(h.pair.stats().staleRetransmits).toBe(1);
  });

  it('the three reply-path modes under the same faults: destructor and copy carry the original bytes, legacy the reused page', async () => {
    const run = async (mode: 'destructor' | 'legacy' | 'copy') => {
      const h = harness({ faults: { delay: 10 }, rtoInitial: 100, rtoMin: 50 });
      const page = patternPage(4096, 3);
      const original = Buffer.from(page.buf.subarray(0, 3000));
      const reuse = () => page.buf.fill(0xee, 0, 3000); // the page cache hands the page to someone else
      h.pair.holdNext(500); // the first transmission sits in the device queue; the RTO resends
      if (mode === 'copy') {
        h.pair.sendmsg(page.buf.subarray(0, 3000));
        reuse(); // safe at once: the bytes were copied
      } else if (mode === 'legacy') {
        h.pair.sendpage(page, 0, 3000, null);
        h.bus.on('ack', (e) => e.ack === h.pair.sender.writeSeq && reuse()); // "done" when the reply is ACKed
      } else {
        const d = new FragDestructor(reuse); // done only when the stack is
        h.pair.sendpage(page, 0, 3000, d);
        d.unref();
      }
      await h.pair.drain();
      return { intact: h.bytes().equals(original), stale: h.pair.stats().staleRetransmits };
    };
    expect(await run('destructor')).toEqual({ intact: true, stale: 0 });
    expect(await run('copy')).toEqual({ intact: true, stale: 0 });
    expect(await run('legacy')).toEqual({ intact: true, stale: 1 }); // the first copy won; the held clone carried foreign bytes
  });

  it('a first copy that was lost on the wire still counts: a retransmission with other bytes is stale', async () => {
    const h = harness({ faults: { delay: 10, dropSegments: [1] }, rtoInitial: 100, rtoMin: 50 });
    const page = patternPage(4096, 5);
    h.pair.sendpage(page, 0, 1000, null);
    // Released at sendpage return (legacy): the page is reused after the lost first copy left, before the RTO.
    h.bus.on('segment-drop', () => page.buf.fill(0x11, 0, 1000));
    await h.pair.drain();
    expect(h.of('segment-drop')).toHaveLength(1);
    expect(h.pair.stats().staleRetransmits).toBe(1);
    expect(h.of('stale-retransmit')).toHaveLength(1);
  });

  it('partial ACKs of a GSO skb trim its head: each reply’s destructor fires at the ACK of its own bytes', async () => {
    // 1000-byte segments over a link that takes 10 ms per frame (1054 bytes with headers).
    const h = harness({ mss: 1000, gsoSegs: 4, tso: false, faults: { delay: 5, bandwidth: 105_400 } });
    const pages = [1, 2, 3, 4].map((s) => patternPage(4096, s));
    const ds = pages.map(() => timedDestructor(h.clock));
    pages.forEach((p, i) => h.pair.sendpage(p, 0, 1000, ds[i]!, i < 3));
    for (const d of ds) d.unref();
    await h.pair.drain();
    expect(h.of('segment-transmit')).toHaveLength(1); // one 4000-byte skb, segmented at the device
    // Segments leave the queue at 10, 20, 30, 40 ms; each ACK is back 10 ms later.
    expect(ds.map((d) => d.fires)).toEqual([[20], [30], [40], [50]]);
    expect(h.bytes().equals(Buffer.concat(pages.map((p) => p.buf.subarray(0, 1000))))).toBe(true);
  });

  it('TSO: a GSO skb crosses the wire whole and is ACKed once, unless a fault acts on single segments', async () => {
    const send = async (faults: Partial<PathFaults>) => {
      const h = harness({ mss: 1000, gsoSegs: 4, faults, seed: 7 });
      const arrived: number[] = [];
      h.bus.on('segment-deliver', (e) => arrived.push(e.end - e.seq));
      const page = patternPage(4096, 3);
      const d = timedDestructor(h.clock);
      h.pair.sendpage(page, 0, 4000, d);
      d.unref();
      await h.pair.drain();
      expect(h.bytes().equals(page.buf.subarray(0, 4000))).toBe(true);
      expect(d.fires).toHaveLength(1);
      return { arrived, acks: h.of('ack').length, sent: h.pair.path.dataSegments };
    };
    expect(await send({ delay: 5 })).toEqual({ arrived: [4000], acks: 1, sent: 1 });
    // A scripted drop names the segment by ordinal: the skb is cut at the device, and only the
    // dropped segment is sent again.
    const dropped = await send({ delay: 5, dropSegments: [2] });
    expect(dropped.sent).toBe(5);
    expect(dropped.arrived.reduce((a, b) => a + b, 0)).toBe(4000);
  });

  it('sendmsg copies: overwriting the source after the call changes nothing on the wire', async () => {
    const h = harness({ faults: { delay: 3, loss: 0.3 }, seed: 5 });
    const data = patternPage(50_000, 4).buf;
    const copy = Buffer.from(data);
    h.pair.sendmsg(data);
    data.fill(0);
    h.pair.close();
    await h.pair.drain();
    expect(h.bytes().equals(copy)).toBe(true);
    expect(registry().leakedPages()).toEqual([]);
  });

  it('sendmsg and sendpage bytes never share a frag (different destructor: no coalescing)', () => {
    const h = harness();
    const page = patternPage(4096, 5);
    const d = new FragDestructor(() => {});
    h.pair.sendmsg(Buffer.alloc(10), true);
    h.pair.sendpage(page, 0, 100, d, true);
    h.pair.sendpage(page, 100, 100, d, true); // contiguous, same destructor: coalesces
    h.pair.sendpage(page, 200, 100, null, true); // contiguous, no destructor: a new frag
    const skb = h.pair.sender.queue[0]!;
    expect(skb.shinfo.frags.map((f) => [f.size, f.destructor === d])).toEqual([
      [10, false],
      [200, true],
      [100, false],
    ]);
    expect(d.refcount).toBe(2);
  });

  it('FIN rides after the data; the receiver sees it after the last byte; sending after close is an error', async () => {
    let finAt = -1;
    const h = harness({ faults: { delay: 10 }, onFin: () => (finAt = h.received.length) });
    h.pair.sendmsg(Buffer.alloc(3000, 1));
    h.pair.close();
    expect(() => h.pair.sendmsg(Buffer.alloc(1))).toThrow(TcpError);
    await h.pair.drain();
    expect(finAt).toBe(h.received.length);
    expect(h.pair.receiver.finReceived).toBe(true);
  });

  it('a lost FIN is retransmitted', async () => {
    const h = harness({ faults: { delay: 10 }, rtoInitial: 100, rtoMin: 50 });
    h.pair.sendmsg(Buffer.alloc(100, 1));
    h.clock.advance(30);
    h.pair.setFaults({ dropRanges: [{ seq: h.pair.sender.writeSeq, end: h.pair.sender.writeSeq + 1 }] });
    h.pair.close();
    await h.pair.drain();
    expect(h.pair.receiver.finReceived).toBe(true);
    expect(h.of('segment-drop')).toHaveLength(1);
    expect(h.pair.stats().timeouts).toBe(1);
  });
});

describe('TCP sender: loss recovery', () => {
  it('RTO backs off exponentially (RFC 6298 5.5) and the destructor fires at the eventual ACK', async () => {
    const h = harness({ faults: { delay: 10 }, rtoInitial: 100, rtoMin: 50 });
    const d = timedDestructor(h.clock);
    h.pair.dropNext(3);
    h.pair.sendpage(patternPage(4096, 6), 0, 500, d);
    d.unref();
    await h.pair.drain();
    expect(h.of('rto').map((e) => [e.t, e.rto, e.backoff])).toEqual([
      [100, 200, 1],
      [300, 400, 2],
      [700, 800, 3],
    ]);
    expect(d.fires).toEqual([720]);
    expect(h.pair.stats().rto).toBe(100); // backoff cleared by the ACK; Karn: no sample from a retransmitted segment
  });

  it('RTO = SRTT + 4·RTTVAR from the first sample, clamped to the configured minimum', async () => {
    for (const [rtoMin, expected] of [
      [50, 50],
      [1, 30],
    ]) {
      const h = harness({ faults: { delay: 5 }, rtoMin });
      h.pair.sendmsg(Buffer.alloc(100));
      await h.pair.drain();
      expect(h.pair.stats().srtt).toBe(10);
      expect(h.pair.stats().rto).toBe(expected);
    }
  });

  it('fast retransmit on the third duplicate ACK, fast recovery (RFC 5681), no RTO', async () => {
    const h = harness({ faults: { delay: 10, dropSegments: [3] } });
    h.pair.sendmsg(patternPage(20 * MSS, 7).buf);
    await h.pair.drain();
    const s = h.pair.stats();
    expect([s.fastRetransmits, s.timeouts, s.retransmits]).toEqual([1, 0, 1]);
    const fr = h.of('fast-retransmit');
    const iss1 = h.of('segment-transmit')[0]!.seq;
    expect(fr[0]).toMatchObject({ t: 20, seq: (iss1 + 2 * MSS) >>> 0, end: (iss1 + 3 * MSS) >>> 0 });
    expect(h.of('ack').filter((e) => e.dup).length).toBeGreaterThanOrEqual(3);
    expect(s.ssthresh).toBeGreaterThanOrEqual(2 * MSS);
    expect(h.bytes().length).toBe(20 * MSS);
  });

  it('slow start doubles cwnd per round trip; the peer window caps what is in flight', async () => {
    const h = harness({ faults: { delay: 10 } });
    h.pair.sendmsg(Buffer.alloc(100 * MSS));
    expect(h.pair.stats().bytesInFlight).toBe(10 * MSS);
    h.clock.advance(20);
    expect(h.pair.stats().cwnd).toBe(20 * MSS);
    expect(h.pair.stats().bytesInFlight).toBe(20 * MSS);
    await h.pair.drain();

    const w = consumer({ rcvWnd: 4 * MSS, faults: { delay: 10 } });
    w.h.pair.sendmsg(Buffer.alloc(20 * MSS));
    w.h.clock.advance(100);
    expect(w.h.pair.receiver.delivered).toBe(4 * MSS); // the window closed
    expect(w.h.pair.sender.sndWnd).toBe(0);
    w.consumeFromNowOn();
    await w.h.pair.drain();
    expect(w.h.pair.receiver.delivered).toBe(20 * MSS);
  });

  it('a zero window whose update is lost is reopened by the persist timer’s probe', async () => {
    const w = consumer({ rcvWnd: 2 * MSS, faults: { delay: 10 } });
    w.h.pair.sendmsg(Buffer.alloc(6 * MSS));
    w.h.clock.advance(50);
    expect(w.h.pair.sender.sndWnd).toBe(0);
    w.h.pair.setFaults({ ackLoss: 1 });
    w.consumeFromNowOn(); // the window update is lost
    w.h.pair.setFaults({ ackLoss: 0 });
    await w.h.pair.drain();
    expect(w.h.pair.receiver.delivered).toBe(6 * MSS);
    expect(w.h.pair.stats().windowProbes).toBeGreaterThan(0);
  });

  it('drops the next N data segments, set at run time', async () => {
    const h = harness({ faults: { delay: 10 } });
    h.pair.sendmsg(Buffer.alloc(5 * MSS));
    h.clock.advance(25);
    h.pair.dropNext(2);
    h.pair.sendmsg(Buffer.alloc(5 * MSS));
    await h.pair.drain();
    expect(h.of('segment-drop').map((e) => e.reason)).toEqual(['scripted', 'scripted']);
    expect(h.bytes().length).toBe(10 * MSS);
  });

  it('drain() rejects when the connection cannot drain', async () => {
    const h = harness({ faults: { loss: 1 }, drainTimeout: 10_000 });
    h.pair.sendmsg(Buffer.alloc(10));
    await expect(h.pair.drain()).rejects.toThrow(DrainError);
  });
});

describe('receiver ACK policy', () => {
  it('delayed ACK: one segment is ACKed after ackDelay; a stream every second segment', async () => {
    const one = harness({ delayedAck: true, faults: { delay: 10 } });
    const d = timedDestructor(one.clock);
    one.pair.sendpage(patternPage(4096, 8), 0, 100, d);
    d.unref();
    await one.pair.drain();
    expect(d.fires).toEqual([60]);

    const many = harness({ delayedAck: true, faults: { delay: 10 } });
    many.pair.sendmsg(Buffer.alloc(10 * MSS));
    await many.pair.drain();
    expect(many.of('ack')).toHaveLength(5);
  });
});

describe('path faults', () => {
  it('reordering, duplication and jitter: delivery stays in order and exact', async () => {
    const h = harness({ seed: 4, faults: { delay: 5, jitter: 3, reorder: 0.3, reorderDelay: 8, duplicate: 0.2 } });
    const data = patternPage(200 * MSS, 15).buf;
    h.pair.sendmsg(data);
    await h.pair.drain();
    expect(h.bytes().equals(data)).toBe(true);
    expect(h.pair.stats().duplicates).toBeGreaterThan(0);
    expect(h.of('ack').some((e) => e.dup)).toBe(true); // out-of-order arrivals were seen
    expect(Math.max(...h.of('segment-transmit').map((e) => (e.end - e.seq) >>> 0))).toBe(MSS); // MSS segmentation
  });

  it('random loss and ACK loss at a fixed seed are reproducible', async () => {
    const run = async () => {
      const h = harness({ seed: 77, faults: { delay: 5, loss: 0.1, ackLoss: 0.1 } });
      h.pair.sendmsg(Buffer.alloc(100 * MSS, 3));
      await h.pair.drain();
      return h.events.map((e) => `${e.type}@${e.t}`).join();
    };
    const a = await run();
    expect(a).toContain('segment-drop');
    expect(await run()).toBe(a);
  });
});

describe('device queue and datagrams', () => {
  it('a datagram’s destructor fires when it leaves the device queue', async () => {
    const got: Buffer[] = [];
    const h = harness({ faults: { delay: 10, bandwidth: 105_400 }, onDatagram: (b) => got.push(b) });
    const page = patternPage(4096, 9);
    const d = timedDestructor(h.clock);
    h.pair.sendDatagram(Buffer.from('hdr'), [{ page, offset: 0, size: 997 }], d);
    d.unref();
    expect(d.fires).toEqual([]);
    h.clock.runUntilIdle();
    expect(d.fires).toEqual([10]);
    expect(h.of('datagram-complete').map((e) => e.t)).toEqual([10]);
    expect(Buffer.concat(got).equals(Buffer.concat([Buffer.from('hdr'), page.buf.subarray(0, 997)]))).toBe(true);
  });
});

describe('reference wire (live serving)', () => {
  it('delivers views of the pages and keeps the frags referenced until done()', async () => {
    const pending: { chunks: Buffer[]; done: () => void }[] = [];
    const h = harness({ wire: 'reference', faults: { delay: 10 }, onDeliver: (chunks, done) => pending.push({ chunks, done }) });
    const page = patternPage(8192, 10);
    const d = timedDestructor(h.clock);
    h.pair.sendmsg(Buffer.from('RM+HDR'), true);
    h.pair.sendpage(page, 0, 2000, d);
    d.unref();
    h.clock.runUntilIdle();
    expect(h.pair.sender.idle).toBe(true); // everything ACKed...
    expect(d.fires).toEqual([]); // ...but the consumer still holds the bytes
    const chunks = pending.flatMap((p) => p.chunks);
    expect(chunks.some((c) => c.buffer === page.buf.buffer)).toBe(true); // no copy
    expect(Buffer.concat(chunks).equals(Buffer.concat([Buffer.from('RM+HDR'), page.buf.subarray(0, 2000)]))).toBe(true);
    h.clock.advance(7);
    for (const p of pending) p.done();
    expect(d.fires).toEqual([h.clock.now()]);
    await h.pair.drain();
    expect(() => pending[0]!.done()).toThrow();
  });

  it('orphanFrags leaves bytes already handed out as views alone (they go with done())', async () => {
    const pending: (() => void)[] = [];
    const h = harness({ wire: 'reference', faults: { delay: 10, ackLoss: 1 }, onDeliver: (_c, done) => pending.push(done) });
    const page = patternPage(8192, 16);
    const d = timedDestructor(h.clock);
    h.pair.sendpage(page, 0, 3 * MSS, d);
    d.unref();
    h.clock.advance(15); // delivered (views with the consumer), never ACKed
    expect(pending.length).toBeGreaterThan(0);
    expect(h.pair.orphanFrags()).toBe(0); // the originals share their SharedInfo with the clones whose views the consumer holds
    expect(d.fires).toEqual([]);
    h.clock.advance(500); // RTO retransmissions come and go (duplicates, freed on arrival)
    for (const done of pending.splice(0)) done();
    const n = h.pair.orphanFrags();
    expect(n).toBeGreaterThan(0);
    expect(d.fires).toEqual([h.clock.now()]);
  });

  it('orphanFrags releases a never-ACKing client’s pins; later retransmissions carry the private copy', async () => {
    const h = harness({ faults: { delay: 10, ackLoss: 1 }, rtoInitial: 100, rtoMin: 50 });
    const page = patternPage(4096, 11);
    const expected = Buffer.from(page.buf.subarray(0, 3000));
    const d = timedDestructor(h.clock);
    h.pair.sendpage(page, 0, 3000, d);
    d.unref();
    h.clock.advance(1000);
    expect(d.fires).toEqual([]);
    expect(h.pair.stats().pinnedDestructors).toBe(1);
    const n = h.pair.orphanFrags();
    expect(n).toBeGreaterThanOrEqual(3);
    expect(d.fires).toEqual([1000]);
    expect(h.pair.stats()).toMatchObject({ orphanedFrags: n, pinnedDestructors: 0 });
    page.buf.fill(0); // the owner reuses its page at once
    h.pair.setFaults({ ackLoss: 0 });
    await h.pair.drain();
    expect(h.bytes().equals(expected)).toBe(true);
    expect(h.pair.stats().staleRetransmits).toBe(0);
    expect(h.of('orphan').length).toBe(n);
  });
});

describe('reset (the socket is gone)', () => {
  it('frees every queued skb without copying: each destructor fires once its last skb goes, the consumer’s views last until done()', async () => {
    const { h, consumeFromNowOn } = consumer({ wire: 'reference', faults: { delay: 10 } });
    const d1 = timedDestructor(h.clock);
    h.pair.sendpage(patternPage(3 * MSS, 20), 0, 3 * MSS, d1);
    d1.unref();
    h.clock.advance(25); // delivered (views held by the consumer) and ACKed: only the consumer holds d1
    h.pair.holdNext(100); // the next segment stays in the device queue
    h.pair.dropNext(); // the one after it is lost, so those behind it wait out of order
    const d2 = timedDestructor(h.clock);
    const d3 = timedDestructor(h.clock);
    h.pair.sendpage(patternPage(4 * MSS, 21), 0, 4 * MSS, d2);
    h.pair.sendpage(patternPage(20 * MSS, 22), 0, 20 * MSS, d3);
    d2.unref();
    d3.unref();
    h.clock.advance(12);
    expect(h.pair.path.deviceQueue.length).toBe(1);
    expect(h.pair.receiver.heldSkbs().length).toBeGreaterThan(1); // the consumer's and the out-of-order queue's
    expect(h.pair.stats().bytesQueued).toBeGreaterThan(20 * MSS); // unsent and unacknowledged
    const copies = () => h.of('orphan').length + h.of('skb-copy').length + h.of('frag-ref').length;
    const before = copies();

    h.pair.reset();
    expect([d2.fires, d3.fires]).toEqual([[h.clock.now()], [h.clock.now()]]);
    expect(copies()).toBe(before); // no frag copied, orphaned or referenced again
    expect(h.pair.stats()).toMatchObject({ orphanedFrags: 0, pinnedDestructors: 1, bytesQueued: 0, deviceQueue: 0 });
    h.clock.runUntilIdle();
    expect(d1.fires).toEqual([]); // its bytes are still with the consumer
    expect(h.pair.drained).toBe(false);

    consumeFromNowOn();
    expect(d1.fires).toEqual([h.clock.now()]);
    await h.pair.drain();
    expect(registry().live.size).toBe(0);
    expect([d1, d2, d3].map((d) => d.fires.length)).toEqual([1, 1, 1]);
  });
});

describe('events', () => {
  it('with nobody listening, a lossy transfer builds no event object at all', async () => {
    const pair = new TcpPair({ faults: { delay: 5, loss: 0.1, duplicate: 0.1 }, seed: 9 });
    const emit = vi.spyOn(pair.bus, 'emit');
    const d = new FragDestructor(() => {});
    pair.sendpage(patternPage(64 * 1024, 14), 0, 64 * 1024, d);
    d.unref();
    pair.close();
    await pair.drain();
    expect(pair.stats().retransmits).toBeGreaterThan(0);
    expect(emit).not.toHaveBeenCalled();
  });
});

describe('real clock', () => {
  it('drain() resolves when the consumer’s late done() is the last thing to happen (reference wire)', async () => {
    const pair = new TcpPair({
      clock: new RealClock(),
      wire: 'reference',
      onDeliver: (_chunks, done) => void setTimeout(done, 20),
    });
    const d = new FragDestructor(() => {});
    pair.sendpage(patternPage(4096, 13), 0, 4096, d);
    d.unref();
    await pair.drain();
    expect(d.fired).toBe(true);
    expect(pair.drained).toBe(true);
  });

  it('a fault-free transfer batches deferred work instead of a timer per segment', async () => {
    const spy = vi.spyOn(globalThis, 'setTimeout');
    const received: Buffer[] = [];
    const pair = new TcpPair({
      clock: new RealClock(),
      mss: 65536,
      rcvWnd: 1 << 22,
      onDeliver: (chunks, done) => {
        received.push(...chunks.map((c) => Buffer.from(c)));
        setImmediate(done);
      },
    });
    const page: Page = patternPage(1 << 20, 12);
    const d = new FragDestructor(() => {});
    for (let off = 0; off < page.buf.length; off += 4096) pair.sendpage(page, off, 4096, d, off + 4096 < page.buf.length);
    d.unref();
    pair.close();
    await pair.drain();
    const timers = spy.mock.calls.length;
    spy.mockRestore();
    expect(Buffer.concat(received).equals(page.buf)).toBe(true);
    expect(d.fired).toBe(true);
    expect(timers).toBeLessThan(5); // the RTO timer, re-armed lazily
  });
});
