/**
 * pagelife's own host on a raw Ethernet wire: one interface with one IPv4 address. Frames in
 * (`input`) go through Ethernet, ARP, IPv4 (with reassembly), ICMP, UDP and TCP; frames out
 * leave through `output`. The wire is untrusted: every malformed or unwanted frame is dropped
 * and counted by cause, and nothing here throws on input.
 */
import type { Clock, TimerHandle } from '../clock.ts';
import { TCP_DELACK_MIN, TCP_INIT_CWND, TCP_RTO_MAX, TCP_RTO_MIN, TCP_TIMEOUT_INIT } from '../connection.ts';
import type { NetstackBus } from '../events.ts';
import type { PathFaults } from '../path.ts';
import { Rng } from '../rng.ts';
import { after, seqAdd } from '../tcp/seq.ts';
import { ipv4ToString, sameSubnet, type Ipv4 } from './addr.ts';
import { ARPOP_REPLY, ARPOP_REQUEST, ArpCache, buildArp, parseArp } from './arp.ts';
import { BROADCAST_MAC, ETH_HLEN, ETH_P_ARP, ETH_P_IP, isMulticastMac, parseEth, writeEth } from './ethernet.ts';
import { echoReply, ICMP_ECHO, parseIcmp, portUnreachable } from './icmp.ts';
import { IpReassembly } from './ip-fragment.ts';
import { fragmentRanges, IP_HLEN, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, parseIpv4Packet, writeIpv4, type Ipv4Header } from './ipv4.ts';
import { buildTcp, parseTcp, TCP_HLEN, TCP_MAX_WSCALE, TCPHDR_ACK, TCPHDR_FIN, TCPHDR_RST, TCPHDR_SYN, type TcpOut, type TcpSegment } from './tcp-header.ts';
import { WireTcpSock, type TcpEndpoint } from './tcp-sock.ts';
import { buildUdp, parseUdp } from './udp.ts';

/** Every limit of the wire host (server/config.ts holds the defaults). */
export interface WireLimits {
  mtu: number;
  arpEntries: number;
  arpTtlMs: number;
  /** IP packets waiting for an ARP reply, per neighbour (arp_queue's unres_qlen). */
  arpQueue: number;
  fragQueues: number;
  fragBytes: number;
  fragTimeoutMs: number;
  /** Half-open connections (SYN_RECV) at once; SYNs beyond it are dropped (no SYN cookies). */
  synBacklog: number;
  /** SYN-ACK retransmissions before a half-open connection is dropped (tcp_synack_retries). */
  synAckRetries: number;
  /** Connections (any state but TIME_WAIT) at once; a handshake beyond it is reset. */
  maxConnections: number;
  /** TIME_WAIT entries at once; the oldest ends early beyond it (tcp_max_tw_buckets). */
  maxTimeWait: number;
  timeWaitMs: number;
  /** Unacknowledged data that makes no progress for this long aborts the connection (TCP_USER_TIMEOUT). */
  userTimeoutMs: number;
  /** A connection with nothing to send and nothing received for this long is closed (0: never). */
  idleTimeoutMs: number;
  /** Receive buffer of a connection: the window we advertise. */
  rcvWnd: number;
  /** Segments per write-queue skb (cut to the MSS at the device). */
  gsoSegs: number;
}

export const WIRE_DEFAULT_LIMITS: Readonly<WireLimits> = Object.freeze({
  mtu: 1500,
  arpEntries: 256,
  arpTtlMs: 60_000,
  arpQueue: 16,
  fragQueues: 64,
  fragBytes: 4 * 1024 * 1024,
  fragTimeoutMs: 30_000,
  synBacklog: 128,
  synAckRetries: 5,
  maxConnections: 64,
  maxTimeWait: 1024,
  timeWaitMs: 60_000,
  userTimeoutMs: 120_000,
  idleTimeoutMs: 6 * 60_000,
  rcvWnd: 1024 * 1024,
  gsoSegs: 44,
});

/** Period of the housekeeping timer: SYN-ACK retransmissions, TIME_WAIT, fragment ages, user timeouts. */
const TICK_MS = 250;
/** How long packets wait for an ARP reply before they are dropped. */
const ARP_RESOLVE_MS = 3000;
/** An unanswered ARP request is sent again after this long (neigh retrans_time; at most one a second, RFC 1122 2.3.2.1). */
const ARP_RETRANS_MS = 1000;
/** Local ports for the calls this host makes (ip_local_port_range's default). */
const EPHEMERAL_LOW = 32768;
const EPHEMERAL_HIGH = 60999;

