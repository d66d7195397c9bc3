import { describe, expect, it } from 'vitest';
import { EventStream, type StreamSocket } from '../../server/http/event-stream.ts';
import { testLog } from '../support/logger.ts';

/** A socket whose unsent byte count the test sets, as a stalled TCP peer would leave it. */
class FakeSocket implements StreamSocket {
  readyState = 1;
  bufferedAmount = 0;
  readonly sent: { type: string; dropped: number; delta?: { n: number } }[] = [];
  closed: number | null = null;

  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }

  close(code?: number): void {
    this.closed = code ?? 1000;
    this.readyState = 3;
  }
}

function source() {
  let n = 0;
  return { snapshot: () => ({ n }), delta: () => ({ n: ++n }) };
}

describe('EventStream', () => {
  it('queues for a stalled socket up to the bound, drops the oldest, then resyncs with a snapshot', () => {
    const stream = new EventStream(source(), testLog, { maxQueuedBatches: 4, maxSocketBufferedBytes: 100 }, false);
    const slow = new FakeSocket();
    const fast = new FakeSocket();
    stream.add(slow);
    stream.add(fast);
    slow.bufferedAmount = 1000;
    for (let i = 0; i < 10; i++) stream.tick();
    expect(stream.stats()).toMatchObject({ deltas: 10, dropped: 6, maxQueued: 4 });
    expect(slow.sent.map((m) => m.type)).toEqual(['snapshot']);
    expect(fast.sent).toHaveLength(11);
    expect(fast.sent.every((m) => m.dropped === 0)).toBe(true);

    slow.bufferedAmount = 0;
    stream.tick();
    // That tick's delta overflowed the queue once more; the snapshot replaces it and those still queued.
    expect(slow.sent.map((m) => m.type)).toEqual(['snapshot', 'snapshot']);
    expect(slow.sent[1]!.dropped).toBe(7);
    stream.tick();
    expect(slow.sent[2]).toMatchObject({ type: 'delta', dropped: 7, delta: { n: 12 } });
    expect(stream.stats().maxQueued).toBe(0);
  });

  it('bounds queued bytes as well as queued deltas', () => {
    const big = { snapshot: () => ({}), delta: () => ({ pad: 'x'.repeat(1000) }) };
    const stream = new EventStream(big, testLog, { maxQueuedBatches: 100, maxQueuedBytes: 3000, maxSocketBufferedBytes: 0 }, false);
    const s = new FakeSocket();
    stream.add(s);
    s.bufferedAmount = 1;
    for (let i = 0; i < 10; i++) stream.tick();
    expect(stream.stats().maxQueued).toBe(2);
    expect(stream.stats().maxQueuedBytes).toBeLessThanOrEqual(3000);
  });

  it('sends nothing to a closed socket and forgets removed ones', () => {
    const stream = new EventStream(source(), testLog, {}, false);
    const s = new FakeSocket();
    stream.add(s);
    s.readyState = 3;
    stream.tick();
    expect(s.sent).toHaveLength(1);
    stream.remove(s);
    expect(stream.stats().clients).toBe(0);
    stream.tick();
    expect(stream.stats().deltas).toBe(1);
  });

  it('serializes one snapshot for the clients that need one between two ticks, a fresh one after a tick', () => {
    let snapshots = 0;
    let n = 0;
    const counted = { snapshot: () => ({ snapshot: ++snapshots, n }), delta: () => ({ n: ++n }) };
    const stream = new EventStream(counted, testLog, {}, false);
    const a = new FakeSocket();
    const b = new FakeSocket();
    stream.add(a);
    stream.add(b);
    expect(snapshots).toBe(1);
    stream.tick();
    const c = new FakeSocket();
    stream.add(c);
    expect(snapshots).toBe(2);
    // The next delta completes it: it carries every change since the tick before the snapshot.
    stream.tick();
    expect(c.sent.map((m) => m.type)).toEqual(['snapshot', 'delta']);
    expect(c.sent[1]!.delta).toEqual({ n: 2 });
  });
});
