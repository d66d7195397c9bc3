/**
 * Calls into a client: NLM GRANTED and _RES callbacks, NSM SM_NOTIFY and SM_MON status callbacks.
 * The client's service is found the way lockd and sm-notify find it: portmapper v2 GETPORT on the
 * client's address. Each call opens a socket, waits at most `timeoutMs`, and closes it; the number in
 * flight is bounded so a flood of requests from unreachable clients cannot pile sockets up. A client
 * on a network the server is a host on by itself (the raw wire) is called through that network.
 */
import { authSys, RpcClient, type DatagramLink, type RpcClientOptions } from './client.ts';
import { IPPROTO_TCP, IPPROTO_UDP, PMAP_PORT, PMAP_PROG } from './portmap.ts';
import type { TransportKind } from './program.ts';
import type { XdrReader } from '../xdr/reader.ts';
import { XdrWriter } from '../xdr/writer.ts';

const PMAP_VERS = 2;
const PMAPPROC_GETPORT = 3;

export interface PeerCallerOptions {
  /** Where clients run their portmapper (111; tests point it elsewhere). */
  portmapPort: number;
  timeoutMs: number;
  maxInflight: number;
  /** machinename of the AUTH_SYS credential the callbacks carry. */
  hostname: string;
}

/**
 * A network on which pagelife is a host with a stack of its own (`--wire`): its clients are not
 * reachable through the host's sockets. Calls to them go over UDP (the stack opens no TCP
 * connections), and their portmapper is on its well-known port (they are real hosts).
 */
export interface PeerNetwork {
  /** Whether `host` is a peer on this network (not this server's own address on it). */
  reaches(host: string): boolean;
  /** Whether `host` is this server's own address on this network. */
  isSelf(host: string): boolean;
  /** A UDP endpoint on a free local port, talking to host:port. */
  open(host: string, port: number, onMessage: (datagram: Buffer) => void): DatagramLink;
}

export class PeerCallError extends Error {
  override readonly name = 'PeerCallError';
  constructor(
    message: string,
    readonly context: { host: string; prog: number; vers: number; proc: number },
  ) {
    super(message);
  }
}

export class PeerCaller {
  private inflight = 0;
  /** Ports this server listens on: a callback that would land on ourselves is refused, not sent. */
  private readonly ownPorts = new Set<number>();
  private network: PeerNetwork | null = null;

  constructor(private readonly opts: PeerCallerOptions) {}

  addOwnPort(port: number): void {
    this.ownPorts.add(port);
  }

  /** Clients on this network are called through it from now on. */
  attachNetwork(network: PeerNetwork): void {
    this.network = network;
  }

  get active(): number {
    return this.inflight;
  }

  /** One call; resolves with the result body, rejects with PeerCallError (or an RPC error). */
  async call(host: string, transport: TransportKind, prog: number, vers: number, proc: number, args: XdrWriter): Promise<XdrReader> {
    const where = { host, prog, vers, proc };
    if (this.inflight >= this.opts.maxInflight) throw new PeerCallError('too many callbacks in flight', where);
    const net = this.network;
    if (net?.isSelf(host)) throw new PeerCallError('callback target is this server', where);
    const onNet = net?.reaches(host) ? net : null;
    this.inflight++;
    try {
      const via: Route = onNet ? { transport: 'udp', portmapPort: PMAP_PORT, network: onNet } : { transport, portmapPort: this.opts.portmapPort, network: null };
      const port = await this.getport(host, via, prog, vers);
      if (port === 0) throw new PeerCallError('program not registered with the client portmapper', where);
      if (!onNet && isLocal(host) && this.ownPorts.has(port)) throw new PeerCallError('callback target is this server', where);
      const c = await this.connect(host, port, via);
      try {
        return await c.call(prog, vers, proc, args, { cred: authSys({ machinename: this.opts.hostname }) });
      } finally {
        await c.close();
      }
    } finally {
      this.inflight--;
    }
  }

  private connect(host: string, port: number, via: Route, transport: TransportKind = via.transport): Promise<RpcClient> {
    const o: RpcClientOptions = { host, port, transport, timeoutMs: this.opts.timeoutMs, udpRetransmitMs: Math.max(200, this.opts.timeoutMs / 4) };
    const net = via.network;
    return RpcClient.connect(net ? { ...o, datagram: (onMessage) => net.open(host, port, onMessage) } : o);
  }

  private async getport(host: string, via: Route, prog: number, vers: number): Promise<number> {
    const c = await this.connect(host, via.portmapPort, via, 'udp');
    try {
      const args = new XdrWriter().uint32(prog).uint32(vers).uint32(via.transport === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP).uint32(0);
      return (await c.call(PMAP_PROG, PMAP_VERS, PMAPPROC_GETPORT, args)).uint32();
    } finally {
      await c.close();
    }
  }
}

/** How one call reaches its client: the transport and portmapper, over host sockets or a network of our own. */
interface Route {
  transport: TransportKind;
  portmapPort: number;
  network: PeerNetwork | null;
}

function isLocal(host: string): boolean {
  const h = host.replace(/^::ffff:/, '');
  return h === '::1' || h.startsWith('127.');
}