export interface WireStackOptions {
  clock: Clock;
  bus: NetstackBus | null;
  mac: Buffer;
  addr: Ipv4;
  prefix: number;
  limits: WireLimits;
  /** The path faults a new connection starts with (the reply path changes those of existing ones). */
  faults: () => Partial<PathFaults>;
  seed: number;
  /** A frame for the wire. */
  output: (frame: Buffer) => void;
  /** Every frame in (before any check) and out, for a capture. */
  capture?: (t: number, frame: Buffer) => void;
  /** Connection ids shared with the reply path's table. */
  nextConnId: () => number;
}

export interface UdpPeer {
  addr: Ipv4;
  port: number;
}

export type UdpHandler = (payload: Buffer, from: UdpPeer, localPort: number) => void;

/** A half-open connection (request_sock). */
interface RequestSock {
  key: string;
  local: TcpEndpoint;
  remote: TcpEndpoint;
  iss: number;
  irs: number;
  mss: number;
  /** The peer's window scale, or null when it did not offer the option. */
  wscale: number | null;
  retries: number;
  nextRetransmit: number;
}

export interface WireCounters {
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Frames (or fragments, segments) dropped, by cause. */
  drops: Record<string, number>;
  arpReplies: number;
  echoReplies: number;
  portUnreachables: number;
  resetsSent: number;
  fragmentsOut: number;
  reassembled: number;
  connectionsAccepted: number;
}

const CHECKSUM_DROPS = ['ip-checksum', 'icmp-checksum', 'udp-checksum', 'tcp-checksum'];

export class WireStack {
  readonly counters: WireCounters = {
    framesIn: 0,
    framesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    drops: {},
    arpReplies: 0,
    echoReplies: 0,
    portUnreachables: 0,
    resetsSent: 0,
    fragmentsOut: 0,
    reassembled: 0,
    connectionsAccepted: 0,
  };
  readonly arp: ArpCache;
  readonly frags: IpReassembly;
  private readonly arpPending = new Map<Ipv4, { since: number; requested: number; packets: Buffer[] }>();
  private readonly udpPorts = new Map<number, UdpHandler>();
  private readonly listeners = new Map<number, (sock: WireTcpSock) => void>();
  private readonly synQueue = new Map<string, RequestSock>();
  readonly socks = new Map<string, WireTcpSock>();
  private readonly rng: Rng;
  private ipId = 1;
  private tick: TimerHandle | null = null;
  private readonly limits: WireLimits;

  constructor(private readonly o: WireStackOptions) {
    this.limits = o.limits;
    this.arp = new ArpCache({ maxEntries: o.limits.arpEntries, ttlMs: o.limits.arpTtlMs }, o.clock);
    this.frags = new IpReassembly({ maxQueues: o.limits.fragQueues, maxBytes: o.limits.fragBytes, timeoutMs: o.limits.fragTimeoutMs }, o.clock);
    this.rng = new Rng(o.seed);
    this.armTick();
  }

  get address(): Ipv4 {
    return this.o.addr;
  }

  /** Checksum failures at any layer (a subset of the drops). */
  get checksumFailures(): number {
    let n = 0;
    for (const k of CHECKSUM_DROPS) n += this.counters.drops[k] ?? 0;
    return n;
  }

  get halfOpen(): number {
    return this.synQueue.size;
  }

  /** Connections in any state but TIME_WAIT. */
  get established(): number {
    let n = 0;
    for (const s of this.socks.values()) if (s.state !== 'TIME_WAIT') n++;
    return n;
  }

  udpBind(port: number, handler: UdpHandler): void {
    this.udpPorts.set(port, handler);
  }

  /** Binds a free port of the ephemeral range (for a call this host makes); null when all are taken. */
  udpBindEphemeral(handler: UdpHandler): number | null {
    const span = EPHEMERAL_HIGH - EPHEMERAL_LOW + 1;
    const start = Math.floor(this.rng.next() * span);
    for (let i = 0; i < span; i++) {
      const port = EPHEMERAL_LOW + ((start + i) % span);
      if (this.udpPorts.has(port)) continue;
      this.udpPorts.set(port, handler);
      return port;
    }
    return null;
  }

