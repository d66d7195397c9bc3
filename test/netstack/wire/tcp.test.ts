import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../netstack/clock.ts';
import { FragDestructor } from '../../../netstack/destructor.ts';
import { Page } from '../../../netstack/page.ts';
import { parseIpv4 } from '../../../netstack/wire/addr.ts';
import { WIRE_DEFAULT_LIMITS, WireStack, type WireLimits } from '../../../netstack/wire/stack.ts';
import type { WireTcpSock } from '../../../netstack/wire/tcp-sock.ts';
import { useSkbRegistry } from '../helpers.ts';
import { ACK, arpRequest, dissect, FIN, PSH, RST, SYN, tcpFrame, type Dissected } from '../../support/wire-peer.ts';

useSkbRegistry();

const PORT = 2049;
const CPORT = 800;
const IRS = 0xfffff000; // the guest's ISN: close to the wrap, so sequence arithmetic is exercised

/** A stack with one established connection from a hand-driven peer. */
function connect(limits: Partial<WireLimits> = {}, wscale: number | null = 7) {
  const clock = new VirtualClock();
  const out: Buffer[] = [];
  let nextId = 1;
  const stack = new WireStack({
    clock,
    bus: null,
    mac: Buffer.from([2, 0, 0, 0, 0, 1]),
    addr: parseIpv4('10.0.3.1')!,
    prefix: 24,
    limits: { ...WIRE_DEFAULT_LIMITS, ...limits },
    faults: () => ({}),
    seed: 3,
    output: (f) => out.push(f),
    nextConnId: () => nextId++,
  });
  const received: Buffer[] = [];
  let sock: WireTcpSock | null = null;
  stack.tcpListen(PORT, (s) => {
    sock = s;
    s.onData = (chunks, done) => {
      for (const c of chunks) received.push(Buffer.from(c));
      done();
    };
  });
  stack.input(arpRequest());
  out.length = 0;
  stack.input(tcpFrame({ srcPort: CPORT, dstPort: PORT, seq: IRS, flags: SYN, mss: 1460, ...(wscale !== null ? { wscale } : {}) }));
  const synack = dissect(out.shift()!);
  const iss = synack.tcp!.seq;
  const snd = { nxt: (IRS + 1) >>> 0, ack: (iss + 1) >>> 0 };
  stack.input(tcpFrame({ srcPort: CPORT, dstPort: PORT, seq: snd.nxt, ack: snd.ack, flags: ACK, window: 65535 >> (wscale ?? 0) }));
  const peerWindow = 65535 >> (wscale ?? 0);
  const take = (): Dissected[] => out.splice(0).map(dissect);
  /** Sends a segment from the peer. */
  const send = (seq: number, flags: number, data?: Buffer, ack = snd.ack, window = peerWindow) =>
    stack.input(tcpFrame({ srcPort: CPORT, dstPort: PORT, seq, ack, flags, window }, data));
  return { clock, stack, sock: sock!, received, take, send, snd, iss };
}

const stream = (n: number, seed: number) => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + seed * 17 + (i >> 9)) & 0xff;
  return b;
};

