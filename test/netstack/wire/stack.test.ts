import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../netstack/clock.ts';
import { parseIpv4 } from '../../../netstack/wire/addr.ts';
import { fragmentRanges } from '../../../netstack/wire/ipv4.ts';
import { WIRE_DEFAULT_LIMITS, WireStack, type WireLimits } from '../../../netstack/wire/stack.ts';
import { arpRequest, dissect, eth, GUEST_MAC, icmpEcho, ipv4, SERVER_MAC, tcpFrame, udp, udpFrame, ACK, RST, SYN } from '../../support/wire-peer.ts';

function makeStack(limits: Partial<WireLimits> = {}) {
  const clock = new VirtualClock();
  const out: Buffer[] = [];
  let id = 1;
  const stack = new WireStack({
    clock,
    bus: null,
    mac: SERVER_MAC,
    addr: parseIpv4('10.0.3.1')!,
    prefix: 24,
    limits: { ...WIRE_DEFAULT_LIMITS, ...limits },
    faults: () => ({}),
    seed: 7,
    output: (f) => out.push(f),
    nextConnId: () => id++,
  });
  return { clock, stack, out, take: () => out.splice(0).map(dissect) };
}

/** Teaches the stack the guest's MAC (as the guest's first ARP request would). */
function withArp(s: ReturnType<typeof makeStack>) {
  s.stack.input(arpRequest());
  s.out.length = 0;
  return s;
}

describe('wire: Ethernet and ARP', () => {
  it('answers an ARP request for its address with its MAC, and learns the asker', () => {
    const s = makeStack();
    s.stack.input(arpRequest());
    const [r] = s.take();
    expect(r!.type).toBe(0x0806);
    expect(r!.dstMac).toEqual(GUEST_MAC);
    expect(r!.arp).toMatchObject({ op: 2, spa: '10.0.3.1', tpa: '10.0.3.15' });
    expect(r!.arp!.sha).toEqual(SERVER_MAC);
    expect(s.stack.arp.lookup(parseIpv4('10.0.3.15')!)).toEqual(GUEST_MAC);
  });

  it('ignores ARP for another address, and counts truncated or foreign frames', () => {
    const s = makeStack();
    s.stack.input(arpRequest([10, 0, 3, 99]));
    s.stack.input(Buffer.alloc(10));
    s.stack.input(eth(0x0800, Buffer.alloc(30), Buffer.from([2, 9, 9, 9, 9, 9])));
    s.stack.input(eth(0x86dd, Buffer.alloc(40)));
    s.stack.input(eth(0x0806, Buffer.alloc(12)));
    expect(s.take()).toEqual([]);
    expect(s.stack.counters.drops).toMatchObject({ 'arp-not-for-us': 1, 'eth-truncated': 1, 'eth-not-for-us': 1, 'eth-type': 1, 'arp-malformed': 1 });
  });

  it('the ARP cache is bounded and entries expire', () => {
    const s = makeStack({ arpEntries: 4, arpTtlMs: 1000 });
    for (let i = 2; i < 12; i++) s.stack.input(arpRequest(undefined, [10, 0, 3, i]));
    expect(s.stack.arp.size).toBe(4);
    expect(s.stack.arp.lookup(parseIpv4('10.0.3.11')!)).not.toBeNull();
    s.clock.advance(1001);
    expect(s.stack.arp.lookup(parseIpv4('10.0.3.11')!)).toBeNull();
  });

  it('asks ARP for an unknown destination and sends what waited once the reply comes', () => {
    const s = makeStack();
    s.stack.udpSend({ addr: parseIpv4('10.0.3.15')!, port: 999 }, 111, Buffer.from('hello'));
    const [req] = s.take();
    expect(req!.arp).toMatchObject({ op: 1, tpa: '10.0.3.15' });
    const reply = arpRequest();
    reply.writeUInt16BE(2, 14 + 6);
    s.stack.input(reply);
    const [u] = s.take();
    expect(u!.udp).toMatchObject({ dstPort: 999, checksumOk: true });
    expect(u!.udp!.payload.toString()).toBe('hello');
  });
});

