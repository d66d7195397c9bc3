import { describe, expect, it } from 'vitest';
import {
  Agenda,
  ClockError,
  EventBus,
  RealClock,
  RenoCongestion,
  Rng,
  RtoEstimator,
  Timer,
  TcpReceiver,
  VirtualClock,
  after,
  before,
  seqAdd,
  seqDiff,
  type NetstackEvent,
  type TimerHandle,
  type WireAck,
  type WireSegment,
} from '../../netstack/index.ts';

describe('EventBus', () => {
  it('delivers by type and to catch-all listeners; off and the returned unsubscribe both work', () => {
    const bus = new EventBus<NetstackEvent>();
    const got: string[] = [];
    expect(bus.wants('rto')).toBe(false);
    const off = bus.on('rto', (e) => got.push(`rto:${e.backoff}`));
    const all = (e: NetstackEvent) => got.push(`*:${e.type}`);
    bus.on('*', all);
    expect(bus.wants('rto')).toBe(true);
    expect(bus.wants('ack')).toBe(true); // the catch-all wants everything
    bus.emit({ type: 'rto', conn: 1, t: 0, seq: 0, rto: 200, backoff: 1 });
    off();
    bus.off('*', all);
    bus.emit({ type: 'rto', conn: 1, t: 0, seq: 0, rto: 200, backoff: 2 });
    expect(got).toEqual(['rto:1', '*:rto']);
    expect(bus.wants('rto')).toBe(false);
  });

  it('a type whose last listener left is not wanted while other types still are, and can be taken again', () => {
    const bus = new EventBus<NetstackEvent>();
    const got: string[] = [];
    bus.on('ack', () => got.push('ack'));
    const off = bus.on('rto', () => got.push('rto'));
    off();
    expect(bus.wants('rto')).toBe(false);
    expect(bus.wants('ack')).toBe(true);
    bus.emit({ type: 'rto', conn: 1, t: 0, seq: 0, rto: 200, backoff: 1 });
    bus.on('rto', () => got.push('rto again'));
    expect(bus.wants('rto')).toBe(true);
    bus.emit({ type: 'rto', conn: 1, t: 0, seq: 0, rto: 200, backoff: 2 });
    expect(got).toEqual(['rto again']);
  });
});

describe('clocks', () => {
  it('VirtualClock runs timers in time order, each at its own instant; cancelled ones never', () => {
    const c = new VirtualClock();
    const log: string[] = [];
    c.setTimer(10, () => log.push(`a@${c.now()}`));
    const b = c.setTimer(5, () => log.push(`b@${c.now()}`));
    c.setTimer(5, () => log.push(`c@${c.now()}`));
    c.defer(() => log.push(`d@${c.now()}`));
    c.clearTimer(b);
    c.advance(7);
    expect(log).toEqual(['d@0', 'c@5']);
    expect(c.now()).toBe(7);
    c.runUntilIdle();
    expect(log).toEqual(['d@0', 'c@5', 'a@10']);
  });

  it('runUntilIdle gives up on a clock that never goes idle', () => {
    const c = new VirtualClock();
    const tick = () => c.setTimer(1000, tick);
    tick();
    expect(() => c.runUntilIdle({ maxMs: 10_000 })).toThrow(ClockError);
  });

  it('Timer: re-arming later does not touch the clock; the expiry honours the latest deadline', () => {
    const c = new VirtualClock();
    let fired = -1;
    const t = new Timer(c, () => (fired = c.now()));
    t.arm(100);
    c.advance(50);
    t.arm(100); // now due at 150
    expect(c.pending).toBe(1);
    c.advance(60);
    expect(fired).toBe(-1);
    c.runUntilIdle();
    expect(fired).toBe(150);
    t.arm(10);
    t.cancel();
    c.runUntilIdle();
    expect(fired).toBe(150);
  });


  it('Timer: cancel leaves the clock timer to expire unheeded, so arm after cancel makes none; stop gives it back', () => {
    /** Counts the clock timers a Timer asks for. */
    class CountingClock extends VirtualClock {
      made = 0;
      override setTimer(delayMs: number, fn: () => void): TimerHandle {
        this.made++;
        return super.setTimer(delayMs, fn);
      }
    }
    const c = new CountingClock();
    const fired: number[] = [];
    const t = new Timer(c, () => fired.push(c.now()));
    // An RTO timer per round trip: armed by the send, cancelled by the ACK, armed by the next send.
    for (let i = 0; i < 5; i++) {
      t.arm(100);
      c.advance(10);
      t.cancel();
      expect(t.armed).toBe(false);
    }
    expect(c.made).toBe(1);
    // The first arm's clock timer (due at 100) finds nothing to do, and fires nothing.
    c.advance(200);
    expect(fired).toEqual([]);
    expect(c.pending).toBe(0);
    // Armed again after a cancel, it fires at its own deadline, once.
    t.arm(100);
    c.advance(10);
    t.cancel();
    t.arm(50); // due at 310, before the pending clock timer (350): that one is replaced
    expect(c.pending).toBe(1);
    c.runUntilIdle();
    expect(fired).toEqual([310]);
    t.arm(100);
    t.stop();
    expect(c.pending).toBe(0);
    c.runUntilIdle();
    expect(fired).toEqual([310]);
  });
  it('Agenda: one timer for many items; items due now run in one deferred batch, in order', () => {
    const c = new VirtualClock();
    const ran: string[] = [];
    const a = new Agenda<string>(c, (x) => ran.push(`${x}@${c.now()}`));
    a.schedule(20, 'late');
    a.schedule(10, 'early');
    a.schedule(0, 'now1');
    a.schedule(0, 'now2');
    expect(c.pending).toBeLessThanOrEqual(2);
    c.runUntilIdle();
    expect(ran).toEqual(['now1@0', 'now2@0', 'early@10', 'late@20']);
  });

  it('RealClock runs deferred callbacks in FIFO order as soon as the current work is done, before the event loop turns', async () => {
    const c = new RealClock();
    const got: string[] = [];
    setImmediate(() => got.push('next turn'));
    c.defer(() => got.push('1'));
    c.defer(() => got.push('2'));
    got.push('sync');
    await new Promise((r) => setImmediate(r));
    expect(got).toEqual(['sync', '1', '2', 'next turn']);
  });

  it('RealClock runs what a deferred batch defers after setImmediate callbacks already queued, so a chain lets the loop turn', async () => {
    const c = new RealClock();
    const got: string[] = [];
    c.defer(() => {
      got.push('first hop');
      setImmediate(() => got.push('queued before the second hop'));
      c.defer(() => got.push('second hop'));
    });
    await new Promise((r) => setTimeout(r, 5));
    expect(got).toEqual(['first hop', 'queued before the second hop', 'second hop']);
  });

  it('Rng is deterministic per seed', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const xs = Array.from({ length: 5 }, () => a.next());
    expect(xs).toEqual(Array.from({ length: 5 }, () => b.next()));
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(new Rng(1).chance(0)).toBe(false);
  });
});

