/**
 * `--wire udp:PORT`: pagelife as a host on a raw Ethernet wire. Every UDP datagram on PORT is
 * one frame (QEMU's dgram netdev, `run-guest --wire-udp`); frames go back to the address the
 * last one came from. The wire stack (netstack/wire) serves the portmapper on 111 and MOUNT and
 * NFS on their well-known ports over TCP and UDP, so a client mounts with no port options.
 */
import dgram from 'node:dgram';
import { createWriteStream, type WriteStream } from 'node:fs';
import type { Logger } from 'pino';
import type { Clock } from '../../netstack/clock.ts';
import type { NetstackBus } from '../../netstack/events.ts';
import { PcapWriter } from '../../netstack/pcap.ts';
import { ipv4ToString, parseCidr, parseIpv4, sameSubnet } from '../../netstack/wire/addr.ts';
import { parseMac } from '../../netstack/wire/ethernet.ts';
import { WireStack, type UdpPeer, type WireCounters } from '../../netstack/wire/stack.ts';
import { Dispatcher } from '../../rpc/dispatch.ts';
import { RpcClientError } from '../../rpc/errors.ts';
import type { PeerNetwork } from '../../rpc/peer-caller.ts';
import { createPortmapProgram, PMAP_PORT, PortmapRegistry } from '../../rpc/portmap.ts';
import type { Config } from '../config.ts';
import { MOUNT_PORT, NFS_PORT } from '../config.ts';
import { NFS_PROGRAM } from '../nfs3/constants.ts';
import { fillRegistry } from '../portmap-setup.ts';
import { pathFaults, type ReplyPath } from '../reply/reply-path.ts';
import { serveRpcOnWire } from './rpc-conn.ts';

export interface WireHostOptions {
  config: Config;
  clock: Clock;
  replies: ReplyPath;
  /** The NFS and MOUNT programs (with the duplicate request cache). */
  dispatcher: Dispatcher;
  netBus: NetstackBus;
  log: Logger;
}

/** What the HTTP state and /metrics show of the wire. */
export interface WireSnapshot extends WireCounters {
  port: number;
  peer: string | null;
  addr: string;
  checksumFailures: number;
  connections: number;
  halfOpen: number;
  pcapBytes: number;
  pcapFramesDropped: number;
  /** Every TCP connection on the wire, with its real peer. */
  sockets: WireSocketSnapshot[];
}

export interface WireSocketSnapshot {
  id: number;
  peer: string;
  localPort: number;
  state: string;
  srttMs: number;
  cwnd: number;
  retransmits: number;
  fastRetransmits: number;
  dupAcksIn: number;
  pinnedDestructors: number;
}

export interface WireHost {
  port: number;
  /** The capture file (`--pcap`), or null. */
  pcapFile: string | null;
  stack: WireStack;
  /** The wire as a network for the server's own calls (SM_NOTIFY, NLM callbacks) to its hosts. */
  peers: PeerNetwork;
  snapshot(): WireSnapshot;
  close(): Promise<void>;
}

/** The capture of every frame, streamed to a file and bounded in size. */
class WireCapture {
  bytes = 0;
  framesDropped = 0;
  private readonly out: WriteStream;
  private readonly writer: PcapWriter;

  constructor(
    file: string,
    private readonly maxBytes: number,
    clock: Clock,
  ) {
    this.out = createWriteStream(file);
    this.writer = new PcapWriter(Date.now() - clock.now(), (block) => {
      this.bytes += block.length;
      this.out.write(block);
    });
  }

  frame(t: number, frame: Buffer): void {
    if (this.bytes + frame.length + 32 > this.maxBytes) {
      this.framesDropped++;
      return;
    }
    this.writer.writeFrame(t, frame);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.out.end(() => resolve()));
  }
}