describe('wire: IPv4 and ICMP', () => {
  it('answers an echo request with the same identifier, sequence and data', () => {
    const s = withArp(makeStack());
    s.stack.input(eth(0x0800, ipv4({ proto: 1 }, icmpEcho(0x1234, 7, Buffer.from('ping data')))));
    const [r] = s.take();
    expect(r!.ip).toMatchObject({ src: '10.0.3.1', dst: '10.0.3.15', checksumOk: true, ttl: 64 });
    expect(r!.icmp).toMatchObject({ type: 0, code: 0, checksumOk: true });
    expect(r!.icmp!.rest.readUInt16BE(0)).toBe(0x1234);
    expect(r!.icmp!.rest.readUInt16BE(2)).toBe(7);
    expect(r!.icmp!.rest.subarray(4).toString()).toBe('ping data');
  });

  it('drops bad checksums, options, wrong versions, short and lying lengths, zero TTL — and counts each', () => {
    const s = withArp(makeStack());
    const echo = icmpEcho(1, 1, Buffer.from('x'));
    s.stack.input(eth(0x0800, ipv4({ proto: 1, badChecksum: true }, echo)));
    s.stack.input(eth(0x0800, ipv4({ proto: 1, options: Buffer.from([1, 1, 1, 0]) }, echo)));
    const v6 = ipv4({ proto: 1 }, echo);
    v6[0] = 0x65;
    s.stack.input(eth(0x0800, v6));
    s.stack.input(eth(0x0800, ipv4({ proto: 1 }, echo).subarray(0, 12)));
    const long = ipv4({ proto: 1 }, echo);
    long.writeUInt16BE(500, 2);
    s.stack.input(eth(0x0800, long));
    s.stack.input(eth(0x0800, ipv4({ proto: 1, ttl: 0 }, echo)));
    s.stack.input(eth(0x0800, ipv4({ proto: 1, dst: [10, 0, 3, 2] }, echo)));
    const badIcmp = icmpEcho(1, 1, Buffer.from('x'));
    badIcmp[2]! ^= 0xff;
    s.stack.input(eth(0x0800, ipv4({ proto: 1 }, badIcmp)));
    s.stack.input(eth(0x0800, ipv4({ proto: 47 }, Buffer.alloc(8))));
    expect(s.take()).toEqual([]);
    expect(s.stack.counters.drops).toEqual({
      'ip-checksum': 1,
      'ip-options': 1,
      'ip-version': 1,
      'ip-truncated': 1,
      'ip-total-length': 1,
      'ip-ttl': 1,
      'ip-not-for-us': 1,
      'icmp-checksum': 1,
      'ip-proto': 1,
    });
    expect(s.stack.checksumFailures).toBe(2);
  });

  it('reassembles fragments in any order, drops overlaps, duplicates and stale queues', () => {
    const s = withArp(makeStack({ fragTimeoutMs: 5000 }));
    const got: Buffer[] = [];
    s.stack.udpBind(2049, (p) => got.push(Buffer.from(p)));
    const payload = Buffer.alloc(3000);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
    const dgram = udp(800, 2049, payload);
    const part = (id: number, off: number, len: number, mf: boolean) => eth(0x0800, ipv4({ proto: 17, id, fragOff: off, mf }, dgram.subarray(off, off + len)));
    // Out of order, with an exact duplicate in the middle.
    s.stack.input(part(1, 2400, dgram.length - 2400, false));
    s.stack.input(part(1, 0, 1200, true));
    s.stack.input(part(1, 0, 1200, true));
    s.stack.input(part(1, 1200, 1200, true));
    expect(got).toHaveLength(1);
    expect(got[0]).toEqual(payload);
    expect(s.stack.counters.drops['frag-duplicate']).toBe(1);
    // Overlap: the whole datagram goes.
    s.stack.input(part(2, 0, 1200, true));
    s.stack.input(part(2, 800, 1200, true));
    s.stack.input(part(2, 2000, dgram.length - 2000, false));
    expect(got).toHaveLength(1);
    expect(s.stack.counters.drops['frag-overlap']).toBe(1);
    expect(s.stack.frags.queued).toBe(1); // the last part opened a new queue of its own
    // Timeout: a queue never completed is dropped after fragTimeoutMs.
    s.clock.advance(6000);
    expect(s.stack.frags.queued).toBe(0);
    expect(s.stack.frags.queuedBytes).toBe(0);
  });

  it('bounds reassembly: queues, bytes, and datagrams past 64 KiB', () => {
    const s = withArp(makeStack({ fragQueues: 8, fragBytes: 16 * 1024 }));
    for (let id = 0; id < 100; id++) s.stack.input(eth(0x0800, ipv4({ proto: 17, id, mf: true }, Buffer.alloc(1400))));
    expect(s.stack.frags.queued).toBe(8);
    expect(s.stack.counters.drops['frag-queues']).toBe(92);
    for (let k = 0; k < 40; k++) s.stack.input(eth(0x0800, ipv4({ proto: 17, id: 1, mf: true, fragOff: 1400 + k * 1400 }, Buffer.alloc(1400))));
    expect(s.stack.frags.queuedBytes).toBeLessThanOrEqual(16 * 1024);
    expect(s.stack.counters.drops['frag-memory']).toBeGreaterThan(0);
    s.stack.input(eth(0x0800, ipv4({ proto: 17, id: 500, mf: true, fragOff: 65000 }, Buffer.alloc(800))));
    expect(s.stack.counters.drops['frag-too-big']).toBe(1);
  });

  it('fragments an outgoing UDP datagram above the MTU into 8-byte-aligned pieces that rebuild it', () => {
    expect(fragmentRanges(1472, 1500)).toEqual([{ off: 0, len: 1472, mf: false }]);
    const s = withArp(makeStack());
    const payload = Buffer.alloc(8000, 0xab);
    payload.write('start');
    s.stack.udpSend({ addr: parseIpv4('10.0.3.15')!, port: 700 }, 2049, payload);
    const frames = s.take();
    expect(frames.length).toBe(6);
    const whole = Buffer.alloc(8 + payload.length);
    for (const f of frames) {
      expect(f.ip!.checksumOk).toBe(true);
      expect(f.ip!.payload.length + 20).toBeLessThanOrEqual(1500);
      expect(f.ip!.df).toBe(false);
      if (f.ip!.mf) expect(f.ip!.payload.length % 8).toBe(0);
      f.ip!.payload.copy(whole, f.ip!.fragOff);
    }
    expect(new Set(frames.map((f) => f.ip!.id)).size).toBe(1);
    expect(frames.filter((f) => !f.ip!.mf)).toHaveLength(1);
    const rebuilt = dissect(eth(0x0800, ipv4({ proto: 17, src: [10, 0, 3, 1], dst: [10, 0, 3, 15] }, whole)));
    expect(rebuilt.udp!.checksumOk).toBe(true);
    expect(rebuilt.udp!.payload).toEqual(payload);
  });
});