describe('sequence arithmetic', () => {
  it('compares modulo 2^32', () => {
    expect(before(0xfffffff0, 5)).toBe(true);
    expect(after(5, 0xfffffff0)).toBe(true);
    expect(seqAdd(0xffffffff, 2)).toBe(1);
    expect(seqDiff(1, 0xffffffff)).toBe(2);
  });
});

describe('RTO estimator (RFC 6298)', () => {
  it('first sample, smoothing, clamping and backoff', () => {
    const r = new RtoEstimator({ rtoMin: 200, rtoMax: 60_000, rtoInitial: 1000, granularity: 1 });
    expect(r.rto).toBe(1000);
    r.sample(100); // srtt 100, rttvar 50 → 300
    expect([r.srtt, r.rttvar, r.rto]).toEqual([100, 50, 300]);
    r.sample(20); // rttvar = .75·50 + .25·80 = 57.5; srtt = 90 → 90 + 230 = 320
    expect([r.srtt, r.rttvar, r.rto]).toEqual([90, 57.5, 320]);
    r.onTimeout();
    r.onTimeout();
    expect(r.rto).toBe(1280);
    for (let i = 0; i < 20; i++) r.onTimeout();
    expect(r.rto).toBe(60_000);
    r.resetBackoff();
    expect(r.rto).toBe(320);
    const fast = new RtoEstimator({ rtoMin: 200, rtoMax: 60_000, rtoInitial: 1000, granularity: 1 });
    fast.sample(1);
    expect(fast.rto).toBe(200);
  });
});

describe('Reno congestion control (RFC 5681 / 6582)', () => {
  it('slow start, congestion avoidance, fast recovery, RTO', () => {
    const mss = 1000;
    const cc = new RenoCongestion(mss, 10);
    expect(cc.cwnd).toBe(10_000);
    cc.onAck(1000);
    expect(cc.cwnd).toBe(11_000); // slow start: + SMSS per ACK
    cc.onFastRetransmit(20_000);
    expect([cc.ssthresh, cc.cwnd]).toEqual([10_000, 13_000]);
    cc.onRecoveryDupAck();
    expect(cc.cwnd).toBe(14_000);
    cc.onPartialAck(3000);
    expect(cc.cwnd).toBe(12_000);
    cc.onRecoveryExit(4000);
    expect(cc.cwnd).toBe(5000);
    cc.onAck(1000); // 5000 < ssthresh: still slow start
    expect(cc.cwnd).toBe(6000);
    const ca = new RenoCongestion(mss, 10);
    ca.onFastRetransmit(20_000);
    ca.onRecoveryExit(20_000); // cwnd = ssthresh = 10000: congestion avoidance
    for (let i = 0; i < 9; i++) ca.onAck(1000);
    expect(ca.cwnd).toBe(10_000);
    ca.onAck(1000); // a cwnd's worth ACKed: + one SMSS
    expect(ca.cwnd).toBe(11_000);
    ca.onRto(3000);
    expect([ca.ssthresh, ca.cwnd]).toEqual([2000, 1000]);
  });
});