  udpUnbind(port: number): void {
    this.udpPorts.delete(port);
  }

  tcpListen(port: number, onAccept: (sock: WireTcpSock) => void): void {
    this.listeners.set(port, onAccept);
  }

  close(): void {
    if (this.tick) this.o.clock.clearTimer(this.tick);
    this.tick = null;
    for (const s of [...this.socks.values()]) s.abort('stack closed', s.state !== 'TIME_WAIT');
    this.synQueue.clear();
  }

  private drop(reason: string): void {
    this.counters.drops[reason] = (this.counters.drops[reason] ?? 0) + 1;
  }

  /** One frame from the wire. */
  input(frame: Buffer): void {
    const c = this.counters;
    c.framesIn++;
    c.bytesIn += frame.length;
    this.o.capture?.(this.o.clock.now(), frame);
    const eth = parseEth(frame);
    if (!eth) return this.drop('eth-truncated');
    if (!eth.dst.equals(this.o.mac) && !eth.dst.equals(BROADCAST_MAC)) return this.drop(isMulticastMac(eth.dst) ? 'eth-multicast' : 'eth-not-for-us');
    if (eth.type === ETH_P_ARP) return this.arpInput(eth.payload);
    if (eth.type !== ETH_P_IP) return this.drop('eth-type');
    const ip = parseIpv4Packet(eth.payload);
    if (!ip.ok) return this.drop(ip.reason);
    const h = ip.hdr;
    if (h.dst !== this.o.addr) return this.drop('ip-not-for-us');
    if (h.mf || h.fragOff > 0) {
      const r = this.frags.add(h);
      if ('dropped' in r) return this.drop(r.dropped);
      if (!('done' in r)) return;
      c.reassembled++;
      this.ipDeliver({ ...h, mf: false, fragOff: 0, payload: r.done }, eth.payload);
      return;
    }
    this.ipDeliver(h, eth.payload);
  }

  private arpInput(b: Buffer): void {
    const p = parseArp(b);
    if (!p) return this.drop('arp-malformed');
    // RFC 826: merge the sender if we know it or the packet is for us; only then answer a request.
    if (p.tpa !== this.o.addr) {
      if (this.arp.lookup(p.spa)) this.arp.learn(p.spa, p.sha);
      return this.drop('arp-not-for-us');
    }
    if (!sameSubnet(p.spa, this.o.addr, this.o.prefix) || isMulticastMac(p.sha)) return this.drop('arp-bad-sender');
    this.arp.learn(p.spa, p.sha);
    this.flushArpQueue(p.spa, p.sha);
    if (p.op !== ARPOP_REQUEST) return;
    const reply = buildArp({ op: ARPOP_REPLY, sha: this.o.mac, spa: this.o.addr, tha: p.sha, tpa: p.spa });
    this.counters.arpReplies++;
    this.sendEth(p.sha, ETH_P_ARP, reply);
  }

  private ipDeliver(h: Ipv4Header, packet: Buffer): void {
    switch (h.proto) {
      case IPPROTO_ICMP:
        return this.icmpInput(h);
      case IPPROTO_UDP:
        return this.udpInput(h, packet);
      case IPPROTO_TCP:
        return this.tcpInput(h);
      default:
        return this.drop('ip-proto');
    }
  }

  private icmpInput(h: Ipv4Header): void {
    const r = parseIcmp(h.payload);
    if (!r.ok) return this.drop(r.reason);
    if (r.msg.type !== ICMP_ECHO) return this.drop('icmp-type');
    this.counters.echoReplies++;
    this.ipOutput(h.src, IPPROTO_ICMP, echoReply(r.msg), false);
  }

  private udpInput(h: Ipv4Header, packet: Buffer): void {
    const r = parseUdp(h.payload, h.src, h.dst);
    if (!r.ok) return this.drop(r.reason);
    const handler = this.udpPorts.get(r.dgram.dstPort);
    if (!handler) {
      this.drop('udp-no-port');
      this.counters.portUnreachables++;
      this.ipOutput(h.src, IPPROTO_ICMP, portUnreachable(packet.subarray(0, Math.min(packet.length, IP_HLEN + h.payload.length))), false);
      return;
    }
    handler(r.dgram.payload, { addr: h.src, port: r.dgram.srcPort }, r.dgram.dstPort);
  }