describe('wire: UDP', () => {
  it('delivers to a bound port, with or without a checksum; drops a bad one', () => {
    const s = withArp(makeStack());
    const got: string[] = [];
    s.stack.udpBind(111, (p, from) => got.push(`${from.port}:${p.toString()}`));
    s.stack.input(udpFrame(900, 111, Buffer.from('a')));
    s.stack.input(eth(0x0800, ipv4({ proto: 17 }, udp(901, 111, Buffer.from('b'), { noChecksum: true }))));
    s.stack.input(eth(0x0800, ipv4({ proto: 17 }, udp(902, 111, Buffer.from('c'), { badChecksum: true }))));
    const short = udp(903, 111, Buffer.from('dddd'));
    short.writeUInt16BE(100, 4);
    s.stack.input(eth(0x0800, ipv4({ proto: 17 }, short)));
    expect(got).toEqual(['900:a', '901:b']);
    expect(s.stack.counters.drops).toMatchObject({ 'udp-checksum': 1, 'udp-length': 1 });
  });

  it('answers a datagram to a closed port with ICMP port unreachable quoting it', () => {
    const s = withArp(makeStack());
    s.stack.input(udpFrame(900, 4444, Buffer.from('nobody')));
    const [r] = s.take();
    expect(r!.icmp).toMatchObject({ type: 3, code: 3, checksumOk: true });
    const quoted = r!.icmp!.rest.subarray(4);
    expect(quoted.length).toBe(28);
    expect(quoted.readUInt16BE(20 + 2)).toBe(4444);
  });

  it('asks ARP again each second while a datagram to an unknown neighbour waits, sends it once answered, drops it after 3 s', () => {
    const s = makeStack();
    const guest = { addr: parseIpv4('10.0.3.15')!, port: 111 };
    const asks = () => s.take().filter((d) => d.arp?.op === 1 && d.arp.tpa === '10.0.3.15').length;
    s.stack.udpSend(guest, 40000, Buffer.from('first'));
    expect(asks()).toBe(1);
    s.clock.advance(1000);
    expect(asks()).toBe(1);
    s.stack.input(arpRequest());
    const sent = s.take().filter((d) => d.udp);
    expect(sent.map((d) => d.udp!.payload.toString())).toEqual(['first']);

    const other = { addr: parseIpv4('10.0.3.16')!, port: 111 };
    s.stack.udpSend(other, 40000, Buffer.from('never'));
    s.clock.advance(3250);
    expect(s.take().filter((d) => d.arp?.op === 1 && d.arp.tpa === '10.0.3.16').length).toBe(3);
    expect(s.stack.counters.drops['arp-unresolved']).toBe(1);
  });

  it('binds distinct ephemeral ports for its own calls, and a port unbound is closed again', () => {
    const s = withArp(makeStack());
    const got: string[] = [];
    const a = s.stack.udpBindEphemeral((p) => got.push(`a:${p.toString()}`))!;
    const b = s.stack.udpBindEphemeral((p) => got.push(`b:${p.toString()}`))!;
    expect([a, b].every((port) => port >= 32768 && port <= 60999)).toBe(true);
    expect(a).not.toBe(b);
    s.stack.udpSend({ addr: parseIpv4('10.0.3.15')!, port: 111 }, a, Buffer.from('call'));
    const [call] = s.take();
    expect(call!.udp).toMatchObject({ srcPort: a, dstPort: 111, checksumOk: true });
    s.stack.input(udpFrame(111, a, Buffer.from('reply')));
    s.stack.udpUnbind(a);
    s.stack.input(udpFrame(111, a, Buffer.from('late')));
    s.stack.input(udpFrame(111, b, Buffer.from('other')));
    expect(got).toEqual(['a:reply', 'b:other']);
    expect(s.take().map((d) => d.icmp?.type)).toEqual([3]);
  });
});