export async function startWire(o: WireHostOptions): Promise<WireHost> {
  const w = o.config.wire;
  const log = o.log.child({ wire: true });
  const cidr = parseCidr(w.addr)!;
  const socket = dgram.createSocket({ type: 'udp4' });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ port: w.port ?? 0, address: w.bindHost }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  const port = socket.address().port;
  let peer: { address: string; port: number } | null = null;
  const capture = w.pcap ? new WireCapture(w.pcap, w.pcapMaxBytes, o.clock) : null;
  const stack = new WireStack({
    clock: o.clock,
    bus: o.netBus,
    mac: parseMac(w.mac)!,
    addr: cidr.addr,
    prefix: cidr.prefix,
    limits: { ...w, idleTimeoutMs: o.config.limits.idleTimeoutMs },
    faults: () => pathFaults(o.replies.getFaults()),
    seed: o.config.faults.seed,
    output: (frame) => {
      if (peer) socket.send(frame, peer.port, peer.address);
    },
    ...(capture ? { capture: (t: number, f: Buffer) => capture.frame(t, f) } : {}),
    nextConnId: o.replies.allocateId,
  });
  // Frames go to the wire's current end (QEMU's socket). Like a hub, every sender's frames are
  // input, but the end moves to a new sender only once the current one has been silent for
  // peerIdleMs: another sender on the wire cannot take the guest's frames while it talks.
  let peerHeard = 0;
  socket.on('message', (frame, rinfo) => {
    const now = o.clock.now();
    const same = peer !== null && peer.port === rinfo.port && peer.address === rinfo.address;
    if (!same && (peer === null || now - peerHeard > w.peerIdleMs)) {
      log.info({ peer: `${rinfo.address}:${rinfo.port}` }, 'wire: frames now go to this peer');
      peer = { address: rinfo.address, port: rinfo.port };
    }
    if (peer !== null && peer.port === rinfo.port && peer.address === rinfo.address) peerHeard = now;
    try {
      stack.input(frame);
    } catch (err) {
      // The parsers return typed results; an exception here is our bug, and one frame must not take the server down.
      stack.counters.drops['internal-error'] = (stack.counters.drops['internal-error'] ?? 0) + 1;
      log.error({ err, len: frame.length }, 'wire: frame input failed');
    }
  });
  socket.on('error', (e) => log.warn({ err: e.message }, 'wire: socket error'));

  // The portmapper of the wire host: this host's ports, not the host-socket listeners'.
  const registry = new PortmapRegistry();
  fillRegistry(
    registry,
    PMAP_PORT,
    o.dispatcher.registered().map((p) => {
      const at = p.prog === NFS_PROGRAM ? NFS_PORT : MOUNT_PORT;
      return { prog: p.prog, vers: [...p.versions.keys()], tcpPort: at, udpPort: at };
    }),
  );
  const portmap = new Dispatcher({ log });
  portmap.register(createPortmapProgram(registry));
  const local = ipv4ToString(cidr.addr);
  const ports: [number, Dispatcher][] = [
    [PMAP_PORT, portmap],
    [NFS_PORT, o.dispatcher],
    [MOUNT_PORT, o.dispatcher],
  ];
  let udpInflight = 0;
  for (const [p, dispatcher] of ports) {
    stack.tcpListen(p, (sock) => {
      const remoteAddress = ipv4ToString(sock.o.remote.addr);
      const remote = `${remoteAddress}:${sock.o.remote.port}`;
      serveRpcOnWire(sock, {
        dispatcher,
        limits: o.config.limits,
        log,
        info: { remoteAddress, remotePort: sock.o.remote.port, localAddress: local, localPort: p },
        sink: o.replies.attachStack(sock.id, sock, `wire ${remote}`),
      });
    });
    stack.udpBind(p, (payload, from: UdpPeer) => {
      if (udpInflight >= o.config.limits.udpMaxInflight) {
        stack.counters.drops['udp-inflight'] = (stack.counters.drops['udp-inflight'] ?? 0) + 1;
        return;
      }
      udpInflight++;
      const remoteAddress = ipv4ToString(from.addr);
      // The frame is ours; the call may outlive this turn (the DRC keeps replies, not calls).
      void dispatcher.dispatch(payload, { transport: 'udp', remoteAddress, remotePort: from.port, localAddress: local, localPort: p, log }).then((reply) => {
        udpInflight--;
        if ('dropped' in reply) return;
        o.replies.sendDatagramTo(reply, `wire ${remoteAddress}:${from.port}`, (d) => stack.udpSend(from, p, d));
      });
    });
  }
  log.info({ port, addr: w.addr, mac: w.mac, pcap: w.pcap }, 'wire: listening for frames');

  const onWire = (host: string) => parseIpv4(host.replace(/^::ffff:/, ''));
  const peers: PeerNetwork = {
    reaches: (host) => {
      const a = onWire(host);
      return a !== null && a !== cidr.addr && sameSubnet(a, cidr.addr, cidr.prefix);
    },
    isSelf: (host) => onWire(host) === cidr.addr,
    open: (host, remotePort, onMessage) => {
      const to: UdpPeer = { addr: onWire(host)!, port: remotePort };
      const localPort = stack.udpBindEphemeral((payload, from) => {
        if (from.addr === to.addr && from.port === to.port) onMessage(payload);
      });
      if (localPort === null) throw new RpcClientError(`wire: no free local UDP port to call ${host}:${remotePort}`);
      return { localPort, send: (d) => stack.udpSend(to, localPort, d), close: () => stack.udpUnbind(localPort) };
    },
  };

  return {
    port,
    pcapFile: w.pcap ?? null,
    stack,
    peers,
    snapshot: () => ({
      ...stack.counters,
      drops: { ...stack.counters.drops },
      port,
      peer: peer ? `${peer.address}:${peer.port}` : null,
      addr: w.addr,
      checksumFailures: stack.checksumFailures,
      connections: stack.established,
      halfOpen: stack.halfOpen,
      pcapBytes: capture?.bytes ?? 0,
      pcapFramesDropped: capture?.framesDropped ?? 0,
      sockets: [...stack.socks.values()].map((k) => ({
        id: k.id,
        peer: `${ipv4ToString(k.o.remote.addr)}:${k.o.remote.port}`,
        localPort: k.o.local.port,
        state: k.state,
        srttMs: k.sender.rtt.srtt,
        cwnd: k.sender.cc.cwnd,
        retransmits: k.sender.retransmits,
        fastRetransmits: k.sender.fastRetransmits,
        dupAcksIn: k.sender.dupAcksIn,
        pinnedDestructors: k.sender.pinnedDestructors,
      })),
    }),
    async close() {
      stack.close();
      await new Promise<void>((resolve) => socket.close(() => resolve()));
      await capture?.close();
    },
  };
}