describe('wire TCP: receive side', () => {
  it('delivers in-order data, ACKs it (delayed for one segment, at once for the second), with the scaled window', () => {
    const c = connect();
    c.send(c.snd.nxt, ACK | PSH, Buffer.from('hello'));
    expect(c.take()).toEqual([]); // delayed ACK
    c.clock.advance(50);
    const [a] = c.take();
    expect(a!.tcp).toMatchObject({ flags: ACK, ack: (IRS + 1 + 5) >>> 0, checksumOk: true });
    expect(a!.tcp!.window).toBe((1024 * 1024) >> 5);
    c.send((IRS + 6) >>> 0, ACK, stream(1460, 1));
    c.send((IRS + 6 + 1460) >>> 0, ACK, stream(1460, 2));
    expect(c.take().map((f) => f.tcp!.ack)).toEqual([(IRS + 6 + 2920) >>> 0]);
    expect(Buffer.concat(c.received)).toEqual(Buffer.concat([Buffer.from('hello'), stream(1460, 1), stream(1460, 2)]));
  });

  it('queues out-of-order data, ACKs the hole at once, and delivers when it fills', () => {
    const c = connect();
    const data = stream(3000, 3);
    c.send((IRS + 1 + 1000) >>> 0, ACK, data.subarray(1000, 2000));
    expect(c.take().map((f) => f.tcp!.ack)).toEqual([(IRS + 1) >>> 0]);
    c.send((IRS + 1 + 2000) >>> 0, ACK, data.subarray(2000));
    c.send((IRS + 1) >>> 0, ACK, data.subarray(0, 1000));
    expect(Buffer.concat(c.received)).toEqual(data);
    expect(c.take().at(-1)!.tcp!.ack).toBe((IRS + 1 + 3000) >>> 0);
  });

  it('drops segments outside the window with a duplicate ACK, and never delivers them', () => {
    const c = connect();
    c.send((IRS + 1 + 5_000_000) >>> 0, ACK, Buffer.from('far ahead'));
    c.send((IRS - 100_000) >>> 0, ACK, Buffer.from('long ago'));
    expect(c.take().map((f) => f.tcp!.ack)).toEqual([(IRS + 1) >>> 0, (IRS + 1) >>> 0]);
    expect(c.received).toEqual([]);
    expect(c.stack.counters.drops['tcp-out-of-window']).toBe(2);
  });

  it('a RST at the wrong sequence gets a challenge ACK; one at rcv_nxt resets', () => {
    const c = connect();
    let closed = '';
    c.sock.onClosed = (why) => (closed = why);
    c.send((IRS + 1 + 100) >>> 0, RST);
    expect(c.take().map((f) => f.tcp!.flags)).toEqual([ACK]);
    expect(c.sock.state).toBe('ESTABLISHED');
    expect(c.stack.counters.drops['tcp-bad-rst']).toBe(1);
    c.send((IRS + 1) >>> 0, RST);
    expect(c.sock.state).toBe('CLOSED');
    expect(closed).toBe('reset by peer');
    expect(c.take()).toEqual([]);
  });

  it('a SYN on an established connection gets a challenge ACK and changes nothing', () => {
    const c = connect();
    c.send((IRS + 1) >>> 0, SYN);
    expect(c.take().map((f) => f.tcp!.flags)).toEqual([ACK]);
    expect(c.sock.state).toBe('ESTABLISHED');
  });

  it('peer FIN → CLOSE_WAIT; our close → LAST_ACK → CLOSED on the ACK of our FIN; data after the FIN is dropped', () => {
    const c = connect();
    let fin = false;
    c.sock.onPeerFin = () => (fin = true);
    c.send((IRS + 1) >>> 0, ACK | FIN, Buffer.from('bye'));
    expect(fin).toBe(true);
    expect(c.sock.state).toBe('CLOSE_WAIT');
    expect(c.take().at(-1)!.tcp!.ack).toBe((IRS + 1 + 4) >>> 0);
    c.send((IRS + 1 + 4) >>> 0, ACK, Buffer.from('more?'));
    expect(c.stack.counters.drops['tcp-data-after-fin']).toBe(1);
    c.take();
    c.sock.close();
    c.clock.advance(1);
    const [f] = c.take();
    expect(f!.tcp!.flags & FIN).toBe(FIN);
    expect(c.sock.state).toBe('LAST_ACK');
    c.send((IRS + 1 + 4) >>> 0, ACK, undefined, (c.iss + 2) >>> 0);
    expect(c.sock.state).toBe('CLOSED');
    expect(c.stack.socks.size).toBe(0);
    expect(Buffer.concat(c.received).toString()).toBe('bye');
  });

  it('our close first: FIN_WAIT1 → FIN_WAIT2 → TIME_WAIT, which re-ACKs a repeated FIN and ends after timeWaitMs', () => {
    const c = connect({ timeWaitMs: 2000 });
    c.sock.close();
    c.clock.advance(1);
    expect(c.take()[0]!.tcp!.flags & FIN).toBe(FIN);
    c.send((IRS + 1) >>> 0, ACK, undefined, (c.iss + 2) >>> 0);
    expect(c.sock.state).toBe('FIN_WAIT2');
    c.send((IRS + 1) >>> 0, ACK | FIN, undefined, (c.iss + 2) >>> 0);
    expect(c.sock.state).toBe('TIME_WAIT');
    c.take();
    c.send((IRS + 1) >>> 0, ACK | FIN, undefined, (c.iss + 2) >>> 0);
    expect(c.take().map((f) => [f.tcp!.flags, f.tcp!.ack])).toEqual([[ACK, (IRS + 2) >>> 0]]);
    c.clock.advance(2500);
    expect(c.stack.socks.size).toBe(0);
  });
});