describe('wire: TCP handshake and limits', () => {
  it('resets a SYN to a closed port; answers a SYN on a listener with MSS and window scale, declining SACK', () => {
    const s = withArp(makeStack());
    s.stack.input(tcpFrame({ srcPort: 800, dstPort: 9999, seq: 1000, flags: SYN, mss: 1460, wscale: 7 }));
    const [rst] = s.take();
    expect(rst!.tcp).toMatchObject({ flags: RST | ACK, ack: 1001, checksumOk: true });
    s.stack.tcpListen(2049, () => undefined);
    s.stack.input(tcpFrame({ srcPort: 800, dstPort: 2049, seq: 1000, flags: SYN, mss: 1460, wscale: 7, sackPerm: true }));
    const [synack] = s.take();
    expect(synack!.tcp).toMatchObject({ flags: SYN | ACK, ack: 1001, checksumOk: true });
    const o = synack!.tcp!.options;
    expect([...o]).toEqual([2, 4, 1460 >> 8, 1460 & 0xff, 1, 3, 3, 5]);
    expect(synack!.ip!.df).toBe(true);
  });

  it('retransmits a SYN-ACK with backoff and forgets the request after synAckRetries', () => {
    const s = withArp(makeStack({ synAckRetries: 2 }));
    s.stack.tcpListen(2049, () => undefined);
    s.stack.input(tcpFrame({ srcPort: 800, dstPort: 2049, seq: 1, flags: SYN }));
    s.take();
    s.clock.advance(1100);
    expect(s.take().map((f) => f.tcp!.flags)).toEqual([SYN | ACK]);
    s.clock.advance(2100);
    expect(s.take().map((f) => f.tcp!.flags)).toEqual([SYN | ACK]);
    s.clock.advance(4100);
    expect(s.stack.halfOpen).toBe(0);
    expect(s.stack.counters.drops['tcp-synack-timeout']).toBe(1);
  });

  it('a flood of 10,000 SYNs from distinct ports holds at most synBacklog half-open connections', () => {
    const s = withArp(makeStack({ synBacklog: 64 }));
    let accepted = 0;
    s.stack.tcpListen(2049, () => accepted++);
    for (let p = 0; p < 10_000; p++) s.stack.input(tcpFrame({ srcPort: 1024 + p, dstPort: 2049, seq: p * 7919, flags: SYN }));
    expect(s.stack.halfOpen).toBe(64);
    expect(s.stack.counters.drops['tcp-syn-queue-full']).toBe(10_000 - 64);
    expect(accepted).toBe(0);
    s.clock.advance(70_000);
    expect(s.stack.halfOpen).toBe(0);
  });

  it('completes a handshake into an accepted connection; beyond maxConnections the handshake is reset', () => {
    const s = withArp(makeStack({ maxConnections: 2 }));
    const socks: number[] = [];
    s.stack.tcpListen(2049, (sock) => socks.push(sock.id));
    for (const port of [700, 701, 702]) {
      s.stack.input(tcpFrame({ srcPort: port, dstPort: 2049, seq: 5000, flags: SYN, mss: 1460 }));
      const [sa] = s.take();
      s.stack.input(tcpFrame({ srcPort: port, dstPort: 2049, seq: 5001, ack: (sa!.tcp!.seq + 1) >>> 0, flags: ACK }));
    }
    expect(socks).toHaveLength(2);
    expect(s.take().map((f) => f.tcp!.flags)).toEqual([RST]);
    expect(s.stack.counters.drops['tcp-conn-limit']).toBe(1);
  });

  it('an ACK or RST for no connection: RST for the ACK, silence for the RST', () => {
    const s = withArp(makeStack());
    s.stack.tcpListen(2049, () => undefined);
    s.stack.input(tcpFrame({ srcPort: 700, dstPort: 2049, seq: 1, ack: 12345, flags: ACK }));
    s.stack.input(tcpFrame({ srcPort: 700, dstPort: 2049, seq: 1, flags: RST }));
    const out = s.take();
    expect(out.map((f) => [f.tcp!.flags, f.tcp!.seq])).toEqual([[RST, 12345]]);
  });
});