describe('TcpReceiver', () => {
  function receiver(opts: { rcvWnd?: number; staleWindow?: number } = {}) {
    const clock = new VirtualClock();
    const bus = new EventBus<NetstackEvent>();
    const acks: WireAck[] = [];
    const delivered: Buffer[] = [];
    let fin = 0;
    const r = new TcpReceiver(
      { mss: 100, rcvWnd: opts.rcvWnd ?? 10_000, delayedAck: false, ackDelay: 40, staleWindow: opts.staleWindow ?? 1000, irs: 0xffffffff, keepFirstCopies: true },
      clock,
      bus,
      1,
      (a) => acks.push(a),
      (chunks, done) => {
        delivered.push(...chunks.map((c) => Buffer.from(c)));
        done();
      },
      () => fin++,
      () => {},
    );
    const stale: [number, number][] = [];
    bus.on('stale-retransmit', (e) => stale.push([e.seq, e.end]));
    const dropped: string[] = [];
    bus.on('segment-drop', (e) => dropped.push(`${e.reason}:${e.seq}-${e.end}`));
    const seg = (seq: number, text: string, flags = 0): WireSegment => ({ seq, len: text.length, flags, payload: [Buffer.from(text)], skb: null });
    return { r, acks, delivered: () => Buffer.concat(delivered).toString(), stale, dropped, seg, fin: () => fin };
  }

  it('reassembles out-of-order segments and delivers in order (sequence space starting at 0)', () => {
    const t = receiver();
    t.r.receive(t.seg(5, 'fgh'));
    expect(t.acks.at(-1)!.ack).toBe(0); // a duplicate ACK for the hole
    t.r.receive(t.seg(10, 'klm', 0x01));
    t.r.receive(t.seg(0, 'abcde'));
    expect(t.delivered()).toBe('abcdefgh');
    t.r.receive(t.seg(8, 'ij'));
    expect(t.delivered()).toBe('abcdefghijklm');
    expect(t.fin()).toBe(1);
    expect(t.acks.at(-1)!.ack).toBe(14); // FIN counts one
  });

  it('trims overlaps and counts whole duplicates; equal bytes raise nothing', () => {
    const t = receiver();
    t.r.receive(t.seg(0, 'abcd'));
    t.r.receive(t.seg(2, 'cdef'));
    t.r.receive(t.seg(0, 'abcdef'));
    t.r.receive(t.seg(10, 'klm'));
    t.r.receive(t.seg(11, 'lm'));
    expect(t.delivered()).toBe('abcdef');
    expect(t.r.duplicates).toBe(2);
    expect(t.stale).toEqual([]);
  });

  it('raises stale-retransmit when a later copy of a delivered or queued range carries other bytes', () => {
    const t = receiver();
    t.r.receive(t.seg(0, 'abcdef'));
    t.r.receive(t.seg(2, 'cXe'));
    expect(t.stale).toEqual([[2, 5]]);
    t.r.receive(t.seg(20, 'uvw'));
    t.r.receive(t.seg(21, 'Vw'));
    expect(t.stale).toEqual([
      [2, 5],
      [21, 23],
    ]);
    expect(t.delivered()).toBe('abcdef'); // the first copy wins
    expect(t.r.staleRetransmits).toBe(2);
  });

  it('checks only the configured window of history (ring buffer)', () => {
    const t = receiver({ staleWindow: 8 });
    t.r.receive(t.seg(0, 'abcdefghijklmnop'));
    t.r.receive(t.seg(0, 'XXXXXXXX')); // older than the last 8 bytes: unchecked
    expect(t.stale).toEqual([]);
    t.r.receive(t.seg(6, 'ghijklmnoX'));
    expect(t.stale).toEqual([[8, 16]]);
  });

  it('drops data beyond the window and advertises what is left', () => {
    const t = receiver({ rcvWnd: 4 });
    t.r.receive(t.seg(0, 'abcdef'));
    expect(t.delivered()).toBe('abcd');
    expect(t.acks.at(-1)).toEqual({ ack: 4, window: 4 });
    t.r.receive(t.seg(9, 'jk'));
    expect(t.dropped).toEqual(['window:9-11']);
  });
});
