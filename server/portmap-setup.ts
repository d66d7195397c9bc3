import type { Logger } from 'pino';
import { Dispatcher } from '../rpc/dispatch.ts';
import { createPortmapProgram, PMAP_PORT, PMAP_PROG, PortmapRegistry, type NetId } from '../rpc/portmap.ts';
import { RpcbindRegistrar } from '../rpc/rpcbind-client.ts';
import { RpcTcpServer } from '../rpc/tcp-server.ts';
import { RpcUdpServer } from '../rpc/udp-server.ts';
import { bindError } from './startup-error.ts';

export interface ServiceRegistration {
  prog: number;
  vers: number[];
  tcpPort: number;
  udpPort: number;
}

export interface PortmapHandle {
  /** The port of our own portmapper, or of the system rpcbind we registered with; 'off' when none. */
  port: number | 'off';
  kind: 'own' | 'system' | 'none';
  close(): Promise<void>;
}

/** The portmapper's own entries (v2–4 on `port`) and every service's, over TCP and UDP. */
export function fillRegistry(registry: PortmapRegistry, port: number, services: ServiceRegistration[]): void {
  for (const vers of [2, 3, 4]) for (const netid of ['tcp', 'udp'] as const) registry.set({ prog: PMAP_PROG, vers, netid, port, owner: 'superuser' });
  for (const s of services) {
    for (const v of s.vers) {
      for (const [netid, p] of [['tcp', s.tcpPort], ['udp', s.udpPort]] as [NetId, number][]) registry.set({ prog: s.prog, vers: v, netid, port: p, owner: 'pagelife' });
    }
  }
}

/**
 * `--portmap auto|off|PORT`: run our own portmapper (program 100000 v2–4) on PORT (111 for auto),
 * or, under `auto` when that port is taken or not ours to bind, register with the system's rpcbind,
 * or run without one and say so.
 */
export async function startPortmap(mode: 'auto' | 'off' | number, host: string, services: ServiceRegistration[], log: Logger): Promise<PortmapHandle> {
  if (mode === 'off') return { port: 'off', kind: 'none', close: async () => undefined };
  const wanted = mode === 'auto' ? PMAP_PORT : mode;
  const registry = new PortmapRegistry();
  const dispatcher = new Dispatcher({ log });
  dispatcher.register(createPortmapProgram(registry));
  const tcp = new RpcTcpServer({ dispatcher, log, name: 'portmap' });
  const udp = new RpcUdpServer({ dispatcher, log, name: 'portmap' });
  try {
    const port = await tcp.listen(wanted, host);
    await udp.listen(port, host);
    fillRegistry(registry, port, services);
    log.info({ port }, 'portmap: own portmapper listening');
    return {
      port,
      kind: 'own',
      async close() {
        await Promise.all([tcp.close(), udp.close()]);
      },
    };
  } catch (e) {
    await Promise.all([tcp.close().catch(() => undefined), udp.close().catch(() => undefined)]);
    const code = (e as NodeJS.ErrnoException).code;
    if (mode !== 'auto') throw bindError('portmap', host, wanted, e);
    log.info({ port: wanted, code }, 'portmap: cannot bind own portmapper; trying the system rpcbind');
  }
  const system = await registerWithRpcbind(services, log);
  if (system) return system;
  return { port: 'off', kind: 'none', close: async () => undefined };
}

/**
 * Registers every service with the rpcbind on `port`; null (logged with the reason) when none
 * answers or it refuses any mapping — say because another NFS server holds them — so the ready
 * line never names a portmapper that would send clients elsewhere.
 */
export async function registerWithRpcbind(services: ServiceRegistration[], log: Logger, port = PMAP_PORT): Promise<PortmapHandle | null> {
  let reg: RpcbindRegistrar;
  try {
    reg = await RpcbindRegistrar.connect(port);
  } catch (e) {
    log.warn({ port, err: (e as Error).message }, 'portmap: no portmapper (port 111 not bindable and no system rpcbind answered); clients must give port= and mountport=');
    return null;
  }
  const refused: string[] = [];
  try {
    for (const s of services) for (const v of s.vers) refused.push(...(await reg.register({ prog: s.prog, vers: v, tcpPort: s.tcpPort, udpPort: s.udpPort })));
  } catch (e) {
    refused.push(`no answer (${(e as Error).message})`);
  }
  if (refused.length > 0) {
    await reg.close().catch(() => undefined);
    log.error(
      { port, refused },
      `portmap: the system rpcbind refused ${refused.length} registration(s) (another server may hold them: rpcinfo -p); running without a portmapper, clients must give port= and mountport=`,
    );
    return null;
  }
  log.info({ port }, 'portmap: registered with the system rpcbind');
  return { port, kind: 'system', close: () => reg.close() };
}
