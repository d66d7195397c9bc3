/**
 * Calls into a client: NLM GRANTED and _RES callbacks, NSM SM_NOTIFY and SM_MON status callbacks.
 * The client's service is found the way lockd and sm-notify find it: portmapper v2 GETPORT on the
 * client's address. Each call opens a socket, waits at most `timeoutMs`, and closes it; the number in
 * flight is bounded so a flood of requests from unreachable clients cannot pile sockets up.
 */
import { authSys, RpcClient } from './client.ts';
import { IPPROTO_TCP, IPPROTO_UDP, PMAP_PROG } from './portmap.ts';
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

  constructor(private readonly opts: PeerCallerOptions) {}

  addOwnPort(port: number): void {
    this.ownPorts.add(port);
  }

  get active(): number {
    return this.inflight;
  }

  /** One call; resolves with the result body, rejects with PeerCallError (or an RPC error). */
  async call(host: string, transport: TransportKind, prog: number, vers: number, proc: number, args: XdrWriter): Promise<XdrReader> {
    const where = { host, prog, vers, proc };
    if (this.inflight >= this.opts.maxInflight) throw new PeerCallError('too many callbacks in flight', where);
    this.inflight++;
    try {
      const port = await this.getport(host, transport, prog, vers);
      if (port === 0) throw new PeerCallError('program not registered with the client portmapper', where);
      if (isLocal(host) && this.ownPorts.has(port)) throw new PeerCallError('callback target is this server', where);
      const c = await RpcClient.connect({ host, port, transport, timeoutMs: this.opts.timeoutMs, udpRetransmitMs: Math.max(200, this.opts.timeoutMs / 4) });
      try {
        return await c.call(prog, vers, proc, args, { cred: authSys({ machinename: this.opts.hostname }) });
      } finally {
        await c.close();
      }
    } finally {
      this.inflight--;
    }
  }

  private async getport(host: string, transport: TransportKind, prog: number, vers: number): Promise<number> {
    const c = await RpcClient.connect({ host, port: this.opts.portmapPort, transport: 'udp', timeoutMs: this.opts.timeoutMs, udpRetransmitMs: Math.max(200, this.opts.timeoutMs / 4) });
    try {
      const args = new XdrWriter().uint32(prog).uint32(vers).uint32(transport === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP).uint32(0);
      return (await c.call(PMAP_PROG, PMAP_VERS, PMAPPROC_GETPORT, args)).uint32();
    } finally {
      await c.close();
    }
  }
}

function isLocal(host: string): boolean {
  const h = host.replace(/^::ffff:/, '');
  return h === '::1' || h.startsWith('127.');
}