  /** A UDP datagram to `to`, fragmented when it exceeds the MTU. */
  udpSend(to: UdpPeer, srcPort: number, payload: Buffer): void {
    this.ipOutput(to.addr, IPPROTO_UDP, buildUdp(this.o.addr, to.addr, srcPort, to.port, payload), false);
  }

  private tcpInput(h: Ipv4Header): void {
    const r = parseTcp(h.payload, h.src, h.dst);
    if (!r.ok) return this.drop(r.reason);
    const seg = r.seg;
    const key = `${h.src}:${seg.srcPort}:${seg.dstPort}`;
    const sock = this.socks.get(key);
    if (sock) {
      // tcp_timewait_state_process: a new SYN above the old sequence space reuses the port pair.
      if (sock.state === 'TIME_WAIT' && seg.flags & TCPHDR_SYN && !(seg.flags & TCPHDR_ACK) && after(seg.seq, sock.receiver.rcvNxt)) {
        sock.expireTimeWait();
      } else {
        sock.input(seg);
        return;
      }
    }
    const req = this.synQueue.get(key);
    if (req) return this.synRecvInput(req, seg);
    if (seg.flags & TCPHDR_RST) return this.drop('tcp-rst-no-conn');
    const accept = this.listeners.get(seg.dstPort);
    if (!accept) {
      this.drop('tcp-no-listener');
      return this.sendReset(h, seg);
    }
    if ((seg.flags & (TCPHDR_SYN | TCPHDR_ACK | TCPHDR_FIN)) !== TCPHDR_SYN) {
      this.drop(seg.flags & TCPHDR_ACK ? 'tcp-ack-no-conn' : 'tcp-not-syn');
      if (seg.flags & TCPHDR_ACK) this.sendReset(h, seg);
      return;
    }
    if (this.synQueue.size >= this.limits.synBacklog) return this.drop('tcp-syn-queue-full');
    const ourMss = this.limits.mtu - IP_HLEN - TCP_HLEN;
    const rq: RequestSock = {
      key,
      local: { addr: h.dst, port: seg.dstPort },
      remote: { addr: h.src, port: seg.srcPort },
      iss: Math.floor(this.rng.next() * 2 ** 32) >>> 0,
      irs: seg.seq,
      // RFC 9293 3.7.1: without the option the peer's MSS is 536.
      mss: Math.max(64, Math.min(seg.options.mss ?? 536, ourMss)),
      wscale: seg.options.wscale,
      retries: 0,
      nextRetransmit: this.o.clock.now() + TCP_TIMEOUT_INIT,
    };
    this.synQueue.set(key, rq);
    this.sendSynAck(rq);
  }

  /** Our window scale: the smallest shift that lets the receive buffer fit the 16-bit field. */
  private get rcvWscale(): number {
    let s = 0;
    while (this.limits.rcvWnd >> s > 0xffff && s < TCP_MAX_WSCALE) s++;
    return s;
  }

  private sendSynAck(rq: RequestSock): void {
    const h: TcpOut = {
      src: rq.local.addr,
      dst: rq.remote.addr,
      srcPort: rq.local.port,
      dstPort: rq.remote.port,
      seq: rq.iss,
      ack: seqAdd(rq.irs, 1),
      flags: TCPHDR_SYN | TCPHDR_ACK,
      window: Math.min(0xffff, this.limits.rcvWnd),
      mss: this.limits.mtu - IP_HLEN - TCP_HLEN,
      ...(rq.wscale !== null ? { wscale: this.rcvWscale } : {}),
    };
    this.tcpOutput(h, null);
  }

