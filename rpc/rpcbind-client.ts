import { XdrWriter } from '../xdr/writer.ts';
import { RpcClient } from './client.ts';
import { IPPROTO_TCP, IPPROTO_UDP, PMAP_PORT, PMAP_PROG } from './portmap.ts';

const PMAPPROC_SET = 1;
const PMAPPROC_UNSET = 2;
const PMAPPROC_GETPORT = 3;
const PMAP_VERS = 2;

export interface Registration {
  prog: number;
  vers: number;
  tcpPort?: number;
  udpPort?: number;
}

/**
 * Registers programs with a portmapper that is already running (the system's rpcbind) through
 * portmapper v2 SET over loopback, which rpcbind accepts from local callers. Stale entries of an
 * earlier run are unset first.
 */
export class RpcbindRegistrar {
  private constructor(
    private readonly client: RpcClient,
    private readonly done: Registration[] = [],
  ) {}

  /** Connects to the local portmapper; rejects when none answers. */
  static async connect(port = PMAP_PORT, timeoutMs = 2000): Promise<RpcbindRegistrar> {
    const client = await RpcClient.connect({ host: '127.0.0.1', port, transport: 'tcp', timeoutMs });
    try {
      await client.call(PMAP_PROG, PMAP_VERS, 0);
    } catch (e) {
      await client.close();
      throw e;
    }
    return new RpcbindRegistrar(client);
  }

  /**
   * Maps (prog, vers) for each transport given; returns the mappings the portmapper refused, as
   * `prog/vers/tcp`. Only a registration with an accepted mapping is undone by close(), so a
   * refused one never removes another server's entries.
   */
  async register(r: Registration): Promise<string[]> {
    await this.client.call(PMAP_PROG, PMAP_VERS, PMAPPROC_UNSET, mapping(r.prog, r.vers, 0, 0));
    const refused: string[] = [];
    for (const [prot, name, port] of [
      [IPPROTO_TCP, 'tcp', r.tcpPort],
      [IPPROTO_UDP, 'udp', r.udpPort],
    ] as const) {
      if (port === undefined) continue;
      const res = await this.client.call(PMAP_PROG, PMAP_VERS, PMAPPROC_SET, mapping(r.prog, r.vers, prot, port));
      if (!res.bool()) refused.push(`${r.prog}/${r.vers}/${name}`);
    }
    if (refused.length < (r.tcpPort === undefined ? 0 : 1) + (r.udpPort === undefined ? 0 : 1)) this.done.push(r);
    return refused;
  }

  async getport(prog: number, vers: number, prot: number): Promise<number> {
    return (await this.client.call(PMAP_PROG, PMAP_VERS, PMAPPROC_GETPORT, mapping(prog, vers, prot, 0))).uint32();
  }

  /** Removes what this registrar registered, then closes. */
  async close(): Promise<void> {
    for (const r of this.done) await this.client.call(PMAP_PROG, PMAP_VERS, PMAPPROC_UNSET, mapping(r.prog, r.vers, 0, 0)).catch(() => undefined);
    await this.client.close();
  }
}

function mapping(prog: number, vers: number, prot: number, port: number): XdrWriter {
  return new XdrWriter().uint32(prog).uint32(vers).uint32(prot).uint32(port);
}