describe('wire TCP: send side through the model sender', () => {
  it('segments a reply at the MSS with valid checksums; the destructor fires when the ACK covers the last byte', () => {
    const c = connect();
    const page = new Page(stream(8192, 9));
    let fired = -1;
    const d = new FragDestructor(() => (fired = c.clock.now()));
    c.sock.sendpage(page, 0, 8192, d);
    d.unref();
    c.clock.advance(1);
    const segs = c.take();
    expect(segs.map((f) => f.tcp!.payload.length)).toEqual([1460, 1460, 1460, 1460, 1460, 892]);
    expect(segs.every((f) => f.tcp!.checksumOk && f.ip!.checksumOk)).toBe(true);
    expect(Buffer.concat(segs.map((f) => f.tcp!.payload))).toEqual(page.buf);
    c.send((IRS + 1) >>> 0, ACK, undefined, (c.iss + 1 + 4000) >>> 0);
    expect(fired).toBe(-1);
    c.clock.advance(10);
    c.send((IRS + 1) >>> 0, ACK, undefined, (c.iss + 1 + 8192) >>> 0);
    expect(fired).toBe(c.clock.now());
  });

  it('three duplicate ACKs bring a fast retransmission of the hole; a retransmission carries the page bytes of that moment with a valid checksum', () => {
    const c = connect();
    const page = new Page(stream(1460 * 5, 4));
    c.sock.sendpage(page, 0, page.buf.length, null);
    c.clock.advance(1);
    c.take();
    // Change the page after it was sent (legacy mode's bug): the retransmission reads it anew.
    page.buf.fill(0xee, 0, 1460);
    const una = (c.iss + 1) >>> 0;
    for (let i = 0; i < 3; i++) c.send((IRS + 1) >>> 0, ACK, undefined, una);
    c.clock.advance(1);
    const [re] = c.take();
    expect(re!.tcp!.seq).toBe(una);
    expect(re!.tcp!.checksumOk).toBe(true);
    expect(re!.tcp!.payload.equals(Buffer.alloc(1460, 0xee))).toBe(true);
    expect(c.sock.sender.fastRetransmits).toBe(1);
    expect(c.sock.sender.dupAcksIn).toBe(3);
  });

  it('data segments from the peer carrying an old ACK are not duplicate ACKs', () => {
    const c = connect();
    c.sock.sendmsg(stream(3000, 5));
    c.clock.advance(1);
    c.take();
    for (let i = 0; i < 4; i++) c.send((IRS + 1 + i * 10) >>> 0, ACK, stream(10, i));
    expect(c.sock.sender.dupAcksIn).toBe(0);
    expect(c.sock.sender.fastRetransmits).toBe(0);
  });

  it('an unanswered peer is retransmitted to with backoff, then aborted with a RST after the user timeout; pages go back', () => {
    const c = connect({ userTimeoutMs: 5000 });
    const page = new Page(stream(4096, 6));
    let fired = false;
    const d = new FragDestructor(() => (fired = true));
    c.sock.sendpage(page, 0, 4096, d);
    d.unref();
    c.clock.advance(6000);
    const frames = c.take();
    expect(frames.filter((f) => f.tcp!.seq === ((c.iss + 1) >>> 0) && f.tcp!.payload.length > 0).length).toBeGreaterThanOrEqual(3);
    expect(frames.at(-1)!.tcp!.flags & RST).toBe(RST);
    expect(c.sock.state).toBe('CLOSED');
    expect(fired).toBe(true);
  });

  it('without window scaling on the SYN, neither side scales', () => {
    const c = connect({}, null);
    c.send((IRS + 1) >>> 0, ACK | PSH, Buffer.from('x'));
    c.clock.advance(50);
    expect(c.take()[0]!.tcp!.window).toBe(65535);
  });
});

describe('wire TCP: property', () => {
  it('the receiver rebuilds the exact byte stream under random segmentation, loss, duplication and reordering', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20_000 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.array(fc.integer({ min: 1, max: 1460 }), { minLength: 1, maxLength: 64 }),
        fc.double({ min: 0, max: 0.4, noNaN: true }),
        fc.double({ min: 0, max: 0.3, noNaN: true }),
        fc.integer({ min: 0, max: 2 ** 31 }),
        (len, seed, cuts, loss, dup, shuffleSeed) => {
          const c = connect();
          const data = stream(len, seed);
          // Segments of varying sizes (the cut list repeats).
          const segs: { off: number; len: number }[] = [];
          for (let off = 0, i = 0; off < len; i++) {
            const n = Math.min(cuts[i % cuts.length]!, len - off);
            segs.push({ off, len: n });
            off += n;
          }
          let r = shuffleSeed;
          const rand = () => ((r = (r * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
          // Rounds: each sends what is not yet ACKed, shuffled, some lost, some twice; until all arrived.
          for (let round = 0; round < 200; round++) {
            const acked = ((c.sock.receiver.rcvNxt - (IRS + 1)) >>> 0) as number;
            if (acked >= len) break;
            const pending = segs.filter((s) => s.off + s.len > acked);
            const batch: typeof pending = [];
            for (const s of pending) {
              if (rand() < loss) continue;
              batch.push(s);
              if (rand() < dup) batch.push(s);
            }
            for (let i = batch.length - 1; i > 0; i--) {
              const j = Math.floor(rand() * (i + 1));
              [batch[i], batch[j]] = [batch[j]!, batch[i]!];
            }
            for (const s of batch) c.send((IRS + 1 + s.off) >>> 0, ACK, data.subarray(s.off, s.off + s.len));
            c.clock.advance(50);
          }
          expect(Buffer.concat(c.received)).toEqual(data);
          c.clock.advance(50);
          const acks = c.take().filter((f) => f.tcp!.flags === ACK);
          expect(acks.at(-1)!.tcp!.ack).toBe((IRS + 1 + len) >>> 0);
        },
      ),
      { numRuns: 80 },
    );
  });
});