  /** tcp_check_req: the third segment of the handshake (or a retransmitted SYN). */
  private synRecvInput(rq: RequestSock, seg: TcpSegment): void {
    if (seg.flags & TCPHDR_RST) {
      if (seg.seq === seqAdd(rq.irs, 1)) this.synQueue.delete(rq.key);
      else this.drop('tcp-bad-rst');
      return;
    }
    if (seg.flags & TCPHDR_SYN) {
      if (seg.seq === rq.irs) return this.sendSynAck(rq);
      return this.drop('tcp-syn-mismatch');
    }
    if (!(seg.flags & TCPHDR_ACK) || seg.ack !== seqAdd(rq.iss, 1) || seg.seq !== seqAdd(rq.irs, 1)) {
      this.drop('tcp-bad-handshake');
      return;
    }
    this.synQueue.delete(rq.key);
    if (this.established >= this.limits.maxConnections) {
      this.drop('tcp-conn-limit');
      this.tcpOutput({ src: rq.local.addr, dst: rq.remote.addr, srcPort: rq.local.port, dstPort: rq.remote.port, seq: seg.ack, ack: 0, flags: TCPHDR_RST, window: 0 }, null);
      this.counters.resetsSent++;
      return;
    }
    this.trimTimeWait();
    const wscaleOk = rq.wscale !== null;
    const sock = new WireTcpSock({
      conn: this.o.nextConnId(),
      clock: this.o.clock,
      bus: this.o.bus,
      seed: (this.o.seed + rq.iss) >>> 0,
      local: rq.local,
      remote: rq.remote,
      iss: rq.iss,
      irs: rq.irs,
      mss: rq.mss,
      sndWscale: wscaleOk ? rq.wscale! : 0,
      rcvWscale: wscaleOk ? this.rcvWscale : 0,
      peerWindow: seg.window << (wscaleOk ? rq.wscale! : 0),
      rcvWnd: wscaleOk ? this.limits.rcvWnd : Math.min(0xffff, this.limits.rcvWnd),
      gsoSegs: this.limits.gsoSegs,
      initCwnd: TCP_INIT_CWND,
      rtoMin: TCP_RTO_MIN,
      rtoMax: TCP_RTO_MAX,
      rtoInitial: TCP_TIMEOUT_INIT,
      ackDelay: TCP_DELACK_MIN,
      faults: this.o.faults(),
      output: (h, payload) => this.tcpOutput(h, payload),
      drop: (reason) => this.drop(reason),
      unhash: () => {
        if (this.socks.get(rq.key) === sock) this.socks.delete(rq.key);
      },
    });
    this.socks.set(rq.key, sock);
    this.counters.connectionsAccepted++;
    this.listeners.get(rq.local.port)?.(sock);
    // The ACK may carry the first data already.
    if (seg.payload.length > 0 || seg.flags & TCPHDR_FIN) sock.input(seg);
  }

  /** tcp_v4_send_reset: RFC 9293 3.10.7.1, for a segment no connection or listener takes. */
  private sendReset(h: Ipv4Header, seg: TcpSegment): void {
    const segLen = seg.payload.length + (seg.flags & TCPHDR_SYN ? 1 : 0) + (seg.flags & TCPHDR_FIN ? 1 : 0);
    const out: TcpOut =
      seg.flags & TCPHDR_ACK
        ? { src: h.dst, dst: h.src, srcPort: seg.dstPort, dstPort: seg.srcPort, seq: seg.ack, ack: 0, flags: TCPHDR_RST, window: 0 }
        : { src: h.dst, dst: h.src, srcPort: seg.dstPort, dstPort: seg.srcPort, seq: 0, ack: seqAdd(seg.seq, segLen), flags: TCPHDR_RST | TCPHDR_ACK, window: 0 };
    this.counters.resetsSent++;
    this.tcpOutput(out, null);
  }

  /** tcp_max_tw_buckets: beyond the limit the oldest TIME_WAIT ends early. */
  private trimTimeWait(): void {
    const tw = [...this.socks.values()].filter((s) => s.state === 'TIME_WAIT');
    if (tw.length < this.limits.maxTimeWait) return;
    tw.sort((a, b) => a.timeWaitSince - b.timeWaitSince);
    for (const s of tw.slice(0, tw.length - this.limits.maxTimeWait + 1)) s.expireTimeWait();
  }

  private tcpOutput(h: TcpOut, payload: Buffer | null): void {
    this.ipOutput(h.dst, IPPROTO_TCP, buildTcp(h, payload), true);
  }

  /** ip_queue_xmit / ip_output: IPv4 header, fragmentation above the MTU (when DF is clear), neighbour output. */
  private ipOutput(dst: Ipv4, proto: number, l4: Buffer, df: boolean): void {
    const ranges = fragmentRanges(l4.length, this.limits.mtu);
    const id = this.ipId++ & 0xffff;
    if (ranges.length > 1 && df) return this.drop('out-too-big');
    if (ranges.length > 1) this.counters.fragmentsOut += ranges.length;
    for (const r of ranges) {
      const packet = Buffer.alloc(IP_HLEN + r.len);
      writeIpv4(packet, 0, { src: this.o.addr, dst, proto, id, df: df && ranges.length === 1, mf: r.mf, fragOff: r.off, payloadLen: r.len });
      l4.copy(packet, IP_HLEN, r.off, r.off + r.len);
      this.neighOutput(dst, packet);
    }
  }

  /** neigh_output: the destination's MAC from the ARP cache, or an ARP request and a short queue. */
  private neighOutput(dst: Ipv4, packet: Buffer): void {
    const mac = this.arp.lookup(dst);
    if (mac) return this.sendEth(mac, ETH_P_IP, packet);
    let q = this.arpPending.get(dst);
    if (!q) {
      if (this.arpPending.size >= this.limits.arpEntries) return this.drop('arp-unresolved');
      const now = this.o.clock.now();
      q = { since: now, requested: now, packets: [] };
      this.arpPending.set(dst, q);
      this.arpSolicit(dst);
    }
    if (q.packets.length >= this.limits.arpQueue) return this.drop('arp-queue-full');
    q.packets.push(packet);
  }

  private arpSolicit(dst: Ipv4): void {
    this.sendEth(BROADCAST_MAC, ETH_P_ARP, buildArp({ op: ARPOP_REQUEST, sha: this.o.mac, spa: this.o.addr, tha: Buffer.alloc(6), tpa: dst }));
  }

  private flushArpQueue(ip: Ipv4, mac: Buffer): void {
    const q = this.arpPending.get(ip);
    if (!q) return;
    this.arpPending.delete(ip);
    for (const p of q.packets) this.sendEth(mac, ETH_P_IP, p);
  }

  private sendEth(dst: Buffer, type: number, payload: Buffer): void {
    const frame = Buffer.alloc(ETH_HLEN + payload.length);
    writeEth(frame, dst, this.o.mac, type);
    payload.copy(frame, ETH_HLEN);
    this.counters.framesOut++;
    this.counters.bytesOut += frame.length;
    this.o.capture?.(this.o.clock.now(), frame);
    this.o.output(frame);
  }

  private armTick(): void {
    this.tick = this.o.clock.setTimer(TICK_MS, () => {
      this.housekeeping();
      if (this.tick) this.armTick();
    });
  }

  /** SYN-ACK retransmissions, TIME_WAIT ends, fragment ages, user timeouts, ARP requests unanswered. */
  private housekeeping(): void {
    const now = this.o.clock.now();
    for (const rq of [...this.synQueue.values()]) {
      if (rq.nextRetransmit > now) continue;
      if (rq.retries >= this.limits.synAckRetries) {
        this.synQueue.delete(rq.key);
        this.drop('tcp-synack-timeout');
        continue;
      }
      rq.retries++;
      rq.nextRetransmit = now + TCP_TIMEOUT_INIT * 2 ** rq.retries;
      this.sendSynAck(rq);
    }
    for (const s of [...this.socks.values()]) {
      if (s.state === 'TIME_WAIT') {
        if (now - s.timeWaitSince >= this.limits.timeWaitMs) s.expireTimeWait();
      } else if (s.state === 'FIN_WAIT2' && now - s.lastInput > this.limits.timeWaitMs) {
        // tcp_fin_timeout: a peer that never sends its FIN.
        s.abort('fin-wait-2 timeout', false);
      } else if (!s.sender.idle && now - s.lastProgress > this.limits.userTimeoutMs) {
        s.abort('user timeout: no ACK progress', true);
      } else if (this.limits.idleTimeoutMs > 0 && s.sender.idle && now - s.lastInput > this.limits.idleTimeoutMs) {
        s.close();
      }
    }
    this.frags.expire();
    for (const [ip, q] of this.arpPending) {
      if (now - q.since < ARP_RESOLVE_MS) {
        // A request can be lost (or sent before the wire had an end): ask again while packets wait.
        if (now - q.requested >= ARP_RETRANS_MS) {
          q.requested = now;
          this.arpSolicit(ip);
        }
        continue;
      }
      this.arpPending.delete(ip);
      this.counters.drops['arp-unresolved'] = (this.counters.drops['arp-unresolved'] ?? 0) + q.packets.length;
    }
  }

  /** A readable form of a connection's peer. */
  static peerName(sock: WireTcpSock): string {
    return `${ipv4ToString(sock.o.remote.addr)}:${sock.o.remote.port}`;
  }
}
